"""SLA clocks through the lifecycle: stored due times, next_due_at, pause and resume."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from sqlalchemy import select

from backoffice.domain import event_notes, sla, tickets
from backoffice.domain import permissions as perm
from backoffice.models import (
    BusinessHours,
    CompanyDay,
    EventAction,
    Priority,
    Ticket,
    TicketKind,
    TicketStatus,
)

P, T, R, F = TicketStatus.PROGRESS, TicketStatus.TEAM, TicketStatus.RESPONDED, TicketStatus.FINISHED


@pytest.fixture
def people(make):
    return {
        "owner": make.user(perm.CUSTOMER),
        "master": make.user(perm.MASTER_ADMIN),
        "cs": make.user(perm.CUSTOMER_SERVICE),
    }


def _stored_next_due(db, ticket):
    db.session.expire(ticket)
    return db.session.scalar(select(Ticket.next_due_at).where(Ticket.id == ticket.id))


def test_next_due_follows_the_ticket_through_its_life(db, make, people):
    owner, cs = people["owner"], people["cs"]
    ticket = make.ticket(T, customer=owner)
    db.session.commit()
    assert _stored_next_due(db, ticket) == ticket.first_response_due  # not answered yet

    tickets.set_priority(ticket, Priority.URGENT, cs)
    db.session.commit()
    assert _stored_next_due(db, ticket) == ticket.first_response_due

    tickets.post_message(ticket, cs, "Kami cek dulu.")
    db.session.commit()
    assert ticket.status is R and _stored_next_due(db, ticket) is None  # waiting: stopped

    tickets.post_message(ticket, owner, "Belum sampai juga.")
    db.session.commit()
    assert ticket.status is T and _stored_next_due(db, ticket) == ticket.resolution_due

    tickets.finish(ticket, cs)
    db.session.commit()
    assert _stored_next_due(db, ticket) is None

    tickets.reopen(ticket, cs)
    db.session.commit()
    assert ticket.status is T and _stored_next_due(db, ticket) == ticket.resolution_due


def test_next_due_in_python_and_sql_agree(db, make, people):
    made = [make.ticket(s, customer=people["owner"]) for s in (P, T, R, F)]
    answered_again = make.ticket(R, customer=people["owner"])
    tickets.post_message(answered_again, people["owner"], "Masih rusak.")
    made.append(answered_again)
    db.session.commit()
    rows = db.session.execute(select(Ticket.id, sla.next_due_sql(Ticket))).all()
    assert {i: due for i, due in rows} == {t.id: sla.next_due(t) for t in made}
    assert [sla.next_due(t) is None for t in made] == [False, False, True, True, False]


# --- working time through the lifecycle -------------------------------------------
# Expected instants worked out by hand; UTC as stored, local time in the comments.

H = 3600


def _hours(db, make, code, rows, zone="Asia/Jakarta"):
    dep = make.department(code)
    dep.timezone = zone
    db.session.execute(
        BusinessHours.__table__.delete().where(BusinessHours.department_id == dep.id)
    )
    for weekday, start, end in rows:
        db.session.add(
            BusinessHours(department=dep, weekday=weekday, start_minute=start, end_minute=end)
        )
    db.session.flush()
    return dep


WEEKDAYS_8_20 = [(d, 8 * 60, 20 * 60) for d in range(5)]
AROUND_THE_CLOCK = [(d, 0, 24 * 60) for d in range(7)]


def all_around_the_clock(db, make):
    """Every seed department 24/7 through holidays: working time is wall-clock time
    (less the pauses), whatever day the tests run on."""
    for code in ("CS", "OPS", "BILLING", "CLAIMS", "SALES", "DIGITAL"):
        if make.department(code) is not None:
            _hours(db, make, code, AROUND_THE_CLOCK).observes_holidays = False
    db.session.flush()


def _question(owner, now):
    """A question routes to Customer Service (seed rule)."""
    return tickets.file_ticket(owner, TicketKind.QUESTION, "Jam buka?", "Halo", now=now)


def _moves(db, ticket):
    from backoffice.models import TicketEvent

    return list(
        db.session.scalars(
            select(TicketEvent)
            .where(TicketEvent.ticket_id == ticket.id, TicketEvent.action == EventAction.DUE_MOVED)
            .order_by(TicketEvent.id)
        )
    )


def test_filed_at_1959_on_friday_is_due_on_monday(db, make, people):
    _hours(db, make, "CS", WEEKDAYS_8_20)
    t = _question(people["owner"], datetime(2026, 11, 27, 12, 59))  # Fri 19:59 WIB
    assert t.status is T and t.department.code == "CS"
    # 8 h: 1 min on Friday, 7 h 59 on Monday from 08:00 → Mon 15:59 WIB
    assert t.first_response_due == datetime(2026, 11, 30, 8, 59)
    # 72 h: 1 min + Mon–Fri 5 × 12 h = 60 h 1 min, then 11 h 59 on Mon 7 Dec → 19:59 WIB
    assert t.resolution_due == datetime(2026, 12, 7, 12, 59)
    assert t.next_due_at == t.first_response_due and _moves(db, t) == []


def test_lebaran_with_cuti_bersama_stops_the_clock(db, make, people):
    _hours(db, make, "CS", WEEKDAYS_8_20)
    t = _question(people["owner"], datetime(2026, 3, 17, 12, 0))  # Tue 17 Mar 19:00 WIB
    # 1 h on Tuesday; 18–24 March are Nyepi, Idul Fitri, cuti bersama and a weekend;
    # 7 h on Wed 25 March from 08:00 → 15:00 WIB
    assert t.first_response_due == datetime(2026, 3, 25, 8, 0)


def test_the_clock_pauses_while_waiting_for_the_customer(db, make, people):
    owner, cs = people["owner"], people["cs"]
    _hours(db, make, "CS", WEEKDAYS_8_20)
    t = _question(owner, datetime(2026, 11, 30, 1, 0))  # Mon 30 Nov 08:00 WIB
    # 72 h of Mon–Fri 12 h days: Mon 7 Dec 20:00 WIB
    assert t.resolution_due == datetime(2026, 12, 7, 13, 0)
    tickets.post_message(t, cs, "Kami cek.", now=datetime(2026, 11, 30, 3, 0))  # 10:00, 2 h used
    assert t.status is R and t.sla_paused_at == datetime(2026, 11, 30, 3, 0)
    assert t.resolution_left == 70 * H and t.next_due_at is None
    # waiting is not a breach, however long it lasts
    assert not t.sla_breached(datetime(2026, 12, 20))
    assert (
        db.session.scalar(
            select(Ticket.id).where(Ticket.id == t.id, Ticket.sla_breached(datetime(2026, 12, 20)))
        )
        is None
    )
    # the customer answers on Thu 3 Dec 10:00 WIB, after 36 working hours of waiting
    tickets.post_message(t, owner, "Ini fotonya.", now=datetime(2026, 12, 3, 3, 0))
    # 70 h from Thu 10:00: Thu 10, Fri 12, Mon 12, Tue 12, Wed 12, Thu 10 Dec 12 → 20:00 WIB
    assert t.status is T and t.sla_paused_at is None
    assert t.resolution_due == t.next_due_at == datetime(2026, 12, 10, 13, 0)
    (moved,) = _moves(db, t)
    note = event_notes.text(moved.note)  # stored neutral, read in the viewer's language
    assert "36" in note and "07-12-2026 20:00 → 10-12-2026 20:00 WIB" in note


def test_escalation_goes_on_on_the_new_departments_calendar_in_wit(db, make, people):
    _hours(db, make, "CS", WEEKDAYS_8_20)
    claims = _hours(
        db, make, "CLAIMS", [(d, 8 * 60, 16 * 60) for d in range(5)], zone="Asia/Jayapura"
    )
    t = _question(people["owner"], datetime(2026, 11, 30, 1, 0))  # Mon 08:00 WIB
    # at 12:00 WIB (14:00 WIT) 4 of the 8 first-response hours are used
    tickets.dispatch(t, claims, people["master"], now=datetime(2026, 11, 30, 5, 0))
    assert t.first_response_left == 4 * H
    # 2 h until 16:00 WIT, 2 h on Tuesday from 08:00 WIT → Tue 10:00 WIT
    assert t.first_response_due == t.next_due_at == datetime(2026, 12, 1, 1, 0)
    (moved,) = _moves(db, t)
    assert "CLAIMS" in moved.note and "WIT" in moved.note


def test_split_shift_and_a_priority_raised_later(db, make, people):
    split = [(d, 8 * 60, 12 * 60) for d in range(6)] + [(d, 13 * 60, 20 * 60) for d in range(6)]
    _hours(db, make, "CS", split)
    t = _question(people["owner"], datetime(2026, 11, 30, 4, 0))  # Mon 11:00 WIB
    # 8 h: 11–12 and 13–20 → Mon 20:00 WIB, the end of the afternoon shift
    assert t.first_response_due == datetime(2026, 11, 30, 13, 0)
    # at 14:00 WIB (2 h used) urgent: 1 h allowed, already spent → breached at that moment
    tickets.set_priority(t, Priority.URGENT, people["cs"], now=datetime(2026, 11, 30, 7, 0))
    assert t.first_response_left == -1 * H
    assert t.first_response_due == datetime(2026, 11, 30, 7, 0)
    assert t.sla_breached(datetime(2026, 11, 30, 7, 1))
    # resolution: 8 h urgent, 2 used → 6 h from 14:00: until 20:00 WIB
    assert t.resolution_due == datetime(2026, 11, 30, 13, 0)


def test_a_company_day_added_after_filing_moves_the_due_time(db, make, people):
    _hours(db, make, "CS", WEEKDAYS_8_20)
    t = _question(people["owner"], datetime(2026, 12, 1, 12, 0))  # Tue 1 Dec 19:00 WIB
    far = _question(people["owner"], datetime(2027, 1, 4, 1, 0))  # January: untouched
    assert t.first_response_due == datetime(2026, 12, 2, 8, 0)  # Wed 15:00 WIB
    db.session.add(CompanyDay(day=date(2026, 12, 2), closed=True, name="Ulang tahun carebox"))
    db.session.flush()
    moved = sla.calendar_changed(
        "company day 02-12-2026 closed", days=[date(2026, 12, 2)], now=datetime(2026, 12, 1, 13)
    )
    assert moved == 1
    assert t.first_response_due == t.next_due_at == datetime(2026, 12, 3, 8, 0)  # Thu 15:00
    (event,) = _moves(db, t)
    assert "02-12-2026" in event.note and _moves(db, far) == []
    # the day removed again: back to Wednesday
    db.session.execute(CompanyDay.__table__.delete())
    sla.calendar_changed("removed", days=[date(2026, 12, 2)], now=datetime(2026, 12, 1, 14))
    assert t.first_response_due == datetime(2026, 12, 2, 8, 0)


def test_reopening_resumes_with_what_was_left(db, make, people):
    _hours(db, make, "CS", WEEKDAYS_8_20)
    t = _question(people["owner"], datetime(2026, 11, 30, 1, 0))  # Mon 08:00 WIB
    tickets.finish(t, people["cs"], now=datetime(2026, 11, 30, 2, 0))  # 1 h used
    assert t.sla_paused_at is not None and t.resolution_left == 71 * H
    tickets.reopen(t, people["cs"], now=datetime(2026, 12, 1, 1, 0))  # Tue 08:00
    # 71 h from Tue 08:00: Tue–Fri 48, Mon 12 → 60, Tue 8 Dec 11 h → 19:00 WIB
    assert t.resolution_due == datetime(2026, 12, 8, 12, 0)


def test_working_time_to_answer_and_to_finish_is_stored_for_the_medians(db, make, people):
    from backoffice.views.sqlhelpers import first_response_seconds, resolution_seconds

    owner, cs = people["owner"], people["cs"]
    _hours(db, make, "CS", WEEKDAYS_8_20)
    t = _question(owner, datetime(2026, 11, 27, 12, 0))  # Fri 19:00 WIB
    tickets.post_message(t, cs, "Kami cek.", now=datetime(2026, 11, 30, 2, 0))  # Mon 09:00
    assert t.first_response_work == 2 * H  # Fri 19–20, Mon 08–09: not the weekend
    tickets.post_message(t, owner, "Belum.", now=datetime(2026, 11, 30, 5, 0))  # Mon 12:00
    tickets.finish(t, cs, now=datetime(2026, 11, 30, 7, 0))  # Mon 14:00
    # 2 h to the answer, 09–12 waiting for the customer (not counted), 12–14
    assert t.resolution_work == 4 * H
    db.session.commit()

    def figures():
        return db.session.execute(
            select(first_response_seconds(), resolution_seconds()).where(Ticket.id == t.id)
        ).one()

    assert tuple(map(int, figures())) == (2 * H, 4 * H)
    tickets.reopen(t, cs, now=datetime(2026, 11, 30, 8, 0))
    db.session.commit()
    assert figures()[1] is None  # open again: no resolution time until finished again

"""The set-based recomputation (domain/sla_bulk.py) gives exactly what the per-ticket
path (`sla.replan` on `Calendar.add`) gives, on hard calendars: split shifts in WITA,
WIB weekdays across Lebaran and its cuti bersama, 24/7 through holidays, WIT, clocks
that ran out, paused and answered tickets — after a company day off is added."""

from __future__ import annotations

import itertools
from datetime import date, datetime, timedelta

from sqlalchemy import func, select, update

from backoffice.domain import permissions as perm
from backoffice.domain import sla, tickets, worktime
from backoffice.models import (
    CompanyDay,
    EventAction,
    Priority,
    Ticket,
    TicketEvent,
    TicketKind,
    TicketStatus,
)

from .test_sla import AROUND_THE_CLOCK, WEEKDAYS_8_20, _hours

SPLIT = [(d, 8 * 60, 12 * 60) for d in range(6)] + [(d, 13 * 60, 20 * 60) for d in range(6)]
EVENINGS = [(d, 16 * 60, 24 * 60) for d in range(7)]


def _calendars(db, make):
    _hours(db, make, "CS", WEEKDAYS_8_20)
    _hours(db, make, "OPS", SPLIT, zone="Asia/Makassar")
    _hours(db, make, "CLAIMS", AROUND_THE_CLOCK).observes_holidays = False
    _hours(db, make, "BILLING", EVENINGS, zone="Asia/Jayapura")
    db.session.flush()


def _tickets(db, make):
    """Forty-odd tickets in every state that keeps a clock running, at whole seconds."""
    master = make._master()
    owner = make.user(perm.CUSTOMER)
    departments = [make.department(c) for c in ("CS", "OPS", "CLAIMS", "BILLING")]
    starts = [
        datetime(2026, 3, 13, 12, 59, 0),  # Fri 19:59 WIB, the week before Lebaran
        datetime(2026, 3, 17, 3, 30, 17),
        datetime(2026, 11, 27, 12, 59, 59),
        datetime(2026, 11, 30, 4, 0, 1),  # Mon 12:00 WITA: between OPS's shifts
        datetime(2026, 12, 23, 9, 0, 0),  # before Christmas and its cuti bersama
    ]
    made = []
    for i, (start, dep, priority) in enumerate(
        itertools.product(starts, departments, (Priority.URGENT, Priority.NORMAL, Priority.LOW))
    ):
        if i % 2:  # about half: a question filed to CS first, then escalated
            t = tickets.file_ticket(owner, TicketKind.QUESTION, f"Q{i}", "Halo", now=start)
        else:
            t = make.ticket("progress", customer=owner, now=start)
        tickets.set_priority(t, priority, master, now=start)
        if t.department_id != dep.id:
            tickets.dispatch(t, dep, master, now=start + timedelta(minutes=5))
        if i % 3 == 0:  # answered, then the customer wrote back: resolution clock runs
            tickets.post_message(t, master, "Dicek.", now=start + timedelta(hours=3))
            tickets.post_message(t, owner, "Belum.", now=start + timedelta(hours=50, seconds=7))
        made.append(t)
    db.session.commit()
    assert {t.status for t in made} <= {TicketStatus.TEAM, TicketStatus.PROGRESS}
    return made


def _per_ticket_answer(db, made, why, now):
    """What `sla.replan` gives each ticket, and which ones it notes; rolled back."""
    calendars = worktime.load_many({t.department_id for t in made})
    expected = {}
    before = db.session.scalar(select(func.coalesce(func.max(TicketEvent.id), 0)))
    for t in made:
        sla.replan(t, now, why, calendars[t.department_id])
        t.next_due_at = sla.next_due(t)
        expected[t.id] = (t.first_response_due, t.resolution_due, t.sla_warn_at, t.next_due_at)
    # The notes as rows, not as session.new: any flush on the way (a lazy load's
    # autoflush) would have taken the earlier ones out of session.new.
    db.session.flush()
    noted = set(
        db.session.scalars(
            select(TicketEvent.ticket_id).where(
                TicketEvent.id > before, TicketEvent.action == EventAction.DUE_MOVED
            )
        )
    )
    db.session.rollback()
    return expected, noted


def _stored(db):
    db.session.expire_all()
    rows = db.session.execute(
        select(
            Ticket.id,
            Ticket.first_response_due,
            Ticket.resolution_due,
            Ticket.sla_warn_at,
            Ticket.next_due_at,
        )
    )
    return {r[0]: tuple(r[1:]) for r in rows}


def test_set_based_recompute_equals_the_per_ticket_path(db, make):
    _calendars(db, make)
    made = _tickets(db, make)
    # the company closes on two days inside many tickets' windows
    db.session.add(CompanyDay(day=date(2026, 3, 25), closed=True, name="Libur kantor"))
    db.session.add(CompanyDay(day=date(2026, 12, 1), closed=True, name="Ulang tahun"))
    db.session.commit()
    now = datetime(2026, 12, 28, 0, 0, 0)
    expected, noted = _per_ticket_answer(db, made, "company day", now)
    before_events = db.session.scalar(select(func.coalesce(func.max(TicketEvent.id), 0)))

    moved = sla.calendar_changed("company day", now=now)
    db.session.commit()
    stored = _stored(db)
    assert {i: stored[i] for i in expected} == expected
    assert moved > 0
    new_events = db.session.scalars(
        select(TicketEvent).where(TicketEvent.id > before_events).order_by(TicketEvent.id)
    ).all()
    assert {e.ticket_id for e in new_events} == noted
    assert all(e.action is EventAction.DUE_MOVED and "company day" in e.note for e in new_events)
    # nothing left behind, and a second run moves nothing
    assert sla.calendar_changed("again", now=now) == 0
    from backoffice.models import SlaWorkDue, SlaWorkInterval

    assert db.session.scalar(select(func.count()).select_from(SlaWorkInterval)) == 0
    assert db.session.scalar(select(func.count()).select_from(SlaWorkDue)) == 0


def test_hours_changed_for_one_department_only_touch_its_tickets(db, make):
    _calendars(db, make)
    made = _tickets(db, make)
    ops = make.department("OPS")
    _hours(db, make, "OPS", WEEKDAYS_8_20, zone="Asia/Makassar")
    db.session.commit()
    now = datetime(2026, 12, 28, 0, 0, 0)
    others = {
        t.id: (t.first_response_due, t.resolution_due) for t in made if t.department_id != ops.id
    }
    on_ops = [t for t in made if t.department_id == ops.id]
    expected, _noted = _per_ticket_answer(db, on_ops, "hours", now)
    sla.calendar_changed("hours", department_ids=[ops.id], now=now)
    db.session.commit()
    stored = _stored(db)
    assert {i: stored[i] for i in expected} == expected
    assert {i: stored[i][:2] for i in others} == others


def _clocks(t) -> tuple:
    return (
        t.sla_since,
        t.first_response_left,
        t.resolution_left,
        t.sla_paused_at,
        t.first_response_due,
        t.resolution_due,
        t.sla_warn_at,
        t.next_due_at,
        t.first_response_work,
    )


def test_set_based_adoption_equals_the_per_ticket_path(db, make):
    """`carebox sla recompute --all` puts the tickets from before working time on it in
    the database (sla_bulk.adopt), not ticket by ticket in Python: the same clocks, due
    times, warnings, next due time, met first-response work and DUE_MOVED notes as
    `sla.refresh` gives each one — running and waiting for the customer, on every
    calendar, with clocks that ran out."""
    _calendars(db, make)
    made = _tickets(db, make)
    master = make._master()
    for t in made[::4]:  # answered, waiting for the customer: the clocks pause
        tickets.post_message(t, master, "Sudah kami cek.", now=datetime(2026, 12, 24, 3, 0, 0))
    db.session.commit()
    # From before working time: no clocks, the due times as they were stored then.
    db.session.execute(
        update(Ticket).values(
            sla_since=None,
            first_response_left=None,
            resolution_left=None,
            sla_paused_at=None,
            first_response_work=None,
        )
    )
    # a day off ahead: the due times on working time differ from the stored ones
    db.session.add(CompanyDay(day=date(2026, 12, 29), closed=True, name="Libur kantor"))
    db.session.commit()
    now = datetime(2026, 12, 26, 0, 0, 0)
    before_events = db.session.scalar(select(func.coalesce(func.max(TicketEvent.id), 0)))
    for t in made:
        sla.refresh(t, now)
    db.session.flush()
    expected = {t.id: _clocks(t) for t in made}
    noted = set(
        db.session.execute(
            select(TicketEvent.ticket_id, TicketEvent.note).where(TicketEvent.id > before_events)
        )
    )
    db.session.rollback()
    assert {e[3] for e in expected.values()} == {None, now}  # both kinds are there
    assert noted

    assert sla.adopt_all(now=now) == len(made)
    db.session.commit()
    db.session.expire_all()
    assert {t.id: _clocks(t) for t in made} == expected
    new_events = db.session.scalars(select(TicketEvent).where(TicketEvent.id > before_events)).all()
    assert {(e.ticket_id, e.note) for e in new_events} == noted
    assert all(e.action is EventAction.DUE_MOVED for e in new_events)
    assert sla.adopt_all(now=now) == 0
    from backoffice.models import SlaWorkDue, SlaWorkInterval

    assert db.session.scalar(select(func.count()).select_from(SlaWorkInterval)) == 0
    assert db.session.scalar(select(func.count()).select_from(SlaWorkDue)) == 0

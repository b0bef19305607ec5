"""SLA clocks through the lifecycle: stored due times, next_due_at, pause and resume."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from backoffice.domain import permissions as perm
from backoffice.domain import sla, tickets
from backoffice.models import Priority, Ticket, TicketStatus

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

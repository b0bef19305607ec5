"""Ownership: every owned object answers 404 to anyone but its customer.

One customer (A) owns a ticket with an attachment, an order and a finished
ticket; another customer (B) tries every URL of them. Staff see attachments of
the tickets they may see in the back office, and nothing else.
"""

from __future__ import annotations

import io

import pytest
from sqlalchemy import select

from backoffice.domain import attachments
from backoffice.domain import permissions as perm
from backoffice.domain import tickets as lifecycle
from backoffice.models import (
    Order,
    OrderStatus,
    Ticket,
    TicketAttachment,
    TicketMessage,
    TicketStatus,
)

from .portal_support import PDF, customer, upload


@pytest.fixture
def world(login_as, db, make):
    """A's objects, and a signed-in B."""
    a, owner = customer(login_as)
    order = make.order(customer=owner)
    db.session.commit()
    resp = a.post(
        "/tickets/new",
        {
            "kind": "complaint",
            "subject": "Rahasia A",
            "body": "Isi rahasia",
            "order_number": order.number,
            "attachment": upload(PDF, "rahasia.pdf"),
        },
    )
    assert resp.status_code == 302
    ticket = db.session.scalars(select(Ticket)).one()
    attachment = db.session.scalars(select(TicketAttachment)).one()
    finished = make.ticket(status=TicketStatus.FINISHED, customer=owner)
    db.session.commit()
    b, _other = customer(login_as)
    return {
        "a": a,
        "b": b,
        "ticket": ticket.number,
        "finished": finished.number,
        "order": order.number,
        "attachment": attachment.id,
        "ticket_id": ticket.id,
    }


def _urls(w) -> list[tuple[str, str, dict]]:
    t, f = w["ticket"], w["finished"]
    return [
        ("GET", f"/tickets/{t}", {}),
        ("GET", f"/tickets/{t}/messages", {}),
        ("GET", f"/tickets/{t}/messages?after=0", {}),
        ("POST", f"/tickets/{t}/reply", {"body": "Saya bukan pemiliknya"}),
        ("POST", f"/tickets/{t}/close", {"version": "1"}),
        ("POST", f"/tickets/{f}/reopen", {"version": "1"}),
        ("POST", f"/tickets/{f}/rate", {"rating": "1"}),
        ("GET", f"/orders/{w['order']}", {}),
        ("POST", f"/orders/{w['order']}/cancel", {"reason": "Bukan punya saya"}),
        ("GET", f"/attachments/{w['attachment']}", {}),
    ]


def test_another_customer_gets_404_for_everything(world, db):
    b = world["b"]
    for method, url, data in _urls(world):
        resp = b.get(url) if method == "GET" else b.post(url, data, form_url="/tickets")
        assert resp.status_code == 404, (method, url, resp.status_code)
        assert "Rahasia A" not in resp.get_data(as_text=True)
    json = b.get(f"/tickets/{world['ticket']}/messages", headers={"Accept": "application/json"})
    assert json.status_code == 404 and "Isi rahasia" not in json.get_data(as_text=True)
    # B's lists do not show A's objects, and nothing of A's changed.
    assert "Rahasia A" not in b.get("/tickets").get_data(as_text=True)
    assert world["order"] not in b.get("/orders").get_data(as_text=True)
    db.session.commit()
    ticket = db.session.get(Ticket, world["ticket_id"])
    assert ticket.status is TicketStatus.PROGRESS
    assert len(db.session.scalars(select(TicketMessage)).all()) == 3  # 1 + 2 of the finished
    assert db.session.scalar(select(Order.status).where(Order.number == world["order"])) is (
        OrderStatus.PLACED
    )


def test_the_owner_gets_all_of_them(world):
    a = world["a"]
    for method, url, _data in _urls(world):
        if method == "GET":
            with a.get(url) as resp:
                assert resp.status_code == 200, url


def test_anonymous_users_are_sent_to_log_in(world, app):
    anonymous = app.test_client()
    for method, url, _data in _urls(world):
        resp = anonymous.open(url, method=method)
        if method == "GET":
            assert resp.status_code == 302 and "/login" in resp.headers["Location"], url
        else:
            assert resp.status_code in (302, 400), url  # login first, or no CSRF token
    poll = anonymous.get(
        f"/tickets/{world['ticket']}/messages", headers={"Accept": "application/json"}
    )
    assert poll.status_code == 401


@pytest.mark.parametrize(
    "number", ["CX-2026-999999", "cx-2026-000001", "x" * 500, "CX-2026-000001%00", "💥"]
)
def test_unknown_or_odd_numbers_are_404(login_as, number):
    b, _user = customer(login_as)
    assert b.get(f"/tickets/{number}").status_code == 404
    assert b.get(f"/tickets/{number}/messages").status_code == 404
    assert b.get(f"/orders/{number}").status_code == 404


def test_staff_get_attachments_of_tickets_they_see_and_404_otherwise(world, login_as, db, make):
    master, _ = login_as(perm.MASTER_ADMIN)
    with master.get(f"/attachments/{world['attachment']}") as resp:
        assert resp.status_code == 200  # the master admin sees progress tickets
    desk, _ = login_as(perm.CUSTOMER_SERVICE)
    assert (
        desk.get(f"/attachments/{world['attachment']}").status_code == 404
    )  # progress: not theirs
    # Staff never reach customer pages of the ticket itself.
    assert master.get(f"/tickets/{world['ticket']}").status_code == 403


def test_attachments_on_internal_notes_are_never_served_to_the_customer(world, login_as, db, make):
    ticket = db.session.get(Ticket, world["ticket_id"])
    master = make._master()
    note_file = attachments.store(io.BytesIO(PDF), "internal.pdf")
    lifecycle.post_message(ticket, master, "catatan", internal=True, attachments=[note_file])
    db.session.commit()
    assert world["a"].get(f"/attachments/{note_file.id}").status_code == 404
    staff, _user = login_as(perm.MASTER_ADMIN)
    with staff.get(f"/attachments/{note_file.id}") as resp:
        assert resp.status_code == 200

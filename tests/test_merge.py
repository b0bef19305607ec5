"""A second open ticket on the same resi is flagged in the lists and merged into the first
(domain.tickets.merge): messages, attachments and events move, the merged ticket points
to the survivor and its URLs lead there, its customer is told, both timelines record it;
a staff reply racing the merge is never lost (MariaDB, two connections)."""

from __future__ import annotations

import threading
import time

import pytest
from flask_babel import force_locale
from sqlalchemy import func, select

from backoffice.domain import ConflictError, DomainError, PermissionDenied, notifications
from backoffice.domain import permissions as perm
from backoffice.domain import tickets as lifecycle
from backoffice.models import (
    EventAction,
    OutboxEmail,
    Ticket,
    TicketAttachment,
    TicketEvent,
    TicketKind,
    TicketMessage,
    TicketStatus,
)

from .admin_support import attach, flashes
from .conftest import Browser
from .test_admin_desk import desk_page


def _pair(make, db, *, locale="en"):
    """Two open Team tickets of one customer about one parcel; the second has a photo."""
    customer = make.user(locale=locale)
    order = make.order(customer)
    first = make.ticket("team", customer=customer, order=order, kind=TicketKind.QUESTION)
    second = make.ticket("team", customer=customer, order=order, kind=TicketKind.QUESTION)
    attachment = attach(second, customer, "Ini fotonya")
    db.session.commit()
    return customer, first, second, attachment


def _desk(number: str) -> str:
    return f"/admin/tickets/desk/{number}/"


def _count(db, model, *where) -> int:
    db.session.commit()
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def test_a_duplicate_is_flagged_and_merged_into_the_first(app, db, login_as, make):
    cs, staff = login_as(perm.CUSTOMER_SERVICE, locale="en")
    customer, first, second, attachment = _pair(make, db, locale="id")
    events_before = _count(db, TicketEvent, TicketEvent.ticket_id == second.id)

    listed = cs.get("/admin/tickets/team/").get_data(as_text=True)
    assert f"Duplicate of {first.number}" in listed
    assert listed.count("Duplicate of") == 1  # the first one is not a duplicate

    page = desk_page(cs, second.number)
    assert 'id="merge-form"' in page and f'value="{first.number}"' in page
    resp = cs.post(
        f"/admin/tickets/desk/{second.number}/merge",
        {"into": first.number, "expected_version": str(second.version_id)},
        form_url=_desk(second.number),
    )
    assert resp.status_code == 302 and resp.headers["Location"].endswith(_desk(first.number))

    db.session.expire_all()
    merged, survivor = db.session.get(Ticket, second.id), db.session.get(Ticket, first.id)
    assert merged.status is TicketStatus.FINISHED and merged.merged_into_id == survivor.id
    assert _count(db, TicketMessage, TicketMessage.ticket_id == merged.id) == 0
    photo = db.session.get(TicketAttachment, attachment.id)
    assert db.session.get(TicketMessage, photo.message_id).ticket_id == survivor.id
    # Its events moved too; each timeline has its MERGED event naming the other.
    on_merged = db.session.scalars(select(TicketEvent).where(TicketEvent.ticket_id == merged.id))
    assert [(e.action, first.number in e.note) for e in on_merged] == [(EventAction.MERGED, True)]
    moved = _count(db, TicketEvent, TicketEvent.ticket_id == survivor.id)
    assert moved >= events_before + 1
    last = db.session.scalars(
        select(TicketEvent)
        .where(TicketEvent.ticket_id == survivor.id)
        .order_by(TicketEvent.id.desc())
        .limit(1)
    ).one()
    assert last.action is EventAction.MERGED and second.number in last.note
    # The customer is told, in their language, through the outbox.
    mail = db.session.scalars(
        select(OutboxEmail).where(
            OutboxEmail.subject.contains(first.number), OutboxEmail.subject.contains(second.number)
        )
    ).all()
    assert len(mail) == 1 and customer.email in mail[0].recipient
    assert "digabung" in mail[0].body_text.lower() or "gabung" in mail[0].body_text.lower()

    # The merged ticket's URLs lead to the survivor and say so, for staff and customer.
    desk = cs.get(_desk(second.number))
    assert desk.status_code == 302 and desk.headers["Location"].endswith(_desk(first.number))
    followed = cs.get(_desk(second.number), follow_redirects=True).get_data(as_text=True)
    assert f"was merged into {first.number}" in flashes(followed)
    assert "Ini fotonya" in followed  # the moved message is in the survivor's conversation
    portal = Browser(app.test_client())
    portal.login(customer)
    resp = portal.get(f"/tickets/{second.number}")
    assert resp.status_code == 302 and resp.headers["Location"].endswith(f"/tickets/{first.number}")
    assert "Ini fotonya" in portal.get(f"/tickets/{first.number}").get_data(as_text=True)
    assert "Duplicate of" not in cs.get("/admin/tickets/team/").get_data(as_text=True)
    assert "merged-badge" in cs.get("/admin/tickets/finished/").get_data(as_text=True)
    assert "merged-badge" in portal.get("/tickets").get_data(as_text=True)


def test_who_may_merge_both_ways(db, login_as, make):
    customer, first, second, _ = _pair(make, db)
    ops_admin, _ = login_as(perm.ADMIN_DEPARTMENT, department="CS", locale="en")  # theirs
    url = f"/admin/tickets/desk/{second.number}/merge"
    data = {"into": first.number, "expected_version": str(second.version_id)}
    page = ops_admin.get(_desk(second.number)).get_data(as_text=True)
    assert 'id="merge-form"' not in page
    assert ops_admin.post(url, data, form_url=_desk(second.number)).status_code == 403
    assert _count(db, Ticket, Ticket.merged_into_id.is_not(None)) == 0
    master, master_user = login_as(perm.MASTER_ADMIN, locale="en")
    assert master.post(url, data, form_url=_desk(second.number)).status_code == 302
    assert _count(db, Ticket, Ticket.merged_into_id == first.id) == 1
    with pytest.raises(PermissionDenied):
        lifecycle.merge(first, second, customer)


def test_merges_that_are_refused_change_nothing(db, make):
    master = make.user(perm.MASTER_ADMIN)
    customer, first, second, _ = _pair(make, db)
    other = make.ticket("team", kind=TicketKind.QUESTION)  # another customer's
    done = make.ticket("finished", customer=customer, kind=TicketKind.QUESTION)
    cases = [
        (second, second, "into itself"),
        (second, done, "merge into an open ticket"),
        (done, first, "only an open ticket can be merged"),
        (second, other, "different customers"),
    ]
    for ticket, into, message in cases:
        with force_locale("en"), pytest.raises(DomainError, match=message):
            lifecycle.merge(ticket, into, master)
        db.session.rollback()
    lifecycle.merge(second, first, master)
    db.session.commit()
    # Merged: it cannot be merged again, nor into; nor reopened, replied to by its customer.
    third = make.ticket("team", customer=customer, kind=TicketKind.QUESTION)
    with pytest.raises(DomainError):
        lifecycle.merge(third, second, master)
    db.session.rollback()
    with pytest.raises(PermissionDenied):
        lifecycle.reopen(second, master)
    db.session.rollback()
    with pytest.raises(ConflictError):
        lifecycle.merge(third, first, master, expected_version=third.version_id - 1)


def test_a_reply_from_a_stale_desk_lands_in_the_survivor(db, login_as, make):
    cs, _ = login_as(perm.CUSTOMER_SERVICE, locale="en")
    _customer, first, second, _ = _pair(make, db)
    page = cs.get(_desk(second.number))
    assert page.status_code == 200
    lifecycle.merge(second, first, make.user(perm.MASTER_ADMIN))
    db.session.commit()
    resp = cs.post(
        f"/admin/tickets/desk/{second.number}/reply",
        {"body": "Paket sudah kami temukan.", "visibility": "public",
         "expected_version": str(second.version_id - 1)},
        form_url=_desk(first.number),
    )  # fmt: skip
    assert resp.status_code == 302, resp.get_data(as_text=True)[:500]
    assert (
        _count(
            db,
            TicketMessage,
            TicketMessage.ticket_id == first.id,
            TicketMessage.body == "Paket sudah kami temukan.",
        )
        == 1
    )


def test_an_email_reply_to_a_merged_ticket_lands_in_the_survivor(db, make):
    from backoffice.domain import inbound
    from backoffice.models import MessageChannel

    customer, first, second, _ = _pair(make, db)
    lifecycle.merge(second, first, make.user(perm.MASTER_ADMIN))
    got = inbound.receive(
        inbound.Incoming(
            MessageChannel.EMAIL, "Terima kasih", email=customer.email, ticket=second,
            external_id="<merged-reply@example.com>",
        )
    )  # fmt: skip
    assert got.ticket.id == first.id and got.message.ticket_id == first.id


# --- a staff reply racing the merge (MariaDB: two connections) ----------------------


def _race(app, db, login_as, make, monkeypatch, *, first_in: str):
    """`first_in` ("merge" or "reply") takes the ticket's row lock and holds it 0.8 s
    before committing; the other request starts while it is held."""
    if db.engine.dialect.name == "sqlite":
        pytest.skip("SQLite has one writer at a time: the race needs MariaDB's row locks")
    merger, _ = login_as(perm.CUSTOMER_SERVICE, locale="en")
    replier, _ = login_as(perm.CUSTOMER_SERVICE, locale="en")
    _customer, first, second, _ = _pair(make, db)
    desk = _desk(second.number)
    merge_data = {
        "into": first.number,
        "expected_version": str(second.version_id),
        "csrf_token": merger.token(desk),
    }
    reply_data = {
        "body": "Balasan di tengah penggabungan",
        "visibility": "public",
        "expected_version": str(second.version_id),
        "csrf_token": replier.token(desk),
    }
    holding = threading.Event()
    hook = {"merge": ("ticket_merged", notifications.ticket_merged),
            "reply": ("message_posted", notifications.message_posted)}[first_in]  # fmt: skip

    def slow(*args, **kwargs):
        hook[1](*args, **kwargs)
        if not holding.is_set():
            holding.set()
            time.sleep(0.8)  # the row lock is held: the other request waits on it

    monkeypatch.setattr(notifications, hook[0], slow)
    answers = {}

    def run(name, browser, url, data):
        with app.app_context():
            answers[name] = browser.client.post(url, data=data)

    leader = {"merge": ("merge", merger, f"{desk}merge", merge_data),
              "reply": ("reply", replier, f"{desk}reply", reply_data)}  # fmt: skip
    other = "reply" if first_in == "merge" else "merge"
    threads = [threading.Thread(target=run, args=leader[first_in])]
    threads[0].start()
    assert holding.wait(20)
    threads.append(threading.Thread(target=run, args=leader[other]))
    threads[1].start()
    for t in threads:
        t.join(30)
    db.session.commit()
    return first, second, answers


def test_a_reply_waiting_on_the_merge_lands_in_the_survivor(app, db, login_as, make, monkeypatch):
    first, second, answers = _race(app, db, login_as, make, monkeypatch, first_in="merge")
    assert answers["merge"].status_code == 302
    assert answers["reply"].status_code == 302, answers["reply"].get_data(as_text=True)[:800]
    body = TicketMessage.body == "Balasan di tengah penggabungan"
    assert _count(db, TicketMessage, body, TicketMessage.ticket_id == first.id) == 1
    assert _count(db, TicketMessage, TicketMessage.ticket_id == second.id) == 0
    assert db.session.get(Ticket, second.id).merged_into_id == first.id


def test_a_merge_waiting_on_a_reply_is_refused(app, db, login_as, make, monkeypatch):
    first, second, answers = _race(app, db, login_as, make, monkeypatch, first_in="reply")
    assert answers["reply"].status_code == 302
    assert answers["merge"].status_code == 409
    assert "changed by someone else" in answers["merge"].get_data(as_text=True)
    db.session.expire_all()
    kept = db.session.get(Ticket, second.id)
    assert kept.merged_into_id is None and kept.status is not TicketStatus.FINISHED
    body = TicketMessage.body == "Balasan di tengah penggabungan"
    assert _count(db, TicketMessage, body, TicketMessage.ticket_id == second.id) == 1

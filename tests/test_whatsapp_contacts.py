"""Contact-only customers made from WhatsApp: one per phone, even when two first messages
race; claimed by the owner of the phone."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from backoffice.domain import contacts
from backoffice.models import TicketMessage, User

from .test_whatsapp_inbound import SENDER, deliver, process
from .whatsapp import payloads


def contacts_for(db, key="+6281234567890") -> list[User]:
    db.session.commit()
    db.session.expire_all()
    return list(db.session.scalars(select(User).where(User.phone_key == key)))


def test_two_first_messages_at_once_make_one_contact(whatsapp, client, db, app, monkeypatch):
    """Both workers look the phone up before either inserts (held at a barrier there):
    the second insert hits the unique phone, and its message joins the first contact."""
    if db.engine.dialect.name == "sqlite":
        pytest.skip("SQLite serialises writers; run with TEST_DATABASE_URL (MariaDB).")
    from backoffice.channels.whatsapp_in import process_pending

    deliver(
        client,
        payloads.text("Halo, pertama", sender=SENDER),
        payloads.text("Halo, kedua", sender=SENDER),
    )
    db.session.commit()
    both_looked = threading.Barrier(2, timeout=20)
    real_find = contacts.find_customer
    looked = threading.local()

    def find_then_wait(**kw):
        found = real_find(**kw)
        if not getattr(looked, "done", False):
            looked.done = True
            both_looked.wait()
        return found

    monkeypatch.setattr(contacts, "find_customer", find_then_wait)
    reports, errors = [], []

    def worker():
        try:
            with app.app_context():
                reports.append(process_pending(batch=1))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    from backoffice.models import WhatsAppInbox

    db.session.commit()
    problems = db.session.scalars(select(WhatsAppInbox.last_error)).all()
    assert sorted(r.done for r in reports) == [1, 1], problems  # both posted, no retry
    (contact,) = contacts_for(db)
    assert contact.contact_only and contact.contact_phone_key == "+6281234567890"
    posted = db.session.execute(
        select(TicketMessage.body, TicketMessage.ticket_id).where(
            TicketMessage.author_id == contact.id
        )
    ).all()
    assert sorted(body for body, _t in posted) == ["Halo, kedua", "Halo, pertama"]
    assert len({ticket for _b, ticket in posted}) == 1  # and one ticket


def test_in_turn_the_second_message_finds_the_first_contact(whatsapp, client, db):
    deliver(client, payloads.text("Halo", sender=SENDER))
    process(db)
    deliver(client, payloads.text("Halo lagi", sender="081234567890"))
    process(db)
    (contact,) = contacts_for(db)
    assert db.session.scalar(select(func.count()).select_from(TicketMessage)) >= 2
    assert contact.contact_phone_key == "+6281234567890"


def test_the_phone_of_a_contact_is_unique_in_the_database(app, db):
    from sqlalchemy.exc import IntegrityError

    first, created = contacts.find_or_create_contact(phone="081234567890")
    db.session.commit()
    assert created
    twin = User(
        email="other@contact.invalid",
        contact_phone_key="+6281234567890",
        fs_uniquifier="x" * 32,
        contact_only=True,
    )
    db.session.add(twin)
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()
    again, created = contacts.find_or_create_contact(phone="+62 812 3456 7890")
    assert (again.id, created) == (first.id, False)


# --- claiming: the owner of the phone adds the contact's tickets to their account ------


def whatsapp_contact(client, db, hours_ago=0):
    import time

    stamp = int(time.time() - hours_ago * 3600)
    deliver(client, payloads.text("Paket saya belum sampai", sender=SENDER, timestamp=stamp))
    process(db)
    (contact,) = contacts_for(db)
    return contact


def claim_link(db) -> str:
    import re

    from backoffice.models import OutboxWhatsApp

    db.session.commit()
    rows = db.session.scalars(
        select(OutboxWhatsApp).where(OutboxWhatsApp.send_key.like("claim_phone:%"))
    ).all()
    assert len(rows) == 1, rows
    text = rows[0].body if rows[0].kind.value == "text" else rows[0].template_params
    return re.search(r"https?://[^/\s\"]+(/account/phone/[^\s\"]+)", text).group(1)


def test_registering_with_the_phone_sends_a_link_that_moves_the_tickets(
    whatsapp, client, db, browser
):
    from backoffice.channels.whatsapp_out import send_pending
    from backoffice.models import Ticket

    from .test_portal_accounts import NEW_USER, _confirm

    contact = whatsapp_contact(client, db)
    resp = browser.post("/register", {**NEW_USER, "phone": "0812-3456-7890"})
    assert resp.status_code == 302
    link = claim_link(db)
    assert send_pending().sent == 1
    (sent,) = whatsapp.sends()
    assert sent["type"] == "text" and sent["to"] == SENDER and link in sent["text"]["body"]

    user = db.session.scalar(select(User).where(User.email == NEW_USER["email"]))
    db.session.expire_all()
    tickets_before = db.session.scalars(select(Ticket).where(Ticket.customer_id == contact.id))
    (ticket,) = tickets_before
    _confirm(browser, db, NEW_USER["email"])
    assert browser.get(link).status_code == 302  # signed out: to the login page
    browser.login(user, password=NEW_USER["password"])
    page = browser.get(link)
    assert page.status_code == 200 and "+6281234567890" in page.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Ticket, ticket.id).customer_id == contact.id  # GET moved nothing
    resp = browser.post(link, {})
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/tickets")
    db.session.expire_all()
    assert db.session.get(Ticket, ticket.id).customer_id == user.id
    assert browser.get(f"/tickets/{ticket.number}").status_code == 200
    retired = db.session.get(User, contact.id)
    assert not retired.active and retired.contact_phone_key is None
    assert browser.post(link, {}, form_url="/account").status_code == 404  # once

    # The phone's next message is the account's, in the same open ticket.
    deliver(client, payloads.text("Sudah daftar", sender=SENDER))
    process(db)
    last = db.session.scalars(select(TicketMessage).order_by(TicketMessage.id.desc())).first()
    assert (last.author_id, last.ticket_id) == (user.id, ticket.id)
    assert [u.id for u in contacts_for(db) if u.active] == [user.id]


def test_another_account_cannot_use_the_link(whatsapp, client, db, login_as, make):
    from backoffice.domain import permissions as perm
    from backoffice.models import Ticket

    contact = whatsapp_contact(client, db)
    owner = make.user(phone="081234567890")
    db.session.commit()
    from backoffice.domain import phone_claims

    assert phone_claims.offer(owner)
    db.session.commit()
    link = claim_link(db)
    b, _other = login_as(perm.CUSTOMER, phone="081234567890")
    assert b.get(link).status_code == 404
    assert b.post(link, {}, form_url="/account").status_code == 404
    db.session.expire_all()
    assert db.session.scalars(select(Ticket.customer_id)).all() == [contact.id]


def test_adding_the_phone_on_the_account_page_sends_the_link(whatsapp, client, db, login_as):
    contact = whatsapp_contact(client, db)
    b, user = login_as("customer")
    resp = b.post("/account", {"name": "Budi", "phone": "+62 812 3456 7890", "locale": "id"})
    assert resp.status_code == 302
    page = b.get("/account").get_data(as_text=True)
    assert "WhatsApp" in page  # the message that a link was sent
    link = claim_link(db)
    assert link.startswith("/account/phone/")
    assert contact.contact_only


def test_outside_the_window_the_link_needs_the_verify_template(whatsapp, client, db, make):
    from backoffice.domain import phone_claims
    from backoffice.models import WhatsAppTemplateUse

    from .test_whatsapp_templates import add_template

    whatsapp_contact(client, db, hours_ago=30)
    user = make.user(phone="081234567890")
    db.session.commit()
    assert not phone_claims.offer(user)  # no text outside the window, no template
    add_template(
        db,
        name="carebox_tambah_nomor",
        params=("tautan_klaim",),
        use=WhatsAppTemplateUse.VERIFY_PHONE,
    )
    assert phone_claims.offer(user)
    assert phone_claims.offer(user)  # asked again: still one message
    db.session.commit()
    assert claim_link(db).startswith("/account/phone/")

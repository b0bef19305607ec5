"""Contact-only customers: made from inbound messages, claimed only with proof of ownership."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from backoffice.domain import contacts, inbound
from backoffice.domain.inbound import Incoming
from backoffice.models import MessageChannel, OutboxEmail, Ticket, User

from .conftest import Browser
from .portal_support import text

EN = {"Accept-Language": "en"}


@pytest.fixture
def generic(app, monkeypatch):
    """Registration answers alike for new and existing addresses (Flask-Security's generic
    responses), which is what sends an existing address its notice."""
    monkeypatch.setitem(app.config, "SECURITY_RETURN_GENERIC_RESPONSES", True)


@pytest.fixture
def contact(db):
    got = inbound.receive(
        Incoming(
            channel=MessageChannel.EMAIL,
            email="rina@example.com",
            name="Rina",
            subject="Paket rusak",
            body="Paket saya rusak.",
        )
    )
    db.session.commit()
    return db.session.get(User, got.customer.id)


def claim_mails(db, address="rina@example.com") -> list[OutboxEmail]:
    return list(
        db.session.scalars(
            select(OutboxEmail).where(
                OutboxEmail.recipient.contains(address),
                OutboxEmail.body_text.contains("/account/claim/"),
            )
        )
    )


def claim_link(mail: OutboxEmail) -> str:
    return re.search(r"https?://[^/\s]+(/account/claim/\S+)", mail.body_text).group(1)


def register(client, email, password="Zq8!mango-Walk", name="Someone Else"):
    b = Browser(client)
    return b.post(
        "/register",
        {"email": email, "name": name, "password": password, "password_confirm": password},
    )


def test_a_contact_cannot_sign_in(client, contact):
    for password in ("", "password", "None"):
        resp = Browser(client).post("/login", {"email": contact.email, "password": password})
        assert resp.status_code == 200  # the form again, not a redirect into the portal
    assert client.get("/tickets").status_code in (302, 401)


def test_registering_with_a_contacts_address_mails_a_claim_link_and_changes_nothing(
    app, client, db, contact, generic
):
    resp = register(client, "Rina@example.com")
    assert resp.status_code in (302, 303)  # answered like any registration
    db.session.expire_all()
    still = db.session.get(User, contact.id)
    assert still.contact_only and still.password is None and still.name == "Rina"
    [mail] = claim_mails(db)
    assert "rina@example.com" in mail.recipient
    # Opening the link (a mail scanner, say) changes nothing either.
    link = claim_link(mail)
    page = client.get(link, headers=EN)
    assert page.status_code == 200 and "rina@example.com" in text(page)
    db.session.expire_all()
    assert db.session.get(User, contact.id).contact_only


def test_the_owner_claims_the_record_with_its_tickets_from_the_link(app, db, contact, generic):
    register(app.test_client(), "rina@example.com")
    link = claim_link(claim_mails(db)[0])
    owner = Browser(app.test_client())
    resp = owner.post(
        link,
        {
            "name": "Rina Wati",
            "password": "Zq8!mango-Walk",
            "password_confirm": "Zq8!mango-Walk",
        },
        form_url=link,
    )
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/tickets")
    db.session.expire_all()
    user = db.session.get(User, contact.id)
    assert not user.contact_only and user.password and user.confirmed_at
    assert user.name == "Rina Wati"
    tickets = owner.get("/tickets")
    assert "Paket rusak" in text(tickets)
    # Signed out and in again with the chosen password.
    owner.logout()
    owner.login(user, password="Zq8!mango-Walk")
    # The link worked once.
    again = app.test_client().get(link, headers=EN)
    assert again.status_code == 404 and "used already" in text(again)


def test_a_weak_or_mismatched_password_is_refused_and_nothing_changes(app, db, contact, generic):
    register(app.test_client(), "rina@example.com")
    link = claim_link(claim_mails(db)[0])
    b = Browser(app.test_client())
    for pw, confirm in (("short", "short"), ("Zq8!mango-Walk", "Zq8!mango-Talk")):
        resp = b.post(
            link, {"name": "Rina", "password": pw, "password_confirm": confirm}, form_url=link
        )
        assert resp.status_code == 400
    db.session.expire_all()
    assert db.session.get(User, contact.id).contact_only


def test_a_tampered_or_expired_link_claims_nothing(app, db, contact, generic, monkeypatch):
    register(app.test_client(), "rina@example.com")
    link = claim_link(claim_mails(db)[0])
    client = app.test_client()
    assert client.get(link[:-2] + "xx").status_code == 404
    monkeypatch.setitem(app.config, "CAREBOX_CLAIM_LINK_HOURS", -1)  # issued an hour "too long" ago
    resp = client.get(link, headers=EN)
    assert resp.status_code == 404 and "expired" in text(resp)


def test_registering_with_a_real_accounts_address_sends_no_claim_link(app, db, make, generic):
    make.user(email="taken@example.com")
    db.session.commit()
    resp = register(app.test_client(), "taken@example.com")
    assert resp.status_code in (302, 303)
    assert claim_mails(db, "taken@example.com") == []


def test_a_claim_link_of_one_record_cannot_claim_another(app, db, contact):
    other = inbound.receive(
        Incoming(channel=MessageChannel.EMAIL, email="dodi@example.com", body="Halo")
    ).customer
    db.session.commit()
    token = contacts.claim_token(contact)
    state, user = contacts.check_claim(token)
    assert user.id == contact.id and user.id != other.id
    forged = contacts.sign("claim", {"u": other.id, "f": contact.fs_uniquifier})
    assert contacts.check_claim(forged)[1] is None


def test_a_password_reset_mailed_to_the_address_also_claims_it(app, db, contact):
    from flask_security.recoverable import update_password

    with app.test_request_context():
        update_password(contact, "Zq8!mango-Walk")
    assert not contact.contact_only and contact.confirmed_at is not None


def test_claimed_records_keep_their_tickets(db, contact):
    tickets = db.session.scalars(select(Ticket).where(Ticket.customer_id == contact.id)).all()
    contacts.claim(contact, password="Zq8!mango-Walk", name="Rina", now=None)
    assert [t.customer_id for t in tickets] == [contact.id]
    with pytest.raises(contacts.DomainError):
        contacts.claim(contact, password="x", name="Rina")

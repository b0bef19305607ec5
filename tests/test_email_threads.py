"""Outbound mail that can be answered: reply tokens and threading (channels/email_threads.py)."""

from __future__ import annotations

import json
from email import message_from_bytes, policy

import pytest
from sqlalchemy import select

from backoffice.channels import email_threads as threads
from backoffice.channels import mailer
from backoffice.domain import inbound
from backoffice.domain import permissions as perm
from backoffice.domain import tickets as lifecycle
from backoffice.domain.inbound import Incoming
from backoffice.models import MessageChannel, OutboxEmail, TicketStatus

from .security_support import as_sent


def mails(db, address=None) -> list[OutboxEmail]:
    stmt = select(OutboxEmail).order_by(OutboxEmail.id)
    if address:
        stmt = stmt.where(OutboxEmail.recipient.contains(address))
    return as_sent(db.session.scalars(stmt))


def headers(row: OutboxEmail) -> dict:
    return json.loads(row.headers or "{}")


def test_a_token_names_its_ticket_and_no_other(db, make):
    a, b = make.ticket(), make.ticket()
    token = threads.reply_token(a)
    assert threads.ticket_id_of(token) == a.id
    assert threads.ticket_id_of(token.upper()) == a.id  # a client that changes the case
    assert token == token.lower() and len(token.split("-")[1]) == 20
    # Moving it: b's id with a's MAC, or a MAC edited by one character.
    moved = f"{threads.reply_token(b).split('-')[0]}-{token.split('-')[1]}"
    assert threads.ticket_id_of(moved) is None
    last = token[-1]
    edited = token[:-1] + ("a" if last != "a" else "b")
    assert threads.ticket_id_of(edited) is None
    for junk in ("", "1-", "x" * 40, "1-" + "a" * 19, "0-" + "a" * 20, "zzzzzzzzzzzzz-" + "a" * 20):
        assert threads.ticket_id_of(junk) is None


def test_tokens_survive_a_key_rotation_and_not_a_stranger_key(app, db, make, monkeypatch):
    ticket = make.ticket()
    token = threads.reply_token(ticket)
    old_key = app.config["SECRET_KEY"]
    monkeypatch.setitem(app.config, "SECRET_KEY", "a brand new key")
    assert threads.ticket_id_of(token) is None
    monkeypatch.setitem(app.config, "SECRET_KEY_FALLBACKS", [old_key])
    assert threads.ticket_id_of(token) == ticket.id


def test_tokens_are_found_in_addresses_and_thread_roots(db, make):
    ticket = make.ticket()
    address = threads.reply_address(ticket)
    assert address.startswith("reply+") and address.endswith("@reply.carebox.example")
    token = threads.reply_token(ticket)
    assert threads.tokens_in_addresses([f'"carebox" <{address.upper()}>']) == [token]
    assert threads.tokens_in_addresses(["someone@example.com, " + address]) == [token]
    assert threads.tokens_in_addresses(["xreply+" + token + "@d"]) == []
    refs = f"<abc@mail.gmail.com> {threads.thread_root(ticket)}"
    assert threads.tokens_in_references([refs]) == [token]


def test_every_email_about_a_ticket_can_be_answered_and_threads(db, make):
    customer = make.user(email="budi@example.com", locale="en")
    ticket = make.ticket(customer=customer)
    master = make.user(perm.MASTER_ADMIN)
    make.user(perm.ADMIN_DEPARTMENT, department="OPS")
    lifecycle.dispatch(ticket, make.department("OPS"), master)
    lifecycle.post_message(ticket, master, "We are on it.")
    lifecycle.finish(ticket, master)
    db.session.flush()
    to_customer = mails(db, "budi@example.com")
    assert len(to_customer) == 3  # filed, staff reply, finished
    to_admins = [m for m in mails(db) if "budi@example.com" not in m.recipient]
    assert to_admins  # the department's admins heard of the dispatch
    root = threads.thread_root(ticket)
    for row in to_customer + to_admins:
        h = headers(row)
        assert ticket.number in row.subject
        assert h["Reply-To"] == f"carebox {ticket.number} <{threads.reply_address(ticket)}>"
        assert h["In-Reply-To"] == root and h["References"] == root
        assert h["X-Auto-Response-Suppress"] == "All"
        assert row.message_id and row.message_id.startswith("<")
    filed, reply, finished = to_customer
    assert headers(filed)["Auto-Submitted"] == "auto-generated"
    assert headers(finished)["Auto-Submitted"] == "auto-generated"
    assert "Auto-Submitted" not in headers(reply)  # a person wrote it
    assert "— Write your reply above this line —" in reply.body_text.splitlines()[0]
    assert "You can also answer by replying to this email." in reply.body_text


def test_a_reply_to_the_customers_email_names_it(db, make):
    customer = make.user(email="siti@example.com")
    got = inbound.receive(
        Incoming(
            channel=MessageChannel.EMAIL,
            email=customer.email,
            body="Paket saya?",
            external_id="<CAF=abc@mail.gmail.com>",
        )
    )
    master = make.user(perm.MASTER_ADMIN)
    lifecycle.post_message(got.ticket, master, "Sedang dicek.")
    reply = mails(db, "siti@example.com")[-1]
    h = headers(reply)
    assert h["In-Reply-To"] == "<CAF=abc@mail.gmail.com>"
    assert h["References"] == f"{threads.thread_root(got.ticket)} <CAF=abc@mail.gmail.com>"


def test_the_sent_message_carries_the_headers_as_they_are(db, make):
    ticket = make.ticket(status=TicketStatus.RESPONDED)
    db.session.commit()
    sent = []

    class Capture:
        def send(self, message):
            sent.append(message.as_bytes(policy=policy.SMTP))

        def close(self):
            pass

    rows = mailer.claim(batch=50)
    mailer.deliver(rows, sender=Capture())
    parsed = [message_from_bytes(raw, policy=policy.default) for raw in sent]
    reply = next(
        m for m in parsed if "New reply" in str(m["Subject"]) or "Balasan" in str(m["Subject"])
    )
    assert reply["Reply-To"].addresses[0].addr_spec == threads.reply_address(ticket)
    assert reply["In-Reply-To"] == threads.thread_root(ticket)
    assert reply["Message-ID"] and "=?" not in reply["Message-ID"]


def test_no_reply_domain_no_reply_to(app, db, make, monkeypatch):
    monkeypatch.setitem(app.config, "CAREBOX_REPLY_DOMAIN", "")
    ticket = make.ticket()
    row = mails(db)[-1]
    assert "Reply-To" not in headers(row) and headers(row)["X-Carebox-Ticket"] == ticket.number
    assert "— Write your reply above this line —" not in row.body_text


@pytest.mark.parametrize("locale", ["id", "en"])
def test_a_contact_is_told_to_answer_by_email_not_sent_to_a_login(db, make, locale):
    got = inbound.receive(
        Incoming(channel=MessageChannel.EMAIL, email="ani@example.com", body="Halo", locale=locale)
    )
    master = make.user(perm.MASTER_ADMIN)
    lifecycle.post_message(got.ticket, master, "Halo juga.")
    reply = mails(db, "ani@example.com")[-1]
    assert f"/tickets/{got.ticket.number}" not in reply.body_text
    assert "/register" in reply.body_text and "/register" in reply.body_html
    if locale == "en":
        assert "Answer us by replying to this email." in reply.body_text
        assert "this address wrote to carebox customer care" in reply.body_text

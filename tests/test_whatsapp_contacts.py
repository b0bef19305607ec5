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

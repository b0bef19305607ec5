"""`carebox mail fetch`: inbound mail from an IMAP mailbox, against a real dovecot.

The test starts its own dovecot (tests/mail_support.py: IMAP on a free loopback port,
Maildir in a temporary directory) and puts mail in its INBOX with IMAP APPEND, as a
mail server's delivery would.
"""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import func, select

from backoffice.channels import email_in, mail_fetch
from backoffice.models import (
    InboundEmail,
    InboundReason,
    InboundStatus,
    TicketMessage,
    TicketStatus,
)

from .mail_support import Dovecot, corpus, message_id


@pytest.fixture(scope="module")
def dovecot():
    with Dovecot() as server:
        yield server


@pytest.fixture
def imap(app, dovecot, monkeypatch):
    monkeypatch.setitem(app.config, "CAREBOX_IMAP_URL", dovecot.url())
    # Each test starts with an empty INBOX.
    conn = mail_fetch.connect(mail_fetch.mailbox(dovecot.url()))
    conn.store("1:*", "+FLAGS.SILENT", r"(\Deleted)") if conn.select("INBOX")[1][
        0
    ] != b"0" else None
    conn.expunge()
    conn.logout()
    return dovecot


def _count(db, model, *where):
    db.session.commit()  # a fresh snapshot
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def test_fetch_stores_processes_and_marks_seen(app, db, make, imap):
    customer = make.user(email="budi@example.net")
    ticket = make.ticket(status=TicketStatus.RESPONDED, customer=customer)
    db.session.commit()
    imap.deliver(corpus("gmail_reply_id.eml", sender="budi@example.net", ticket=ticket))
    imap.deliver(corpus("out_of_office.eml", sender="budi@example.net", ticket=ticket))
    runner = app.test_cli_runner()
    result = runner.invoke(args=["mail", "fetch"])
    assert result.exit_code == 0, result.output
    assert "fetched 2 (ignored: 1, posted: 1)" in result.output
    assert imap.unseen() == 0
    db.session.commit()  # a fresh snapshot (MariaDB: REPEATABLE READ)
    [message] = db.session.scalars(
        select(TicketMessage)
        .where(TicketMessage.ticket_id == ticket.id, ~TicketMessage.from_staff)
        .order_by(TicketMessage.id.desc())
        .limit(1)
    )
    assert message.body == "Sudah sampai, terima kasih banyak atas bantuannya \U0001f64f"
    reasons = db.session.scalars(select(InboundEmail.reason).order_by(InboundEmail.id)).all()
    assert reasons == [None, InboundReason.AUTO_REPLY]
    assert "fetched 0" in runner.invoke(args=["mail", "fetch"]).output


def test_the_same_message_twice_in_the_mailbox_is_one_message(app, db, make, imap):
    make.user(email="siti@example.net")
    db.session.commit()
    raw = corpus("plain_new.eml", sender="siti@example.net", mid=message_id())
    imap.deliver(raw)
    imap.deliver(raw)
    result = app.test_cli_runner().invoke(args=["mail", "fetch"])
    assert "fetched 2 (duplicate: 1, posted: 1)" in result.output
    assert _count(db, InboundEmail) == 1


def test_mail_that_cannot_be_stored_stays_unseen_on_the_server(app, db, imap, monkeypatch):
    def down(*args, **kwargs):
        raise ConnectionRefusedError("database down")

    monkeypatch.setattr(email_in, "store", down)
    imap.deliver(corpus("plain_new.eml", sender="rudi@example.net"))
    result = app.test_cli_runner().invoke(args=["mail", "fetch"])
    assert result.exit_code != 0
    assert imap.unseen() == 1 and _count(db, InboundEmail) == 0
    monkeypatch.undo()
    app.config["CAREBOX_IMAP_URL"] = imap.url()
    assert "posted: 1" in app.test_cli_runner().invoke(args=["mail", "fetch"]).output


def test_the_loop_waits_in_idle_and_takes_new_mail_at_once(app, db, imap):
    stop = threading.Event()
    # An interval far longer than the wait below: only IDLE can bring the mail in time.
    worker = threading.Thread(
        target=mail_fetch.run_loop, args=(app, imap.url(), 120.0, stop), daemon=True
    )
    worker.start()
    try:
        time.sleep(1.0)  # the loop is in IDLE now (its first fetch found nothing)
        imap.deliver(corpus("plain_new.eml", sender="agus@example.net"))
        deadline = time.monotonic() + 30
        while _count(db, InboundEmail, InboundEmail.status == InboundStatus.POSTED) == 0:
            assert time.monotonic() < deadline, "IDLE did not wake the loop"
            time.sleep(0.2)
    finally:
        stop.set()
        worker.join(timeout=10)
    assert not worker.is_alive()  # the stop ends IDLE, not only its timeout
    assert imap.unseen() == 0


def test_a_bad_imap_url_is_a_clear_error(app, db, monkeypatch):
    monkeypatch.setitem(app.config, "CAREBOX_IMAP_URL", "http://nope")
    result = app.test_cli_runner().invoke(args=["mail", "fetch"])
    assert result.exit_code == 2 and "CAREBOX_IMAP_URL must look like" in result.output

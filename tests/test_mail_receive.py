"""`carebox mail receive`: a real LMTP/SMTP conversation on loopback (channels/mail_server.py)."""

from __future__ import annotations

import os
import signal
import smtplib
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from backoffice.channels import email_in
from backoffice.models import InboundEmail, InboundStatus, MessageChannel, TicketMessage

from .mail_support import Receiver, corpus, message_id
from .servers import free_port


@pytest.fixture
def receiver(app, db):
    with Receiver(app) as running:
        yield running


def _rows(db):
    db.session.commit()  # a fresh snapshot (MariaDB: REPEATABLE READ)
    return list(db.session.scalars(select(InboundEmail).order_by(InboundEmail.id)))


def _email_messages(db):
    db.session.commit()  # a fresh snapshot (MariaDB: REPEATABLE READ)
    stmt = select(TicketMessage).where(TicketMessage.channel == MessageChannel.EMAIL)
    return list(db.session.scalars(stmt))


def test_an_lmtp_delivery_is_stored_then_posted(db, make, receiver):
    customer = make.user(email="budi@example.net")
    db.session.commit()
    raw = corpus("plain_new.eml", sender="budi@example.net")
    code, text = receiver.deliver(raw, mail_from="budi@example.net")
    assert (code, text) == (250, b"2.0.0 Message accepted")
    [row] = _rows(db)
    assert row.status is InboundStatus.POSTED and row.raw == raw and row.size == len(raw)
    assert row.mail_from == "budi@example.net"
    assert row.recipients == "care@reply.carebox.example"
    [message] = _email_messages(db)
    assert message.id == row.ticket_message_id and message.ticket.customer_id == customer.id
    assert message.body.startswith("Selamat pagi,\n\nPaket saya dengan resi CB123456785ID")
    assert message.ticket.subject == "Paket belum sampai"


def test_an_smtp_listener_with_smtp(app, db, make):
    make.user(email="budi@example.net")
    db.session.commit()
    with Receiver(app, smtp=True) as smtp:
        code, _ = smtp.deliver(corpus("plain_new.eml", sender="budi@example.net"))
    assert code == 250
    assert [r.status for r in _rows(db)] == [InboundStatus.POSTED]


def test_the_same_message_delivered_twice_is_one_message(db, make, receiver):
    make.user(email="budi@example.net")
    db.session.commit()
    raw = corpus("plain_new.eml", sender="budi@example.net", mid=message_id())
    assert receiver.deliver(raw)[0] == 250
    assert receiver.deliver(raw)[0] == 250  # the MTA did not hear the first 250: it resends
    assert len(_rows(db)) == 1 and len(_email_messages(db)) == 1


def test_a_message_over_the_size_limit_is_refused_for_good(app, db, monkeypatch):
    monkeypatch.setitem(app.config, "CAREBOX_MAIL_MAX_BYTES", 50_000)
    raw = corpus("plain_new.eml", sender="budi@example.net") + (b"x" * 76 + b"\r\n") * 800
    with Receiver(app) as small, small.client() as client:
        assert client.has_extn("size") and client.esmtp_features["size"] == "50000"
        # A client that announces the size is refused at MAIL FROM ...
        code, _ = client.mail("budi@example.net", options=["SIZE=110000"])
        assert code == 552
        client.rset()
        # ... one that does not, after the data: a permanent refusal, nothing stored.
        client.mail("budi@example.net")
        client.rcpt("care@reply.carebox.example")
        code, _ = client.data(raw)
        assert code == 552
    assert _rows(db) == []


def test_lmtp_takes_one_recipient_per_transaction(db, receiver):
    with receiver.client() as client:
        client.mail("budi@example.net")
        assert client.rcpt("care@reply.carebox.example")[0] == 250
        code, text = client.rcpt("other@reply.carebox.example")
        assert code == 452 and text.startswith(b"4.5.3")


def test_a_processing_failure_keeps_the_mail_for_mail_process(app, db, make, receiver, monkeypatch):
    make.user(email="budi@example.net")
    db.session.commit()
    real = email_in._decide

    def broken(row, now):
        raise RuntimeError("parser bug")

    monkeypatch.setattr(email_in, "_decide", broken)
    assert receiver.deliver(corpus("plain_new.eml", sender="budi@example.net"))[0] == 250
    [row] = _rows(db)
    assert row.status is InboundStatus.RECEIVED and row.attempts == 1
    assert row.last_error == "RuntimeError: parser bug"
    assert _email_messages(db) == []

    monkeypatch.setattr(email_in, "_decide", real)
    runner = app.test_cli_runner()
    result = runner.invoke(args=["mail", "process"])
    assert result.exit_code == 0 and "processed 1 (posted: 1)" in result.output
    assert [r.status for r in _rows(db)] == [InboundStatus.POSTED]
    assert len(_email_messages(db)) == 1
    again = runner.invoke(args=["mail", "process"])
    assert "processed 0" in again.output and len(_email_messages(db)) == 1


def test_mail_status_counts_by_status_and_reason(app, db, make, receiver):
    make.user(email="budi@example.net")
    db.session.commit()
    receiver.deliver(corpus("plain_new.eml", sender="budi@example.net"))
    out = app.test_cli_runner().invoke(args=["mail", "status"]).output
    assert "last 24 h: posted 1" in out
    assert "waiting: 0 held for review, 0 not processed yet" in out


def test_the_database_refusing_the_row_is_a_temporary_failure(db, receiver, monkeypatch):
    def down(*args, **kwargs):
        raise ConnectionRefusedError("database down")

    monkeypatch.setattr(email_in, "store", down)
    with pytest.raises(smtplib.SMTPDataError) as refused, receiver.client() as client:
        client.sendmail("budi@example.net", ["care@reply.carebox.example"], b"Subject: x\r\n\r\nx")
    assert refused.value.smtp_code == 451
    assert db.session.scalar(select(func.count()).select_from(InboundEmail)) == 0


def test_the_carebox_mail_receive_command_serves_and_stops_on_sigterm(tmp_path):
    """The real command in its own process, as deploy/systemd/carebox-mail.service runs it."""
    carebox = Path(sys.executable).with_name("carebox")
    env = {
        **os.environ,
        "CAREBOX_ENV": "development",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'mail.db'}",
        "UPLOAD_FOLDER": str(tmp_path / "uploads"),
    }
    subprocess.run([carebox, "db", "upgrade"], env=env, check=True, capture_output=True)  # noqa: S603
    subprocess.run([carebox, "seed"], env=env, check=True, capture_output=True)  # noqa: S603
    port = free_port()
    proc = subprocess.Popen(  # noqa: S603
        [carebox, "mail", "receive", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                client = smtplib.LMTP("127.0.0.1", port, timeout=5)
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read()
                time.sleep(0.2)
        with client:
            client.ehlo("mx.example.net")
            raw = corpus("plain_new.eml", sender="new@example.net")
            assert client.sendmail("new@example.net", ["care@reply.carebox.example"], raw) == {}
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
    assert f"mail: LMTP on 127.0.0.1:{port}" in out and "mail: stopped" in out
    status = subprocess.run(  # noqa: S603
        [carebox, "mail", "status"], env=env, check=True, capture_output=True, text=True
    )
    assert "last 24 h: posted 1" in status.stdout

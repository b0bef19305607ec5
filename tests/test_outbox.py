"""The outbox: transactional enqueue, SMTP delivery, retries, outages, and no double sends."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from flask_security.recoverable import send_reset_password_instructions
from sqlalchemy import func, select

from backoffice import create_app
from backoffice.channels import mailer
from backoffice.config import ConfigError
from backoffice.domain.outbox import enqueue
from backoffice.extensions import db as _db
from backoffice.models import OutboxEmail, OutboxStatus
from backoffice.models.base import utcnow

from .smtp_server import html_of, running_smtp, text_of


@pytest.fixture
def smtp(app, monkeypatch):
    yield from running_smtp(app, monkeypatch)


def rows(db) -> list[OutboxEmail]:
    """Outbox rows as committed (the worker writes on its own connections)."""
    db.session.commit()
    return list(db.session.scalars(select(OutboxEmail).order_by(OutboxEmail.id)))


def queue(db, n: int, prefix: str = "c") -> list[int]:
    ids = [enqueue(f"{prefix}{i}@example.com", f"Hello {i}", f"Body {i}").id for i in range(n)]
    db.session.flush()
    ids = [
        row.id
        for row in db.session.scalars(select(OutboxEmail).order_by(OutboxEmail.id))
        if row.recipient.startswith(prefix)
    ]
    db.session.commit()
    return ids


def close(a, b) -> bool:
    """Equal to the second (MySQL DATETIME keeps no fraction)."""
    return abs(a - b) <= timedelta(seconds=1)


def outbox_ids(messages) -> list[int]:
    return sorted(int(m["X-Carebox-Outbox-Id"]) for m in messages)


def test_enqueue_belongs_to_the_callers_transaction(db):
    enqueue("a@example.com", "Kept", "text")
    db.session.commit()
    enqueue("b@example.com", "Rolled back", "text")
    db.session.rollback()
    assert [r.subject for r in rows(db)] == ["Kept"]


def test_enqueue_refuses_header_injection_and_two_recipients(db):
    row = enqueue("a@example.com", "Hi\r\nBcc: evil@example.com", "text")
    assert row.subject == "Hi Bcc: evil@example.com"
    with pytest.raises(ValueError):
        enqueue("a@example.com, b@example.com", "Two", "text")


def test_delivers_text_and_html_over_smtp_once(db, smtp):
    enqueue(("Siti Aminah", "siti@example.com"), "Halo", "Plain body", "<p>HTML body</p>")
    db.session.commit()
    report = mailer.send_pending()
    assert (report.claimed, report.sent) == (1, 1)
    [msg] = smtp.messages
    assert msg["To"].addresses[0].addr_spec == "siti@example.com"
    assert msg["Subject"] == "Halo"
    assert msg["From"] == "carebox <no-reply@carebox.example>"
    assert msg["Message-ID"].endswith("@carebox.example>")
    assert text_of(msg).strip() == "Plain body"
    assert html_of(msg).strip() == "<p>HTML body</p>"
    [row] = rows(db)
    assert row.status is OutboxStatus.SENT and row.sent_at is not None
    assert row.claim_token is None and row.attempts == 1
    assert row.message_id == msg["Message-ID"]
    assert mailer.send_pending().claimed == 0
    assert len(smtp.messages) == 1


def test_without_mail_server_development_logs_the_mail(db, app, caplog, monkeypatch):
    monkeypatch.setitem(app.config, "MAIL_SERVER", "")
    # Alembic's fileConfig (the migrations test, same process) disables existing loggers.
    monkeypatch.setattr(logging.getLogger("carebox.outbox"), "disabled", False)
    enqueue("dev@example.com", "Dev mail", "Shown in the log")
    db.session.commit()
    with caplog.at_level(logging.INFO, logger="carebox.outbox"):
        assert mailer.send_pending().sent == 1
    assert "dev@example.com" in caplog.text and "Shown in the log" in caplog.text
    assert rows(db)[0].status is OutboxStatus.SENT


def test_production_without_mail_server_claims_nothing(db, app, monkeypatch):
    monkeypatch.setitem(app.config, "MAIL_SERVER", "")
    monkeypatch.setitem(app.config, "ENV_NAME", "production")
    enqueue("prod@example.com", "Prod", "text")
    db.session.commit()
    with pytest.raises(ConfigError):
        mailer.send_pending()
    [row] = rows(db)
    assert row.status is OutboxStatus.PENDING and row.attempts == 0


def test_outage_then_recovery_loses_nothing(db, smtp):
    ids = queue(db, 5)
    smtp.stop()  # the port is closed: connection refused
    t0 = utcnow()
    report = mailer.send_pending(now=t0)
    assert (report.claimed, report.sent, report.released) == (5, 0, 5)
    for row in rows(db):
        assert row.status is OutboxStatus.PENDING
        assert row.attempts == 0  # an outage spends no attempt, so it never gives up
        assert "SMTP unavailable" in row.last_error
        assert row.next_attempt_at > t0
    # Still down a minute later: still nothing lost.
    assert mailer.send_pending(now=t0 + timedelta(seconds=40)).released == 5
    smtp.start()
    assert mailer.send_pending(now=t0 + timedelta(seconds=50)).claimed == 0  # not due yet
    report = mailer.send_pending(now=t0 + timedelta(seconds=80))
    assert report.sent == 5
    assert outbox_ids(smtp.messages) == ids
    assert {r.status for r in rows(db)} == {OutboxStatus.SENT}
    assert mailer.send_pending(now=t0 + timedelta(hours=1)).claimed == 0
    assert len(smtp.messages) == 5


def test_refused_message_retries_with_backoff_then_fails(db, smtp, app, monkeypatch):
    monkeypatch.setitem(app.config, "CAREBOX_OUTBOX", {"max_attempts": 3, "backoff_seconds": 60})
    smtp.handler.tempfail.add("busy@example.com")
    enqueue("busy@example.com", "Retry me", "text")
    enqueue("ok@example.com", "Fine", "text")
    db.session.commit()
    t0 = utcnow()
    report = mailer.send_pending(now=t0)
    assert (report.sent, report.retried) == (1, 1)
    busy = rows(db)[0]
    assert busy.status is OutboxStatus.PENDING and busy.attempts == 1
    assert close(busy.next_attempt_at, t0 + timedelta(seconds=60))
    assert "451" in busy.last_error
    t1 = t0 + timedelta(seconds=61)
    assert mailer.send_pending(now=t1).retried == 1
    busy = rows(db)[0]
    assert busy.attempts == 2
    assert close(busy.next_attempt_at, t1 + timedelta(seconds=120))
    assert mailer.send_pending(now=t1 + timedelta(seconds=60)).claimed == 0  # backoff holds
    assert mailer.send_pending(now=t1 + timedelta(seconds=121)).failed == 1
    busy = rows(db)[0]
    assert busy.status is OutboxStatus.FAILED and busy.attempts == 3
    assert mailer.send_pending(now=t1 + timedelta(days=1)).claimed == 0
    assert [m["To"] for m in smtp.messages] == ["ok@example.com"]


def test_permanent_refusal_fails_at_once(db, smtp):
    smtp.handler.refuse.add("nobody@example.com")
    enqueue("nobody@example.com", "Bounce", "text")
    db.session.commit()
    assert mailer.send_pending().failed == 1
    [row] = rows(db)
    assert row.status is OutboxStatus.FAILED and "550" in row.last_error


def test_dead_workers_claim_is_retried_after_the_timeout(db, smtp):
    """Two minutes by default (issue 9 item 17), not ten."""
    assert mailer.settings()["claim_timeout_seconds"] == 120
    ids = queue(db, 3)
    t0 = utcnow()
    dead = mailer.claim(now=t0)  # this worker dies before sending
    assert len(dead) == 3
    assert mailer.send_pending(now=t0 + timedelta(seconds=115)).claimed == 0
    report = mailer.send_pending(now=t0 + timedelta(seconds=121))
    assert report.sent == 3
    assert outbox_ids(smtp.messages) == ids
    assert {r.attempts for r in rows(db)} == {2}


def test_a_long_batch_keeps_its_claim_by_renewing_it(db, smtp):
    """A live worker whose batch outlasts the claim timeout renews before each send: a
    second worker polling all along takes nothing, and every email goes out once."""
    ids = queue(db, 5)
    t0 = utcnow()
    now = [t0]
    rows_ = mailer.claim(now=t0)
    real = mailer.SMTPTransport(mailer.current_app.config)
    rival_claims = []

    class SlowSMTP:
        def send(self, message):
            real.send(message)
            now[0] += timedelta(seconds=50)  # each send takes 50 s: 250 s for the batch
            rival_claims.extend(mailer.claim(now=now[0]))

        def close(self):
            real.close()

    report = mailer.deliver(rows_, clock=lambda: now[0], sender=SlowSMTP())
    assert now[0] - t0 > timedelta(seconds=2 * 120)
    assert (report.sent, report.lost, rival_claims) == (5, 0, [])
    assert outbox_ids(smtp.messages) == ids


def test_claim_timeout_follows_a_raised_mail_timeout(app, monkeypatch):
    with app.app_context():
        monkeypatch.setitem(app.config, "MAIL_TIMEOUT", 30)
        assert mailer.settings()["claim_timeout_seconds"] == 360
        monkeypatch.setitem(app.config, "CAREBOX_OUTBOX", {"claim_timeout_seconds": 90})
        assert mailer.settings()["claim_timeout_seconds"] == 90


def test_a_slow_worker_whose_claim_was_taken_over_does_not_send(db, smtp):
    queue(db, 2)
    t0 = utcnow()
    slow = mailer.claim(now=t0)
    took_over = mailer.send_pending(now=t0 + timedelta(seconds=121))
    assert took_over.sent == 2
    late = mailer.deliver(slow, clock=lambda: t0 + timedelta(seconds=122))
    assert (late.sent, late.lost) == (0, 2)
    assert len(smtp.messages) == 2


def test_two_workers_in_turn_never_claim_the_same_row(db, smtp):
    """Runs on SQLite and MariaDB: claims interleaved on one thread, then delivered."""
    ids = queue(db, 7)
    first = mailer.claim(batch=4)
    second = mailer.claim(batch=4)
    third = mailer.claim(batch=4)
    assert {r.id for r in first}.isdisjoint({r.id for r in second})
    assert len(first) + len(second) == 7 and third == []
    mailer.deliver(second)
    mailer.deliver(first)
    assert outbox_ids(smtp.messages) == ids


def test_two_concurrent_workers_send_every_message_exactly_once(db, app, smtp):
    if db.engine.dialect.name == "sqlite":
        pytest.skip(
            "SQLite has no SELECT … FOR UPDATE SKIP LOCKED and serialises writers; the "
            "sequential no-double-send test covers it. Run with TEST_DATABASE_URL (MariaDB)."
        )
    ids = queue(db, 120)
    smtp.handler.delay = 0.002
    claimed = {"a": 0, "b": 0}
    errors = []
    start = threading.Barrier(2)

    def worker(name):
        try:
            with app.app_context():
                start.wait()
                while True:
                    report = mailer.send_pending(batch=5)
                    if not report.claimed:
                        break
                    claimed[name] += report.claimed
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in claimed]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert outbox_ids(smtp.messages) == ids  # every message, each exactly once
    assert claimed["a"] > 0 and claimed["b"] > 0 and sum(claimed.values()) == 120
    assert {r.status for r in rows(db)} == {OutboxStatus.SENT}
    db.session.commit()
    assert db.session.scalar(select(func.count()).select_from(OutboxEmail)) == 120


def test_run_loop_stops_on_request(db, smtp):
    queue(db, 3)
    stop = threading.Event()
    total = mailer.run_loop(batch=2, interval=0.01, stop=stop, on_report=lambda r: stop.set())
    assert total.sent == 2  # stopped after the first batch


def test_cli_outbox_send(db, smtp, runner):
    queue(db, 2)
    result = runner.invoke(args=["outbox", "send", "--batch", "10"])
    assert result.exit_code == 0, result.output
    assert "sent 2" in result.output
    assert len(smtp.messages) == 2


def test_flask_security_mail_is_queued_and_committed_after_the_request(db, app, make, smtp):
    """Flask-Security sends from inside its views (forgot password commits nothing itself)."""
    user = make.user(email="lupa@example.com")
    db.session.commit()
    with app.test_request_context("/reset", method="POST"):
        send_reset_password_instructions(user)
        assert not smtp.messages  # nothing is sent inside the request
        app.process_response(app.response_class("ok"))  # runs after_this_request hooks
    db.session.remove()
    [row] = rows(db)
    assert row.recipient == "lupa@example.com"
    assert row.category == "security.reset_instructions"
    assert mailer.send_pending().sent == 1
    [msg] = smtp.to("lupa@example.com")
    assert "/reset/" in text_of(msg)


def test_flask_security_mail_of_a_failed_request_is_dropped(db, app, make):
    user = make.user(email="gagal@example.com")
    db.session.commit()
    with app.test_request_context("/reset", method="POST"):
        send_reset_password_instructions(user)
        db.session.rollback()  # what an unhandled error in the view leads to
    db.session.remove()
    assert rows(db) == []


def test_cli_loop_delivers_then_stops_on_sigterm(tmp_path):
    """The real command in its own process: it delivers, then exits cleanly on SIGTERM."""
    url = f"sqlite:///{tmp_path / 'loop.db'}"
    other = create_app({"ENV_NAME": "testing", "SQLALCHEMY_DATABASE_URI": url})
    with other.app_context():
        _db.create_all()
        enqueue("loop@example.com", "Looping", "text")
        _db.session.commit()
        _db.engine.dispose()
    env = {
        **os.environ,
        "CAREBOX_ENV": "development",
        "DATABASE_URL": url,
        "CAREBOX_INSTANCE_PATH": str(tmp_path),
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("MAIL_SERVER", None)
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.Popen(  # noqa: S603 (a fixed argv: this interpreter, our CLI)
        [sys.executable, "-c", "from backoffice.cli import main; main()", "outbox", "send"]
        + ["--loop", "--interval", "0.2"],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines = []
    try:
        for line in proc.stdout:
            lines.append(line)
            if "sent 1" in line:
                break
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    output = "".join(lines) + out
    assert proc.returncode == 0, output
    assert "sent 1" in output and "outbox: stopped" in output
    with other.app_context():
        assert _db.session.scalars(select(OutboxEmail.status)).all() == [OutboxStatus.SENT]
        _db.engine.dispose()

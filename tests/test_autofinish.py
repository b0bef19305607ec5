"""Auto-finish (domain/autofinish.py): a ticket waiting for the customer is warned one
working day before, then finished by the system; a reply in between keeps it open.

Expected instants are worked out by hand on the Customer Service calendar of these
tests (Mon–Fri 08:00–20:00 WIB, UTC+7) and the holidays package's 2026 calendar;
stored times are UTC, local ones in the comments.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from backoffice.domain import autofinish, tickets
from backoffice.domain import permissions as perm
from backoffice.models import (
    CompanyDay,
    EventAction,
    MessageChannel,
    OutboxEmail,
    OutboxWhatsApp,
    Ticket,
    TicketEvent,
    TicketKind,
    TicketMessage,
    TicketStatus,
    WhatsAppSendKind,
)

from .test_sla import WEEKDAYS_8_20, _hours

R, T, F = TicketStatus.RESPONDED, TicketStatus.TEAM, TicketStatus.FINISHED
FILED = datetime(2026, 11, 30, 1, 0)  # Mon 30 Nov 08:00 WIB
ANSWERED = datetime(2026, 11, 30, 3, 0)  # Mon 30 Nov 10:00 WIB: the wait starts
WARN = datetime(2026, 12, 4, 3, 0)  # 4 working days later: Fri 4 Dec 10:00 WIB
FINISH = datetime(2026, 12, 7, 3, 0)  # 5 working days (no hours Sat/Sun): Mon 7 Dec 10:00
MINUTE = timedelta(minutes=1)


def _waiting(db, make, *, locale="id", email=None, channel=MessageChannel.PORTAL, weeks=0, **user):
    """A question (routed to CS) answered by staff at ANSWERED (`weeks` earlier):
    waiting for the customer."""
    _hours(db, make, "CS", WEEKDAYS_8_20)
    owner = make.user(perm.CUSTOMER, locale=locale, email=email, **user)
    agent = make.user(perm.CUSTOMER_SERVICE)
    t = tickets.file_ticket(
        owner,
        TicketKind.QUESTION,
        "Paket belum sampai",
        "Halo",
        channel=channel,
        now=FILED - timedelta(weeks=weeks),
    )
    tickets.post_message(
        t, agent, "Sudah kami cek, paket sudah diantar.", now=ANSWERED - timedelta(weeks=weeks)
    )
    db.session.commit()
    assert t.status is R and t.department.code == "CS"
    return t, owner, agent


def _emails(db, user):
    db.session.commit()
    return list(
        db.session.scalars(
            select(OutboxEmail).where(OutboxEmail.recipient.contains(user.email))
        ).all()
    )


def _events(db, ticket, action):
    return list(
        db.session.scalars(
            select(TicketEvent).where(
                TicketEvent.ticket_id == ticket.id, TicketEvent.action == action
            )
        )
    )


def _system_messages(db, ticket):
    return list(
        db.session.scalars(
            select(TicketMessage).where(
                TicketMessage.ticket_id == ticket.id, TicketMessage.by_system
            )
        )
    )


def _fresh(db, ticket):
    db.session.commit()
    db.session.expire_all()
    return db.session.get(Ticket, ticket.id)


def test_warned_one_working_day_before_then_finished_by_the_system(db, make):
    t, owner, _agent = _waiting(db, make)
    mails = len(_emails(db, owner))
    assert autofinish.run(now=WARN - MINUTE).warned == 0
    report = autofinish.run(now=WARN)
    assert (report.warned, report.finished) == (1, 0)
    t = _fresh(db, t)
    assert t.status is R and t.auto_finish_warned_at == WARN
    (msg,) = _system_messages(db, t)
    assert msg.author_id is None and msg.from_staff and not msg.internal
    assert msg.body.startswith("Kami belum menerima kabar dari Anda")  # their language
    assert "Senin 7 Desember 2026, 10:00 WIB" in msg.body
    (ev,) = _events(db, t, EventAction.FINISH_WARNED)
    assert ev.actor_id is None  # the system, not a person
    (warning,) = _emails(db, owner)[mails:]
    assert t.number in warning.subject and "Senin 7 Desember 2026" in warning.body_text
    assert t.last_message_at == ANSWERED  # the wait still counts from staff's reply
    assert autofinish.run(now=WARN + MINUTE).warned == 0  # once

    assert autofinish.run(now=FINISH - MINUTE).finished == 0
    assert autofinish.run(now=FINISH).finished == 1
    t = _fresh(db, t)
    assert t.status is F and t.finished_at == FINISH
    (done,) = _events(db, t, EventAction.FINISHED)
    assert done.actor_id is None and done.to_status is F and "5" in done.note
    finish_mail = _emails(db, owner)[mails + 1 :]
    assert len(finish_mail) == 1 and "/email/rate/" in finish_mail[0].body_text  # rating link
    assert autofinish.run(now=FINISH + timedelta(days=3)) == autofinish.Report()


def test_a_customer_reply_after_the_warning_keeps_the_ticket_open(db, make):
    t, owner, agent = _waiting(db, make)
    autofinish.run(now=WARN)
    t = _fresh(db, t)
    tickets.post_message(t, owner, "Belum, paketnya tidak ada.", now=WARN + timedelta(hours=1))
    db.session.commit()
    assert t.status is T and t.auto_finish_warned_at is None  # the warning is void
    assert autofinish.run(now=FINISH) == autofinish.Report()
    # staff answer again on Mon 7 Dec 10:00 WIB: a new wait, a new warning 4 working days on
    tickets.post_message(t, agent, "Kurir kami datang lagi besok.", now=FINISH)
    db.session.commit()
    assert autofinish.run(now=FINISH + timedelta(days=3)) == autofinish.Report()
    assert autofinish.run(now=datetime(2026, 12, 11, 3, 0)).warned == 1  # Fri 11 Dec 10:00
    assert _fresh(db, t).status is R and len(_system_messages(db, t)) == 2


def test_a_staff_follow_up_restarts_the_wait(db, make):
    t, _owner, agent = _waiting(db, make)
    tickets.post_message(t, agent, "Apakah paketnya sudah diterima?", now=datetime(2026, 12, 2, 3))
    db.session.commit()
    assert autofinish.run(now=WARN).warned == 0  # Wed 2 Dec + 4 working days: Tue 8 Dec
    assert autofinish.run(now=datetime(2026, 12, 8, 3, 0)).warned == 1


def test_working_days_skip_lebaran_cuti_bersama_and_company_days_off(db, make):
    _hours(db, make, "CS", WEEKDAYS_8_20)
    owner, agent = make.user(), make.user(perm.CUSTOMER_SERVICE)
    t = tickets.file_ticket(
        owner, TicketKind.QUESTION, "Lebaran", "Halo", now=datetime(2026, 3, 17, 1, 0)
    )
    tickets.post_message(t, agent, "Kami cek.", now=datetime(2026, 3, 17, 3, 0))  # Tue 10:00
    # 18–24 March: Nyepi, Idul Fitri, their cuti bersama and a weekend. Working days:
    # Wed 25, Thu 26, Fri 27, Mon 30 (the warning), Tue 31 (the finish) — but the
    # company also closes on Tue 31 March, so the finish is Wed 1 April 10:00 WIB.
    db.session.add(CompanyDay(day=date(2026, 3, 31), closed=True, name="Libur kantor"))
    db.session.commit()
    assert autofinish.run(now=datetime(2026, 3, 27, 3, 0)).warned == 0
    assert autofinish.run(now=datetime(2026, 3, 30, 3, 0)).warned == 1
    (msg,) = _system_messages(db, t)
    assert "Rabu 1 April 2026, 10:00 WIB" in msg.body
    assert autofinish.run(now=datetime(2026, 3, 31, 3, 0)).finished == 0
    assert autofinish.run(now=datetime(2026, 4, 1, 3, 0)).finished == 1


def test_the_finish_waits_a_working_day_after_a_late_warning(db, make):
    """A worker that was down past both moments warns first, and finishes one working
    day after that warning, never at once."""
    t, _owner, _agent = _waiting(db, make)
    late = datetime(2026, 12, 9, 3, 0)  # Wed 9 Dec: past the finish time already
    assert autofinish.run(now=late) == autofinish.Report(warned=1)
    assert autofinish.run(now=late + timedelta(hours=23)).finished == 0
    assert autofinish.run(now=late + timedelta(days=1)).finished == 1


def test_the_warning_in_english_for_an_english_customer(db, make):
    t, owner, _agent = _waiting(db, make, locale="en")
    mails = len(_emails(db, owner))
    autofinish.run(now=WARN)
    (msg,) = _system_messages(db, t)
    assert msg.body.startswith("We have not heard from you")
    assert "Monday 7 December 2026, 10:00 WIB" in msg.body
    (mail,) = _emails(db, owner)[mails:]
    assert "We will close your ticket soon" in mail.subject


def test_the_system_is_no_user_and_people_cannot_act_as_it(db, make):
    t, owner, agent = _waiting(db, make)
    assert tickets.Action.AUTO_FINISH not in tickets.allowed_actions(t, agent)
    assert tickets.Action.FINISH_WARNING not in tickets.allowed_actions(t, owner)
    with pytest.raises(tickets.PermissionDenied):
        tickets._check(t, agent, tickets.Action.AUTO_FINISH, None, WARN)
    assert tickets.allowed_actions(t, tickets.SYSTEM) == {tickets.Action.AUTO_FINISH}


def test_off_with_zero_days(db, make, app):
    _waiting(db, make)
    app.config["CAREBOX_AUTO_FINISH_DAYS"] = 0
    try:
        assert autofinish.run(now=FINISH + timedelta(days=30)) == autofinish.Report()
    finally:
        app.config["CAREBOX_AUTO_FINISH_DAYS"] = 5


def test_a_whatsapp_customer_is_warned_on_whatsapp(whatsapp, db, make):
    """The customer last wrote on WhatsApp; four days later the 24-hour window is closed,
    so the warning goes as the approved template (notifications.reply_route), not email."""
    t, owner, _agent = _waiting(
        db, make, channel=MessageChannel.WHATSAPP, phone="081234567890", email="wa@example.com"
    )
    whatsapp_before = db.session.scalar(select(func.count()).select_from(OutboxWhatsApp))
    mails = len(_emails(db, owner))
    assert autofinish.run(now=WARN).warned == 1
    db.session.commit()
    rows = db.session.scalars(select(OutboxWhatsApp).order_by(OutboxWhatsApp.id)).all()
    (row,) = rows[whatsapp_before:]
    assert row.kind is WhatsAppSendKind.TEMPLATE and row.template_language == "id"
    assert "Senin 7 Desember 2026" in row.body
    (msg,) = _system_messages(db, t)
    assert msg.channel is MessageChannel.WHATSAPP and row.message_id == msg.id
    assert len(_emails(db, owner)) == mails  # not by email too


def test_an_email_customer_who_wrote_by_email_is_warned_by_email(db, make):
    t, owner, _agent = _waiting(db, make, channel=MessageChannel.EMAIL)
    mails = len(_emails(db, owner))
    autofinish.run(now=WARN)
    (msg,) = _system_messages(db, t)
    assert msg.channel is MessageChannel.PORTAL  # shown on the portal, sent by email
    assert len(_emails(db, owner)) == mails + 1


def test_two_workers_at_once_warn_and_finish_each_ticket_once(db, make, app):
    if db.engine.dialect.name == "sqlite":
        pytest.skip("SQLite serialises writers; run with TEST_DATABASE_URL (MariaDB).")
    made = [_waiting(db, make)[0] for _ in range(6)]
    owners = [t.customer for t in made]
    errors, reports = [], []

    def two_workers(now):
        start = threading.Barrier(2)

        def worker():
            try:
                with app.app_context():
                    start.wait()
                    reports.append(autofinish.run(now=now))
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=worker) for _ in range(2)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(60)

    two_workers(WARN)
    two_workers(FINISH)
    assert not errors
    assert sum(r.warned for r in reports) == 6 and sum(r.finished for r in reports) == 6
    for t, owner in zip(made, owners, strict=True):
        t = _fresh(db, t)
        assert t.status is F
        assert len(_events(db, t, EventAction.FINISH_WARNED)) == 1
        assert len(_events(db, t, EventAction.FINISHED)) == 1
        assert len(_system_messages(db, t)) == 1
        subjects = [m.subject for m in _emails(db, owner)]
        # filed, staff's reply, then one warning and one finish with its rating links
        assert len(subjects) == 4, subjects


def test_cli_one_pass(runner, db, make):
    _waiting(db, make, weeks=4)  # answered Mon 2 Nov: warned on Fri 6 Nov, long past
    result = runner.invoke(args=["tickets", "auto-finish"])
    assert result.exit_code == 0, result.output
    assert "auto-finish: 1 warned, 0 finished" in result.output


def test_cli_loop_works_then_stops_on_sigterm(tmp_path):
    """The real command in its own process: a pass warns, then SIGTERM stops it cleanly."""
    from backoffice import create_app
    from backoffice.extensions import db as _db
    from backoffice.seed import seed_base

    from .factories import Factories

    url = f"sqlite:///{tmp_path / 'loop.db'}"
    other = create_app({"ENV_NAME": "testing", "SQLALCHEMY_DATABASE_URI": url})
    with other.app_context():
        _db.create_all()
        seed_base()
        _waiting(_db, Factories(_db), weeks=4)
        _db.engine.dispose()
    env = {
        **os.environ,
        "CAREBOX_ENV": "development",
        "DATABASE_URL": url,
        "CAREBOX_INSTANCE_PATH": str(tmp_path),
        "PYTHONUNBUFFERED": "1",
    }
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.Popen(  # noqa: S603 (a fixed argv: this interpreter, our CLI)
        [sys.executable, "-c", "from backoffice.cli import main; main()", "tickets"]
        + ["auto-finish", "--loop", "--interval", "0.2"],
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
            if "1 warned" in line:
                break
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    output = "".join(lines) + out
    assert proc.returncode == 0, output
    assert "auto-finish: stopped" in output
    with other.app_context():
        assert (
            _db.session.scalar(
                select(func.count()).where(Ticket.auto_finish_warned_at.is_not(None))
            )
            == 1
        )
        _db.engine.dispose()

"""80 % warnings (once per clock), "breaching soon", and the `carebox sla` commands."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select

from backoffice.domain import permissions as perm
from backoffice.domain import sla, tickets
from backoffice.models import OutboxEmail, Ticket, TicketKind
from backoffice.models.base import utcnow

from .admin_support import listed_numbers
from .test_sla import WEEKDAYS_8_20, _hours


def _soon_ids(db, now):
    return set(db.session.scalars(select(Ticket.id).where(sla.breaching_soon(now))))


def _mail_to(db, user):
    return [m for m in db.session.scalars(select(OutboxEmail)) if user.email in m.recipient]


def test_warned_once_at_80_percent_of_working_time(app, db, make):
    _hours(db, make, "CS", WEEKDAYS_8_20)
    agent = make.user(perm.CUSTOMER_SERVICE)
    owner = make.user()
    t = tickets.file_ticket(
        owner, TicketKind.QUESTION, "Jam?", "Halo", now=datetime(2026, 11, 30, 1)
    )
    tickets.assign(t, agent, make._master(), now=datetime(2026, 11, 30, 1))
    # first response: 8 working hours from Mon 08:00 WIB; 80 % = 6 h 24 → 14:24 WIB
    assert t.sla_warn_at == datetime(2026, 11, 30, 7, 24)
    app.config["CAREBOX_SLA_WARNING_EMAIL"] = True
    try:
        assert sla.send_warnings(now=datetime(2026, 11, 30, 7, 23)) == 0
        assert _soon_ids(db, datetime(2026, 11, 30, 7, 23)) == set()
        assert sla.send_warnings(now=datetime(2026, 11, 30, 7, 25)) == 1
        assert sla.send_warnings(now=datetime(2026, 11, 30, 7, 40)) == 0  # exactly once
        (mail,) = _mail_to(db, agent)
        assert agent.email in mail.recipient and t.number in mail.subject
        assert "16:00 WIB" in mail.subject  # due Mon 30-11-2026 16:00 WIB
        assert _soon_ids(db, datetime(2026, 11, 30, 7, 25)) == {t.id}
        assert _soon_ids(db, datetime(2026, 11, 30, 9, 1)) == set()  # breached: not "soon"
        # answered, then the customer writes back: the resolution clock warns once too
        tickets.post_message(t, agent, "Kami cek.", now=datetime(2026, 11, 30, 7, 30))
        tickets.post_message(t, owner, "Oke.", now=datetime(2026, 11, 30, 7, 45))
        assert t.sla_warned_at is None and t.sla_warn_at > datetime(2026, 12, 4)
        assert sla.send_warnings(now=t.sla_warn_at + timedelta(minutes=1)) == 1
        assert sla.send_warnings(now=t.sla_warn_at + timedelta(minutes=2)) == 0
        assert len(_mail_to(db, agent)) == 2
    finally:
        app.config["CAREBOX_SLA_WARNING_EMAIL"] = False


def test_without_email_the_warning_is_only_counted(db, make):
    t = make.ticket("team", now=utcnow() - timedelta(hours=7))  # wall clock: 8 h allowed
    before = db.session.scalars(select(OutboxEmail)).all()
    assert sla.send_warnings() == 1 and t.sla_warned_at is not None
    assert db.session.scalars(select(OutboxEmail)).all() == before


def test_home_counts_and_the_list_filters_breaching_soon(login_as, make, db):
    soon = make.ticket("team", now=utcnow() - timedelta(hours=7))  # 7 of 8 h used
    calm = make.ticket("team", now=utcnow() - timedelta(hours=1))
    late = make.ticket("team", now=utcnow() - timedelta(hours=9))  # breached, not "soon"
    db.session.commit()
    b, _ = login_as(perm.CUSTOMER_SERVICE, locale="en")
    home = b.get("/admin/").get_data(as_text=True)
    assert 'data-soon="1"' in home and "Breaching soon" in home
    import re

    link = re.search(r'href="([^"]+)">Breaching soon: 1', home).group(1).replace("&amp;", "&")
    assert listed_numbers(b.get(link).get_data(as_text=True)) == {soon.number}
    assert calm.number != late.number


def test_cli_explains_a_ticket_across_lebaran(runner, db, make):
    _hours(db, make, "CS", WEEKDAYS_8_20)
    t = tickets.file_ticket(
        make.user(), TicketKind.QUESTION, "Paket?", "Halo", now=datetime(2026, 3, 17, 12)
    )
    db.session.commit()
    out = runner.invoke(args=["sla", "explain", t.number.lower()])
    assert out.exit_code == 0, out.output
    assert "calendar: CS" in out.output and "Asia/Jakarta (WIB)" in out.output
    assert "first response due: Wed 25-03-2026 15:00 WIB" in out.output
    assert "Cuti Bersama Hari Raya Idul Fitri" in out.output
    assert runner.invoke(args=["sla", "explain", "CX-0"]).exit_code != 0


def test_cli_recompute_and_warn(runner, db, make):
    t = make.ticket("team", now=utcnow() - timedelta(hours=7))
    db.session.commit()
    out = runner.invoke(args=["sla", "warn"])
    assert out.exit_code == 0 and "1 warned" in out.output
    assert "0 warned" in runner.invoke(args=["sla", "warn"]).output
    _hours(db, make, "OPS", WEEKDAYS_8_20)
    db.session.commit()
    out = runner.invoke(args=["sla", "recompute", "--all"])
    assert out.exit_code == 0 and "put on working time" in out.output
    db.session.expire_all()
    assert t.sla_since is not None


def test_two_workers_at_once_warn_each_ticket_once(app, db, make):
    """Both workers see the same candidates; the conditional UPDATE lets one claim each."""
    import threading

    import pytest

    if db.engine.dialect.name != "mysql":
        pytest.skip("two connections writing at once need a server database (MariaDB)")
    for _ in range(20):
        make.ticket("team", now=utcnow() - timedelta(hours=7))
    db.session.commit()
    results, errors = [], []
    barrier = threading.Barrier(2)

    def worker():
        with app.app_context():
            try:
                barrier.wait()
                results.append(sla.send_warnings())
                db.session.commit()
            except Exception as exc:  # reported below, not lost in the thread
                errors.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == [] and sum(results) == 20
    db.session.expire_all()
    assert (
        db.session.scalar(
            select(func.count()).select_from(Ticket).where(Ticket.sla_warned_at.is_(None))
        )
        == 0
    )

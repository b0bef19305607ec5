"""Heavy reads on a real MariaDB replica (backoffice/replica.py).

The CI's MariaDB (3306) has no binary log and must not be reconfigured, so it cannot be a
primary: these tests start their own pair, a primary with a binary log and GTIDs and a
replica of it (`CHANGE MASTER TO … MASTER_USE_GTID = slave_pos`), each a private
mariadbd with its own port and datadir (tests/servers.py).

To tell which server answered, the replica's SQL thread is stopped and a ticket written on
the primary: the replica does not have it yet, the primary does.
"""

from __future__ import annotations

import csv
import io
import logging
import re
import time
from types import SimpleNamespace

import flask_babel
import pytest
from flask import g
from jinja2 import StrictUndefined
from openpyxl import load_workbook
from sqlalchemy import delete

from backoffice import create_app
from backoffice.domain import permissions as perm
from backoffice.extensions import db
from backoffice.models import DashboardSnapshot, Ticket, TicketStatus
from backoffice.replica import heavy_reads, read_engine

from .conftest import Browser
from .factories import Factories
from .servers import MariaDB, start_replication, wait_for_replica

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


@pytest.fixture(scope="module")
def pair():
    primary = MariaDB("--log-bin=primary-bin", "--server-id=1", "--binlog-format=ROW")
    replica = MariaDB("--server-id=2", "--read-only=ON", "--relay-log=relay-bin")
    with primary, replica:
        start_replication(primary, replica)
        yield primary, replica


@pytest.fixture(scope="module")
def app(pair, tmp_path_factory):
    primary, replica = pair
    primary.create_database("carebox")
    app = create_app(
        {
            "ENV_NAME": "testing",
            "SQLALCHEMY_DATABASE_URI": primary.url("carebox"),
            "DATABASE_REPLICA_URL": replica.url("carebox"),
            "UPLOAD_FOLDER": str(tmp_path_factory.mktemp("uploads")),
            "CAREBOX_REPLICA_RETRY_SECONDS": 0,
        }
    )
    app.jinja_env.undefined = StrictUndefined

    @app.before_request
    def _fresh_request():
        # The test's app context is reused by requests (see conftest.py): give each
        # request what production gives it, fresh globals and a fresh session (a session
        # kept open would keep reading the replica's first snapshot).
        g.__dict__.clear()
        flask_babel.refresh()
        db.session.remove()

    from backoffice.seed import seed_base

    with app.app_context():
        db.create_all()
        seed_base()
        db.session.commit()
    wait_for_replica(primary, replica)
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def make(app):
    with app.app_context():
        yield Factories(db)
        db.session.remove()


@pytest.fixture(autouse=True)
def replicating(pair, app):
    """Every test starts with replication running and caught up, and a fresh health state."""
    primary, replica = pair
    if not replica.running:
        replica.start()
    replica.query("START SLAVE")
    wait_for_replica(primary, replica)
    app.extensions.pop("carebox_replica", None)
    yield
    app.config["CAREBOX_REPLICA_MAX_LAG"] = 30


def login(app, make, role=perm.MASTER_ADMIN) -> Browser:
    user = make.user(role=role, locale="en")
    db.session.commit()
    browser = Browser(app.test_client())
    browser.login(user)
    return browser


def pause_replica_sql(pair) -> None:
    """Stop applying: the replica keeps what it has, and receives but does not apply more."""
    primary, replica = pair
    wait_for_replica(primary, replica)
    replica.query("STOP SLAVE SQL_THREAD")


def new_ticket(make, subject: str) -> SimpleNamespace:
    """A Team ticket committed on the primary, as plain values (requests end sessions)."""
    ticket = make.ticket(TicketStatus.TEAM, subject=subject)
    db.session.commit()
    return SimpleNamespace(
        id=ticket.id, number=ticket.number, subject=subject, version_id=ticket.version_id
    )


def figures(browser) -> tuple[int, int, int]:
    """(tickets in the summary CSV, the report page's count, the dashboard's total)."""
    summary = browser.get("/admin/reports/summary.csv").get_data(as_text=True).lstrip("\ufeff")
    rows = list(csv.reader(io.StringIO(summary)))
    in_summary = sum(int(r[3]) for r in rows[1:])
    page = browser.get("/admin/reports/").get_data(as_text=True)
    count = int(re.search(r'id="report-count">(\d+)', page)[1])
    home = browser.get("/admin/").get_data(as_text=True)
    total = int(re.search(r'id="fig-total">(\d+)<', home)[1])
    return in_summary, count, total


def csv_numbers(resp) -> set[str]:
    assert resp.status_code == 200, resp.status_code
    rows = list(csv.reader(io.StringIO(resp.get_data(as_text=True).lstrip("\ufeff"))))
    return {r[0] for r in rows[1:]}


def test_exports_read_the_replica_and_the_desk_the_primary(app, make, pair, caplog):
    master = login(app, make)
    old = new_ticket(make, "Sudah lama")
    pause_replica_sql(pair)
    fresh = new_ticket(make, "Baru saja ditulis di primary")
    make.user(perm.CUSTOMER, email="fresh-customer@example.com")
    db.session.commit()

    # The exports do not show it yet: they read the replica.
    numbers = csv_numbers(master.get("/admin/reports/tickets.csv"))
    assert old.number in numbers and fresh.number not in numbers
    book = load_workbook(io.BytesIO(master.get("/admin/reports/tickets.xlsx").data))
    cells = {row[0] for row in book.active.iter_rows(min_row=2, values_only=True)}
    assert old.number in cells and fresh.number not in cells
    assert figures(master) == (1, 1, 1)  # summary tickets, report count, dashboard total
    customers = master.get("/admin/customers/export.csv").get_data(as_text=True)
    assert "fresh-customer@example.com" not in customers

    # The desk and the lists read the primary: there it is.
    assert fresh.number in master.get("/admin/tickets/team/").get_data(as_text=True)
    desk = master.get(f"/admin/tickets/desk/{fresh.number}/").get_data(as_text=True)
    assert fresh.subject in desk

    # Once the replica applies the rest, the exports show it.
    primary, replica = pair
    replica.query("START SLAVE SQL_THREAD")
    wait_for_replica(primary, replica)
    assert fresh.number in csv_numbers(master.get("/admin/reports/tickets.csv"))
    assert "fresh-customer@example.com" in master.get("/admin/customers/export.csv").get_data(
        as_text=True
    )
    # The dashboard shows stored figures up to MAX_AGE old (views/dashboard_snapshot.py):
    # once they are due again, the new ones come from the replica too.
    db.session.execute(delete(DashboardSnapshot))
    db.session.commit()
    assert figures(master) == (2, 2, 2)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def priorities(browser) -> dict[str, str]:
    """Ticket number -> priority code, from the tickets CSV export."""
    resp = browser.get("/admin/reports/tickets.csv")
    rows = list(csv.reader(io.StringIO(resp.get_data(as_text=True).lstrip("\ufeff"))))
    return {r[0]: r[-1] for r in rows[1:]}  # the last column: "Priority code"


def test_a_users_own_write_is_read_from_the_primary(app, make, pair, caplog):
    writer, onlooker = login(app, make), login(app, make)
    ticket = new_ticket(make, "Diubah oleh admin sendiri")
    pause_replica_sql(pair)
    desk = f"/admin/tickets/desk/{ticket.number}/"
    resp = writer.post(
        f"{desk}priority",
        {"priority": "urgent", "expected_version": ticket.version_id},
        form_url=desk,
    )
    assert resp.status_code == 302
    with caplog.at_level(logging.INFO, logger="carebox.replica"):
        assert priorities(writer)[ticket.number] == "urgent"  # their own change: the primary
    assert "has not applied this user's last write" in caplog.text
    assert priorities(onlooker)[ticket.number] == "normal"  # someone else: the replica

    primary, replica = pair
    replica.query("START SLAVE SQL_THREAD")
    wait_for_replica(primary, replica)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="carebox.replica"):
        assert priorities(writer)[ticket.number] == "urgent"
        assert priorities(onlooker)[ticket.number] == "urgent"
    assert caplog.text == ""  # both on the replica again


def test_lagging_past_the_limit_falls_back_to_the_primary(app, make, pair, caplog):
    master = login(app, make)
    app.config["CAREBOX_REPLICA_MAX_LAG"] = 1
    pause_replica_sql(pair)
    late = new_ticket(make, "Replika tertinggal")
    assert late.number not in csv_numbers(master.get("/admin/reports/tickets.csv"))
    time.sleep(1.5)
    with caplog.at_level(logging.WARNING, logger="carebox.replica"):
        numbers = csv_numbers(master.get("/admin/reports/tickets.csv"))
    assert late.number in numbers
    assert "has applied nothing for" in caplog.text and "SQL thread No" in caplog.text


def test_a_replica_that_is_down_or_hung_is_passed_over(app, make, pair, caplog):
    primary, replica = pair
    master = login(app, make)
    pause_replica_sql(pair)
    ticket = new_ticket(make, "Replika mati")
    for outage in (replica.pause, replica.kill):
        outage()
        try:
            with caplog.at_level(logging.WARNING, logger="carebox.replica"):
                numbers = csv_numbers(master.get("/admin/reports/tickets.csv"))
                assert master.get("/admin/").status_code == 200
                assert master.get("/admin/reports/").status_code == 200
            assert ticket.number in numbers  # read on the primary
            assert "cannot be reached" in caplog.text
            caplog.clear()
        finally:
            replica.resume()
    replica.start()  # replication starts with the server
    wait_for_replica(primary, replica)
    assert ticket.number in csv_numbers(master.get("/admin/reports/tickets.csv"))


def test_only_selects_inside_heavy_reads_reach_the_replica(app, make, pair):
    primary, replica = pair
    pause_replica_sql(pair)
    before = new_ticket(make, "Ditulis sebelum heavy_reads")
    with app.test_request_context():
        g.__dict__.clear()  # a fresh request: it has written nothing
        db.session.remove()
        assert db.session.get(Ticket, before.id) is not None  # outside: the primary
        db.session.remove()
        with heavy_reads():
            assert db.session.get(Ticket, before.id) is None  # inside: the replica
            inside = new_ticket(make, "Ditulis di dalam heavy_reads")  # the flush: primary
            # Once the request wrote, its reads see it: they are on the primary now.
            assert db.session.get(Ticket, inside.id).subject == inside.subject
            assert db.session.get(Ticket, before.id) is not None
    for ticket, on_replica in ((before, 0), (inside, 0)):
        sql = "SELECT COUNT(*) FROM carebox.ticket WHERE id = %s"
        assert primary.query(sql, ticket.id) == [(1,)]
        assert replica.query(sql, ticket.id) == [(on_replica,)]


def test_without_a_replica_setting_everything_reads_the_primary(app, make, pair, monkeypatch):
    pause_replica_sql(pair)
    ticket = new_ticket(make, "Tanpa replika")
    monkeypatch.setitem(app.config, "DATABASE_REPLICA_URL", "")
    with app.test_request_context():
        g.__dict__.clear()
        db.session.remove()
        assert read_engine() is None
        with heavy_reads():
            assert db.session.get(Ticket, ticket.id) is not None

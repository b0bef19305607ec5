"""The desk's setup kept per process (domain/setup_cache.py, issue 16 item 3): a filing
routes and times a ticket from its process's copies of the routing rules and working
calendars, and a change made through another app — another gunicorn worker, the CLI,
another host — is honoured by the very next filing (no stale route, no stale due time)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import event, select, update

from backoffice import create_app
from backoffice.domain import worktime
from backoffice.extensions import db as _db
from backoffice.models import (
    BusinessHours,
    CompanyDay,
    Department,
    RoutingRule,
    SetupVersion,
    Ticket,
    TicketKind,
)

from .conftest import Browser


@pytest.fixture
def other(database_url, db, tmp_path):
    """A second app on the test database: another process's copies of the setup, and a
    customer signed in on it, filing through the portal form."""
    app = create_app(
        {
            "ENV_NAME": "testing",
            "SQLALCHEMY_DATABASE_URI": database_url,
            "UPLOAD_FOLDER": str(tmp_path),
        }
    )
    yield app
    with app.app_context():
        _db.engine.dispose()


class Filer:
    def __init__(self, app, make, db):
        self.db = db
        self.customer = make.user(role="customer")
        db.session.commit()
        self.browser = Browser(app.test_client())
        self.browser.login(self.customer)
        self.statements: list[str] = []
        with app.app_context():
            event.listen(_db.engine, "before_cursor_execute", self._seen)

    def _seen(self, conn, cursor, statement, *args):
        self.statements.append(statement)

    def file(self, kind: str = "question") -> Ticket:
        form = {"kind": kind, "subject": "Paket", "body": "Di mana paket saya?", "submission": ""}
        form["csrf_token"] = self.browser.token("/tickets/new")
        self.statements.clear()
        resp = self.browser.client.post("/tickets/new", data=form)
        assert resp.status_code == 302, resp.get_data(as_text=True)[:500]
        number = resp.headers["Location"].rsplit("/", 1)[1]
        self.db.session.commit()  # a fresh read of what the other app committed
        return self.db.session.scalar(select(Ticket).where(Ticket.number == number))

    def read(self, table: str) -> bool:
        """Whether the last filing read `table` (rather than the process's copy)."""
        return any(table in s for s in self.statements if s.lstrip().startswith("SELECT"))


def _question_rule() -> RoutingRule:
    """The seed's rule sending questions to Customer Service."""
    return _db.session.scalar(select(RoutingRule).where(RoutingRule.kind == TicketKind.QUESTION))


def test_a_rule_changed_through_one_app_routes_the_next_filing_of_another(other, db, make):
    filer = Filer(other, make, db)
    rule = _question_rule()
    assert filer.file().department.code == "CS"
    assert filer.file().department.code == "CS"
    assert not filer.read("routing_rule")  # the copy, not the table

    rule.department = make.department("OPS")  # through this app: the other one's copy is old
    db.session.commit()
    assert filer.file().department.code == "OPS"
    assert filer.read("routing_rule")
    assert filer.file().department.code == "OPS" and not filer.read("routing_rule")

    # An ORM statement rather than an object, and a department switched off.
    db.session.execute(update(RoutingRule).where(RoutingRule.id == rule.id).values(active=False))
    db.session.commit()
    assert filer.file().department is None  # no rule: Progress
    rule.active = True
    make.department("OPS").active = False
    db.session.commit()
    assert filer.file().department is None
    make.department("OPS").active = True
    db.session.delete(rule)
    db.session.commit()
    assert filer.file().department is None


def test_a_calendar_changed_through_one_app_times_the_next_filing_of_another(other, db, make):
    filer = Filer(other, make, db)
    cs = make.department("CS")
    first = filer.file()  # the suite's departments have no hours: the wall clock
    assert first.first_response_due == first.created_at + timedelta(hours=8)
    assert filer.file().first_response_due and not filer.read("business_hours")  # the copy

    # An hour on Mondays only: eight working hours are weeks away.
    db.session.add(BusinessHours(department=cs, weekday=0, start_minute=480, end_minute=540))
    db.session.commit()
    second = filer.file()
    expected = worktime.load(cs).add(second.created_at, 8 * 3600)
    assert second.first_response_due == expected > second.created_at + timedelta(days=40)
    assert filer.read("business_hours")

    # The next Monday closed by the company: one more week.
    monday = worktime.load(cs).local_date(second.created_at)
    monday += timedelta(days=(7 - monday.weekday()) % 7 or 7)
    db.session.add(CompanyDay(day=monday, closed=True, name="Tutup"))
    db.session.commit()
    third = filer.file()
    assert third.first_response_due == worktime.load(cs).add(third.created_at, 8 * 3600)
    assert third.first_response_due >= expected + timedelta(days=7) - timedelta(minutes=5)

    # Another zone for the department: the same hours, an hour later in UTC.
    cs.timezone = "Asia/Makassar"
    db.session.commit()
    fourth = filer.file()
    now = worktime.load(cs)
    assert now.zone == "Asia/Makassar"
    assert fourth.first_response_due == now.add(fourth.created_at, 8 * 3600)
    before = worktime.Calendar(week=now.week, closed=now.closed, opened=now.opened)
    assert fourth.first_response_due != before.add(fourth.created_at, 8 * 3600)


def test_a_filing_leaves_the_token_alone_and_a_setup_change_replaces_it(db, make):
    def token():
        db.session.commit()
        return db.session.scalar(select(SetupVersion.token))

    before = token()
    make.ticket()
    assert token() == before
    dep = make.department("OPS")
    dep.email = "ops2@carebox.example"
    assert token() != before
    before = token()
    db.session.add(CompanyDay(day=date(2031, 1, 2), closed=True, name="Tutup"))
    db.session.flush()
    db.session.rollback()  # nothing changed after all
    assert token() == before


def test_a_transaction_that_changed_the_setup_reads_its_own_change(db, make):
    from backoffice.domain.tickets.routing import find_route

    assert find_route(TicketKind.QUESTION, None).department.code == "CS"
    rule = db.session.scalar(select(RoutingRule).where(RoutingRule.kind == TicketKind.QUESTION))
    rule.department = make.department("SALES")
    db.session.flush()  # not committed: only this transaction sees it
    assert find_route(TicketKind.QUESTION, None).department.code == "SALES"
    db.session.rollback()
    assert find_route(TicketKind.QUESTION, None).department.code == "CS"
    assert db.session.get(Department, rule.department_id).code == "CS"

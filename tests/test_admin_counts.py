"""Bounded work at scale: capped counts and a constant number of statements.

At 1,000,000 tickets an exact COUNT(*) of a list reads hundreds of thousands
of index entries, so the home page and the lists count up to `COUNT_CAP` and
show "N+" past it (sqlhelpers.COUNT_CAP; lowered here to keep data small).
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from backoffice.domain import permissions as perm
from backoffice.models.base import utcnow
from backoffice.views import sqlhelpers
from backoffice.views.filters import SlaFilter

from .admin_support import counting_queries


def card(html: str, status: str) -> tuple[str, str, str | None]:
    """(data-count, shown text, data-breached) of a home card."""
    block = html.split(f'data-list="{status}"', 1)[1].split("</div></div>", 1)[0]
    count = re.search(r'data-count="(\d+)">([^<]+)<', block)
    breached = re.search(r'data-breached="(\d+)"', block)
    return count.group(1), count.group(2), breached.group(1) if breached else None


@pytest.fixture
def cap_of_two(monkeypatch):
    monkeypatch.setattr(sqlhelpers, "COUNT_CAP", 2)


def test_home_counts_stop_at_the_cap(login_as, make, db, cap_of_two):
    late = utcnow() - timedelta(days=5)
    for _ in range(3):
        make.ticket("team", now=late)  # three breached tickets
    make.ticket("responded")
    make.ticket("responded")
    make.ticket("progress", now=late)
    db.session.commit()
    b, _ = login_as(perm.MASTER_ADMIN, locale="en")
    html = b.get("/admin/").get_data(as_text=True)
    assert card(html, "team") == ("2", "2+", "2")  # 3 tickets, 3 breached: over the cap
    assert "SLA breached: 2+" in html
    assert card(html, "responded") == ("2", "2", "0")  # at the cap: exact
    assert card(html, "progress") == ("1", "1", "1")
    assert card(html, "finished") == ("0", "0", None)


def test_a_list_is_counted_on_its_own_only_while_its_breaches_stay_below_the_cap(
    make, db, app, cap_of_two
):
    """capped_counts' `within`: a list whose breaches reach the cap is past it too (its
    own count is not read); below it, the list is counted: each figure is what a count of
    its own capped at COUNT_CAP gives, for every mix of over and under the cap."""
    from sqlalchemy import func, select

    from backoffice.models import Ticket

    late = utcnow() - timedelta(days=5)
    for _ in range(3):
        make.ticket("team", now=late)  # list 3, breached 3: both past the cap
    make.ticket("progress", now=late)
    for _ in range(2):
        make.ticket("progress")  # list 3, breached 1: the list is counted on its own
    make.ticket("responded", now=late)  # list 1, answered in time: breached 0
    db.session.commit()
    now = utcnow()
    lists = [select(Ticket.id).where(Ticket.status == s) for s in ("team", "progress", "responded")]
    breached = [stmt.where(Ticket.sla_breached(now)) for stmt in lists]
    figures = sqlhelpers.capped_counts(lists + breached, within={3: 0, 4: 1, 5: 2})

    def capped(stmt):
        n = db.session.scalar(select(func.count()).select_from(stmt.subquery()))
        return (min(n, 2), n > 2)

    assert [(int(f), isinstance(f, sqlhelpers.CappedCount)) for f in figures] == [
        capped(stmt) for stmt in lists + breached
    ]
    assert [str(f) for f in figures] == ["2+", "2+", "1", "2+", "1", "0"]


def test_list_count_stops_at_the_cap(login_as, make, db, cap_of_two):
    for _ in range(3):
        make.ticket("team")
    make.ticket("responded")
    db.session.commit()
    b, _ = login_as(perm.MASTER_ADMIN, locale="en")
    html = b.get("/admin/tickets/team/").get_data(as_text=True)
    assert "List (2+)" in html
    assert len(re.findall(r'href="/admin/tickets/desk/CX-', html)) == 3  # every row is listed
    assert "List (1)" in b.get("/admin/tickets/responded/").get_data(as_text=True)


def test_master_home_costs_a_constant_number_of_statements(login_as, make, db):
    b, _ = login_as(perm.MASTER_ADMIN)

    def cost() -> int:
        assert b.get("/admin/").status_code == 200  # reloads what the commit expired
        with counting_queries(db.engine) as statements:
            assert b.get("/admin/").status_code == 200
        return len(statements)

    make.ticket("team")
    db.session.commit()
    few = cost()
    for status in ("progress", "team", "responded", "finished") * 3:
        make.ticket(status, department="CLAIMS")
    db.session.commit()
    assert cost() == few <= 9, few  # 9: the notifications' count (menu and home, once)


def test_a_later_page_is_read_by_id_in_the_lists_order(login_as, make, app, db):
    start = utcnow() - timedelta(days=5)
    late = [make.ticket("team", now=start + timedelta(hours=i)) for i in range(27)]
    fresh = [make.ticket("team"), make.ticket("team")]
    make.ticket("responded")
    db.session.commit()
    b, _ = login_as(perm.MASTER_ADMIN)

    def listed(query: str) -> list[str]:
        html = b.get(f"/admin/tickets/team/?{query}").get_data(as_text=True)
        return re.findall(r'href="/admin/tickets/desk/([A-Z0-9-]+)/"', html)

    # The Team queue's order: most urgent first (next_due_at, then id).
    def urgent_first(tickets):
        return [t.number for t in sorted(tickets, key=lambda t: (t.next_due_at, t.id))]

    queue = urgent_first(late + fresh)
    assert listed("") == queue[:25]
    assert listed("page=1") == queue[25:]
    # With a filter, the page's ids come from the filtered list.
    view = next(v for v in app.extensions["admin"][0]._views if v.endpoint == "tickets_team")
    breached = f"{view.filter_arg(SlaFilter)}=1"
    late_first = urgent_first(late)
    assert listed(breached) == late_first[:25]
    assert listed(f"page=1&{breached}") == late_first[25:]


def test_the_breach_count_index_holds_every_column_sla_breached_reads():
    """The home page counts each open list's breaches from ix_ticket_status_due alone
    (views/dashboard.py): a column `sla_breached` reads that the index lacks sends every
    candidate row to the table (`sla_paused_at`, added with the pause: 270 ms for the
    Progress count at 1M tickets instead of 3 ms)."""
    from sqlalchemy.sql import visitors

    from backoffice.models import Ticket

    read = {
        c.name
        for c in visitors.iterate(Ticket.sla_breached(utcnow()))
        if getattr(c, "table", None) is Ticket.__table__
    }
    index = next(i for i in Ticket.__table__.indexes if i.name == "ix_ticket_status_due")
    assert read and read <= {c.name for c in index.columns}, read - {c.name for c in index.columns}

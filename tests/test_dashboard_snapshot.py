"""The master dashboard's stored figures (issue 16 item 6, views/dashboard_snapshot.py):
equal to what the raw query gives, read by a view without touching the tickets,
recomputed when stale, and kept fresh by `carebox dashboard refresh`."""

from __future__ import annotations

from datetime import timedelta

from flask_babel import force_locale
from sqlalchemy import select, text

from backoffice.domain import permissions as perm
from backoffice.models import DashboardSnapshot
from backoffice.models.base import utcnow
from backoffice.views import dashboard_snapshot
from backoffice.views.dashboard import master_figures
from backoffice.views.sqlhelpers import utc_bounds

from .admin_support import counting_queries
from .test_admin_dashboard import known  # noqa: F401 - the fixture


def _plain(figures: dict) -> dict:
    return {
        "total": figures["total"],
        "rated": figures["rated"],
        "average_rating": figures["average_rating"],
        "median_first_response": figures["median_first_response"],
        "median_resolution": figures["median_resolution"],
        "days": figures["days"],
        "charts": [(c.title, c.series) for c in figures["charts"]],
    }


def test_stored_figures_equal_the_raw_query(db, known):  # noqa: F811
    stored = dashboard_snapshot.current()
    assert stored["refreshed"]
    db.session.commit()
    again = dashboard_snapshot.current()  # now read back, not computed
    assert not again["refreshed"]
    with force_locale("en"):
        assert _plain(master_figures(data=again)) == _plain(master_figures())
    # And against hand-written SQL over the same 30 local days.
    days = master_figures(data=again)["days"]
    start, end = utc_bounds(days[0], days[-1])
    raw = dict(
        db.session.execute(
            text(
                "SELECT status, COUNT(*) FROM ticket WHERE created_at >= :s AND created_at < :e "
                "GROUP BY status"
            ),
            {"s": start, "e": end},
        ).all()
    )
    by_status = {k: sum(v) for k, v in again["series"]["status"].items()}
    assert by_status == raw == {"finished": 2, "responded": 1, "progress": 1}
    # What is stored does not grow with the tickets: 30 counts per series.
    row = db.session.get(DashboardSnapshot, dashboard_snapshot.KEY)
    assert all(len(v) == 30 for s in again["series"].values() for v in s.values())
    assert len(row.payload) < 4000


def test_a_view_reads_the_stored_figures_not_the_tickets(login_as, db, known):  # noqa: F811
    b, _ = login_as(perm.MASTER_ADMIN, locale="en")
    first = b.get("/admin/").get_data(as_text=True)  # no snapshot yet: computed and stored
    assert 'id="fig-total">4<' in first and 'id="fig-computed"' in first
    with counting_queries(db.engine) as statements:
        html = b.get("/admin/").get_data(as_text=True)
    assert 'id="fig-total">4<' in html
    assert not any("GROUP BY" in s for s in statements)  # the lists' counts need none
    assert not any("row_number" in s.lower() for s in statements)  # nor the medians


def test_stale_figures_are_computed_again(login_as, make, db, known):  # noqa: F811
    b, _ = login_as(perm.MASTER_ADMIN, locale="en")
    b.get("/admin/")
    make.ticket("progress")  # filed after the figures were stored
    db.session.commit()
    assert 'id="fig-total">4<' in b.get("/admin/").get_data(as_text=True)  # still fresh
    row = db.session.get(DashboardSnapshot, dashboard_snapshot.KEY)
    row.computed_at -= dashboard_snapshot.MAX_AGE + timedelta(seconds=1)
    db.session.commit()
    with counting_queries(db.engine) as statements:
        html = b.get("/admin/").get_data(as_text=True)
    assert any("GROUP BY" in s for s in statements)
    assert 'id="fig-total">5<' in html
    db.session.expire_all()
    assert db.session.get(DashboardSnapshot, dashboard_snapshot.KEY).computed_at > (
        utcnow() - timedelta(minutes=1)
    )


def test_the_worker_stores_the_figures(runner, db, known):  # noqa: F811
    result = runner.invoke(args=["dashboard", "refresh"])
    assert result.exit_code == 0, result.output
    assert "dashboard: " in result.output
    db.session.expire_all()
    [row] = db.session.scalars(select(DashboardSnapshot)).all()
    assert row.key == dashboard_snapshot.KEY
    assert not dashboard_snapshot.current()["refreshed"]
    assert dashboard_snapshot.current()["total"] == 4


def test_other_roles_see_no_figures_and_store_none(login_as, db, known):  # noqa: F811
    b, _ = login_as(perm.CUSTOMER_SERVICE, locale="en")
    html = b.get("/admin/").get_data(as_text=True)
    assert 'id="master-figures"' not in html
    assert db.session.scalars(select(DashboardSnapshot)).all() == []


def _charts(html: str) -> str:
    start = html.index('<div class="col-xl-4 col-lg-6 mb-4 chart">')
    return html[start : html.rindex("</details>")]


def test_the_charts_are_drawn_once_per_figures_and_language(login_as, make, db, known):  # noqa: F811
    from backoffice.views import dashboard

    b, staff = login_as(perm.MASTER_ADMIN, locale="en")
    dashboard._DRAWN.clear()
    english = b.get("/admin/").get_data(as_text=True)
    assert "Tickets per day by status" in english and len(dashboard._DRAWN) == 1
    assert _charts(b.get("/admin/").get_data(as_text=True)) == _charts(english)
    assert len(dashboard._DRAWN) == 1  # reused: the same figures and language
    # Drawn anew, the reused drawing is the same.
    dashboard._DRAWN.clear()
    assert _charts(b.get("/admin/").get_data(as_text=True)) == _charts(english)
    # Another language: its own drawing.
    staff.locale = "id"
    db.session.commit()
    indonesian = b.get("/admin/").get_data(as_text=True)
    assert "Tickets per day by status" not in _charts(indonesian) and len(dashboard._DRAWN) == 2
    # New figures: a new drawing with them.
    make.ticket("progress")
    db.session.commit()
    row = db.session.get(DashboardSnapshot, dashboard_snapshot.KEY)
    row.computed_at -= dashboard_snapshot.MAX_AGE + timedelta(seconds=1)
    db.session.commit()
    html = b.get("/admin/").get_data(as_text=True)
    assert len(dashboard._DRAWN) == 3 and _charts(html) != _charts(indonesian)

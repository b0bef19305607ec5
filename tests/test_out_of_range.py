"""Out-of-range input is a 400 or a clean empty result, never a 500 (issue 9 item 10).

Dates at the ends of the calendar in every list's date filter and in the reports,
ids past 2**63 in id filters, the desk poll and its attachments, control characters
in `next`, and multipart parts without a name before login. Filters are read from the
views, so a filter added later is tried too.
"""

from __future__ import annotations

import json
import re
from urllib.parse import quote

import pytest
from flask_admin.contrib.sqla.filters import DateBetweenFilter
from flask_admin.model.filters import BaseIntFilter

from backoffice.domain import permissions as perm

from .admin_support import build_world
from .conftest import csrf_from

BIG = "99999999999999999999"  # past 2**64
DATE_RANGES = (
    "0001-01-01 to 9999-12-31",
    "0001-01-01 to 0001-01-02",
    "9999-12-30 to 9999-12-31",
    "9999-12-31 to 9999-12-31",
)


def _filtered_lists(app) -> list[tuple[str, int, object]]:
    """(list URL, filter index, filter) for every date and id filter of every view."""
    found = []
    for view in app.extensions["admin"][0]._views:
        for index, flt in enumerate(getattr(view, "_filters", None) or []):
            if isinstance(flt, DateBetweenFilter | BaseIntFilter):
                found.append((view.url, index, flt))
    return found


def _rows_shown(html: str) -> int:
    return html.count('name="rowid"')


def test_calendar_ends_and_huge_ids_in_list_filters_are_clean(app, login_as, make, db):
    build_world(make, db)
    b, _ = login_as(perm.MASTER_ADMIN)
    lists = _filtered_lists(app)
    dates = [(u, i) for u, i, f in lists if isinstance(f, DateBetweenFilter)]
    ids = [(u, i) for u, i, f in lists if isinstance(f, BaseIntFilter)]
    assert len(dates) >= 5 and len(ids) >= 5  # four ticket lists and orders; departments, sends
    for url, index in dates:
        for value in DATE_RANGES:
            resp = b.get(f"{url}/?flt0_{index}={quote(value)}")
            assert resp.status_code == 200, (url, value, resp.status_code)
            if value != DATE_RANGES[0]:
                assert _rows_shown(resp.get_data(as_text=True)) == 0, (url, value)
    for url, index in ids:
        for value in (BIG, "-" + BIG, "9223372036854775808", "0"):
            resp = b.get(f"{url}/?flt0_{index}={value}")
            assert resp.status_code == 200, (url, value, resp.status_code)


def test_the_whole_calendar_still_lists_every_ticket(app, login_as, make, db):
    world = build_world(make, db)
    b, _ = login_as(perm.MASTER_ADMIN)
    [(url, index, _)] = [
        (u, i, f)
        for u, i, f in _filtered_lists(app)
        if u.endswith("/tickets/team") and isinstance(f, DateBetweenFilter)
    ]
    page = b.get(f"{url}/?flt0_{index}={quote('0001-01-01 to 9999-12-31')}")
    html = page.get_data(as_text=True)
    assert world.team_ops.number in html and world.team_claims.number in html


@pytest.mark.parametrize(
    "dates",
    [
        ("0001-01-01", "0001-01-02"),
        ("9999-12-30", "9999-12-31"),
        ("0001-01-01", "9999-12-31"),
        ("", "0001-01-03"),
        ("10000-01-01", "2026-01-01"),
    ],
)
def test_reports_take_calendar_ends(login_as, make, db, dates):
    build_world(make, db)
    b, _ = login_as(perm.MASTER_ADMIN)
    query = f"?date_from={dates[0]}&date_to={dates[1]}"
    for path in (
        "/admin/reports/",
        "/admin/reports/tickets.csv",
        "/admin/reports/tickets.xlsx",
        "/admin/reports/summary.csv",
        "/admin/reports/sla/",
        "/admin/reports/sla.csv",
        "/admin/agent-report/",
        "/admin/agent-report/agents.csv",
    ):
        resp = b.get(path + query)
        resp.get_data()
        assert resp.status_code in (200, 302, 400), (path + query, resp.status_code)


def test_desk_poll_and_attachment_ids_past_2_63(login_as, make, db):
    world = build_world(make, db)
    b, _ = login_as(perm.MASTER_ADMIN)
    desk = f"/admin/tickets/desk/{world.team_ops.number}"
    for after in (BIG, "9223372036854775808", "9223372036854775807"):
        resp = b.get(f"{desk}/poll?after={after}")
        assert resp.status_code == 200, after
        assert resp.get_json()["messages"] == []
    for attachment in (BIG, "9223372036854775808"):
        assert b.get(f"{desk}/attachments/{attachment}").status_code == 404
    ok = b.get(f"{desk}/attachments/{world.att_ops.id}")
    assert ok.status_code == 200
    ok.close()


NAMELESS = (
    b"--x\r\nContent-Disposition: form-data\r\n\r\nvalue\r\n"
    b'--x\r\nContent-Disposition: form-data; name="email"\r\n\r\na@example.com\r\n--x--\r\n'
)
NAMELESS_FILE = b'--x\r\nContent-Disposition: form-data; filename="a.txt"\r\n\r\nvalue\r\n--x--\r\n'


@pytest.mark.parametrize("path", ["/login", "/register", "/reset", "/lang/en", "/lang/id"])
@pytest.mark.parametrize("body", [NAMELESS, NAMELESS_FILE])
def test_a_multipart_part_without_a_name_is_a_400_before_login(app, db, path, body):
    resp = app.test_client().post(path, data=body, content_type="multipart/form-data; boundary=x")
    assert resp.status_code == 400


NEXTS = ("/\r\nSet-Cookie: x=1", "/tickets\r\n", "/\x00", "/a\rb", "\n")


@pytest.mark.parametrize("next_", NEXTS)
def test_control_characters_in_next_are_refused_by_the_account_pages(app, make, db, next_):
    user = make.user()
    db.session.commit()
    client = app.test_client()
    token = csrf_from(client.get("/login").get_data(as_text=True))
    for path in ("/login", "/register", "/reset"):
        assert client.get(f"{path}?next={quote(next_)}").status_code == 400, path
    form = {"csrf_token": token, "email": user.email, "password": "password", "next": next_}
    resp = client.post("/login", data=form)
    assert resp.status_code == 400
    assert client.post(f"/login?next={quote(next_)}", data={**form, "next": "/"}).status_code == 400
    assert client.get("/tickets").status_code in (302, 401)  # the login was not performed
    # carebox's own views fall back to a safe page (safe_next).
    switched = client.post("/lang/en", data={"csrf_token": token, "next": next_})
    assert switched.status_code == 302 and switched.headers["Location"] == "/"
    # A clean next still works.
    good = client.post("/login", data={**form, "next": "/tickets"})
    assert good.status_code == 302 and good.headers["Location"].endswith("/tickets")


NEW_REPORTS = (
    "/admin/reports/sla/",
    "/admin/reports/sla.csv",
    "/admin/agent-report/",
    "/admin/agent-report/agents.csv",
)
MALFORMED_FILTERS = (
    "department=abc",
    f"department={BIG}",
    "department=-1",
    "priority=urgentest",
    "kind=%00",
    "status=nope",
    "status=team&status=team",
    "sla=2",
    "date_from=2026-13-45",
    "date_from=2026-01-01&date_to=2026-01-01T00:00",
    "date_from=yesterday",
    "order=" + "9" * 300,
    "q=" + "%25_" * 200,
    "q=%00%01",
)


@pytest.mark.parametrize("query", MALFORMED_FILTERS)
def test_the_sla_and_agent_reports_take_malformed_filters(login_as, make, db, query):
    build_world(make, db)
    b, _ = login_as(perm.MASTER_ADMIN)
    for path in NEW_REPORTS:
        resp = b.get(f"{path}?{query}")
        resp.get_data()
        assert resp.status_code in (200, 400), (path, query, resp.status_code)


@pytest.mark.parametrize("query", ["", "page=-1", f"page={BIG}", "kind=%00", "x=" + "y" * 3000])
def test_the_notifications_page_ignores_junk_in_its_query(login_as, query):
    b, _ = login_as(perm.CUSTOMER_SERVICE)
    assert b.get(f"/admin/notifications/?{query}").status_code == 200


WA_TEMPLATE_IDS = ("abc", BIG, "-1", "0", "9223372036854775808", "%00", "1.5", "")


def test_the_template_picker_takes_any_template_id(whatsapp, client, db, login_as):
    """Outside the window: `?wa_template=` and the template form's fields out of range."""
    from .test_whatsapp_outbound import customer_writes, rows
    from .test_whatsapp_templates import add_template

    ticket = customer_writes(client, db, hours_ago=30)
    row = add_template(db)
    b, _ = login_as(perm.CUSTOMER_SERVICE)
    desk = f"/admin/tickets/desk/{ticket.number}/"
    for value in WA_TEMPLATE_IDS:
        resp = b.get(f"{desk}?wa_template={value}")
        assert resp.status_code == 200, (value, resp.status_code)
    page = b.get(f"{desk}?wa_template={row.id}").get_data(as_text=True)
    version = re.search(r'name="expected_version"[^>]*value="(\d+)"', page).group(1)
    bad_forms = [{"template_id": value, "params-0": "A"} for value in WA_TEMPLATE_IDS]
    bad_forms += [
        {"template_id": str(row.id), "params-0": "A" * 5000},
        {"template_id": str(row.id), f"params-{BIG}": "A"},
        {"template_id": str(row.id), "params-x": "A"},
        {"template_id": str(row.id), "expected_version": BIG},
    ]
    for form in bad_forms:
        data = {"expected_version": version, **form}
        resp = b.post(desk + "whatsapp-template", data, form_url=desk)
        assert resp.status_code in (400, 409, 422), (form, resp.status_code)
    assert rows() == []
    # More values than the template has parameters: the template's own are sent.
    many = {f"params-{n}": f"P{n}" for n in range(12)}
    data = {"expected_version": version, "template_id": str(row.id), **many}
    assert b.post(desk + "whatsapp-template", data, form_url=desk).status_code == 302
    (queued,) = rows()
    assert json.loads(queued.template_params) == ["P0", "P1", "P2"]


MERGE_TARGETS = ("", "CX-0000-000000", "x" * 30, "%00", "CX-9999-" + BIG, "<script>")
RESIS = ("", "0", "x" * 60, "CBX" + BIG, "%00", "<script>", "CBX 0000 0000")


def test_merge_and_link_parcel_take_any_text(login_as, make, db):
    world = build_world(make, db)
    b, _ = login_as(perm.MASTER_ADMIN)
    desk = f"/admin/tickets/desk/{world.team_ops.number}/"
    for into in MERGE_TARGETS + (world.team_ops.number, world.team_claims.number):
        page = b.get(desk).get_data(as_text=True)
        version = re.search(r'name="expected_version"[^>]*value="(\d+)"', page).group(1)
        resp = b.post(desk + "merge", {"into": into, "expected_version": version}, form_url=desk)
        assert resp.status_code in (302, 400, 409, 422), (into, resp.status_code)
    for resi in RESIS:
        page = b.get(desk).get_data(as_text=True)
        version = re.search(r'name="expected_version"[^>]*value="(\d+)"', page).group(1)
        resp = b.post(desk + "parcel", {"resi": resi, "expected_version": version}, form_url=desk)
        assert resp.status_code in (302, 400, 409, 422), (resi, resp.status_code)
    db.session.expire_all()
    ticket = db.session.get(type(world.team_ops), world.team_ops.id)
    assert ticket.merged_into_id is None and ticket.order_id is None  # nothing changed

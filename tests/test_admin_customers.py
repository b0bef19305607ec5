"""The customer list's loyalty segment (column, filter) and the master admin's CSV export."""

from __future__ import annotations

import csv
import io
import re

import pytest

from backoffice.domain import permissions as perm
from backoffice.models import CustomerProfile

from .admin_support import flashes


def segment_filter_arg(app) -> str:
    """The list's query-string key of the segment filter (Flask-Admin numbers them)."""
    [admin] = app.extensions["admin"]
    [view] = [v for v in admin._views if getattr(v, "endpoint", None) == "customers"]
    [key] = [k for k, (_i, f) in view._filter_args.items() if type(f).__name__ == "SegmentFilter"]
    return f"flt0_{key}"


@pytest.fixture
def customers(db, make):
    def customer(email, segment=None, **fields):
        user = make.user(email=email, **fields)
        if segment:
            db.session.add(
                CustomerProfile(
                    user_id=user.id,
                    segment=segment,
                    recency_days=12,
                    frequency=14,
                    monetary=1_250_000,
                    complaint_rate=0.0714,
                    avg_rating=4.5,
                )
            )
        return user

    c = {
        "loyal": customer("loyal@example.com", "loyal", name="Lia Loyal"),
        "lost": customer("lost@example.com", "lost", name="Lukas Lost"),
        "new": customer("new@example.com", "new", name="Nina New"),
        "fresh": customer("fresh@example.com", name="Fajar Fresh"),  # no profile yet
        "evil": customer(
            "evil@example.com", "at_risk", name='=HYPERLINK("http://x")', phone="+62811"
        ),
        "tab": customer("tab@example.com", name="\tTab", phone="@cmd"),
    }
    make.user(perm.CUSTOMER_SERVICE, email="cs-not-a-customer@example.com")
    db.session.commit()
    return c


def listed_emails(html: str) -> set[str]:
    table = html.split("model-list", 1)[1].split("</table>", 1)[0]
    return set(re.findall(r"[\w.-]+@example\.com", table))


def test_the_filters_form_keeps_the_lists_search_and_sort(app, customers, login_as):
    """The filters' form (admin/model/_filter_form.html, shared with the ticket lists)
    carries the page's search, sort and page size, and offers Reset Filters when filtered."""
    b, _ = login_as(perm.MASTER_ADMIN, locale="en")
    key = segment_filter_arg(app)
    html = b.get(f"/admin/customers/?{key}=loyal&search=Lia&sort=1&desc=1&page_size=50")
    form = html.get_data(as_text=True).split('<form id="filter_form"', 1)[1].split("</form>")[0]
    hidden = dict(re.findall(r'type="hidden" name="([^"]+)" value="([^"]*)"', form))
    assert hidden == {"search": "Lia", "sort": "1", "desc": "1", "page_size": "50"}
    assert "Reset Filters" in form
    plain = b.get("/admin/customers/").get_data(as_text=True)
    form = plain.split('<form id="filter_form"', 1)[1].split("</form>")[0]
    assert 'type="hidden"' not in form and "Reset Filters" not in form


@pytest.mark.parametrize("role", [perm.CUSTOMER_SERVICE, perm.MASTER_ADMIN])
def test_segment_column_and_filter(role, app, customers, login_as):
    b, _ = login_as(role, locale="en")
    html = b.get("/admin/customers/").get_data(as_text=True)
    assert "Loyalty segment" in html
    row = html.split("Lia Loyal", 1)[1].split("</tr>", 1)[0]
    assert ">Loyal<" in re.sub(r"\s+", "", row)
    row = html.split("Fajar Fresh", 1)[1].split("</tr>", 1)[0]
    assert ">New<" in re.sub(r"\s+", "", row)  # no profile yet: new
    key = segment_filter_arg(app)
    got = listed_emails(b.get(f"/admin/customers/?{key}=loyal").get_data(as_text=True))
    assert got == {"loyal@example.com"}
    got = listed_emails(b.get(f"/admin/customers/?{key}=new").get_data(as_text=True))
    assert got == {"new@example.com", "fresh@example.com", "tab@example.com"}
    got = listed_emails(b.get(f"/admin/customers/?{key}=at_risk").get_data(as_text=True))
    assert got == {"evil@example.com"}
    bad = b.get(f"/admin/customers/?{key}=vip").get_data(as_text=True)
    assert "Invalid Filter Value" in flashes(bad)
    details = b.get(f"/admin/customers/details/?id={customers['loyal'].id}")
    assert "Loyal" in details.get_data(as_text=True)


def test_customer_service_may_not_export(customers, login_as):
    b, _ = login_as(perm.CUSTOMER_SERVICE, locale="en")
    html = b.get("/admin/customers/").get_data(as_text=True)
    assert "/admin/customers/export.csv" not in html
    assert b.get("/admin/customers/export.csv").status_code == 403
    assert b.get("/admin/customers/export.csv?segment=loyal").status_code == 403


@pytest.mark.parametrize("role", [perm.ADMIN_DEPARTMENT, perm.CUSTOMER, "anonymous"])
def test_nobody_else_may_export(role, customers, login_as, client):
    if role == "anonymous":
        resp = client.get("/admin/customers/export.csv")
        assert resp.status_code == 302 and "/login" in resp.headers["Location"]
    else:
        b, _ = login_as(role)
        assert b.get("/admin/customers/export.csv").status_code == 403


def read_csv(resp) -> list[list[str]]:
    body = resp.get_data(as_text=True)
    assert body.startswith("\ufeff")
    return list(csv.reader(io.StringIO(body[1:])))


def test_master_admin_exports_customers_with_loyalty_figures(app, customers, login_as, monkeypatch):
    b, _ = login_as(perm.MASTER_ADMIN, locale="en")
    key = segment_filter_arg(app)
    listing = b.get(f"/admin/customers/?{key}=loyal").get_data(as_text=True)
    assert 'href="/admin/customers/export.csv?segment=loyal"' in listing
    monkeypatch.setitem(app.config, "CAREBOX_REPORT_BATCH", 2)  # several batches
    resp = b.get("/admin/customers/export.csv")
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    assert resp.headers["Cache-Control"] == "private, no-store"
    assert "attachment" in resp.headers["Content-Disposition"]
    header, *rows = read_csv(resp)
    assert header[:4] == ["Id", "Name", "E-mail", "Phone"] and "Loyalty segment" in header
    by_email = {r[2]: dict(zip(header, r, strict=True)) for r in rows}
    # Customers only (not staff), every one exactly once, in id order.
    assert set(by_email) == {f"{k}@example.com" for k in customers}
    assert [int(r[0]) for r in rows] == sorted(c.id for c in customers.values())
    loyal = by_email["loyal@example.com"]
    assert loyal["Loyalty segment"] == "Loyal" and loyal["Loyalty segment code"] == "loyal"
    assert loyal["Orders in the window"] == "14"
    assert loyal["Spent in the window (Rp)"] in ("1250000.00", "1250000")
    assert loyal["Average rating"] == "4.50"
    assert loyal["Days since last order"] == "12"
    assert by_email["fresh@example.com"]["Loyalty segment"] == "New"
    assert by_email["fresh@example.com"]["Orders in the window"] == ""
    # Cells a spreadsheet would run as formulas are neutralised.
    evil = by_email["evil@example.com"]
    assert evil["Name"] == '\'=HYPERLINK("http://x")' and evil["Phone"] == "'+62811"
    tab = by_email["tab@example.com"]
    assert tab["Name"] == "'\tTab" and tab["Phone"] == "'@cmd"
    for row in rows:
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), row


def test_export_of_one_segment(customers, login_as):
    b, _ = login_as(perm.MASTER_ADMIN, locale="en")
    resp = b.get("/admin/customers/export.csv?segment=new")
    assert "customers-new-" in resp.headers["Content-Disposition"]
    _header, *rows = read_csv(resp)
    assert {r[2] for r in rows} == {"new@example.com", "fresh@example.com", "tab@example.com"}
    assert b.get("/admin/customers/export.csv?segment=vip").status_code == 400

"""The SLA report (views/sla_report.py): percent met per department, priority, agent and
month on known data, each figure's missed tickets one click away, the CSV, and who may
see it.

Every department runs 24/7 through holidays here, so working time is wall-clock time
less the waits for the customer. Allowances: normal 8 h / 72 h, high 4 h / 24 h.
The five tickets, and what each clock did (worked out by hand):

  T1 OPS normal, agent A, filed 5 Oct: answered after 2 h (met), finished at 10 h (met)
  T2 OPS normal, agent A, filed 6 Oct: answered after 10 h (missed), finished 11 h (met)
  T3 CS  high,   agent B, filed 2 Nov: answered after 1 h (met); the customer wrote at
     2 h, finished at 30 h: 1 h + 28 h = 29 h of 24 (missed)
  T4 CS  normal, nobody,  filed 3 Nov: never answered, still open: both clocks past due
  T5 OPS normal, agent B, filed 20 Nov: answered after 3 h (met), waiting for the
     customer since: resolution neither met nor missed (not counted)
"""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta

import pytest

from backoffice.domain import permissions as perm
from backoffice.domain import tickets
from backoffice.models import Priority, TicketKind

from .admin_support import listed_numbers
from .test_sla import all_around_the_clock

H = timedelta(hours=1)
RANGE = "date_from=2026-10-01&date_to=2026-11-30"


@pytest.fixture
def known(db, make):
    all_around_the_clock(db, make)
    master = make._master()
    a = make.user(perm.CUSTOMER_SERVICE, name="Agen Ani")
    b = make.user(perm.CUSTOMER_SERVICE, name='=HYPERLINK("x")')  # a formula as a name
    ops = make.department("OPS")

    def criticism(filed, agent):
        t = make.ticket("progress", now=filed)  # criticism: no routing rule
        tickets.dispatch(t, ops, master, now=filed)
        tickets.assign(t, agent, master, now=filed)
        return t

    def question(filed, agent):
        t = tickets.file_ticket(make.user(), TicketKind.QUESTION, "Tanya", "Halo", now=filed)
        tickets.assign(t, agent, master, now=filed)
        return t

    f1 = datetime(2026, 10, 5, 0, 0)
    t1 = criticism(f1, a)
    tickets.post_message(t1, a, "Dicek.", now=f1 + 2 * H)
    tickets.finish(t1, a, now=f1 + 10 * H)

    f2 = datetime(2026, 10, 6, 0, 0)
    t2 = criticism(f2, a)
    tickets.post_message(t2, a, "Maaf lama.", now=f2 + 10 * H)
    tickets.finish(t2, a, now=f2 + 11 * H)

    f3 = datetime(2026, 11, 2, 0, 0)
    t3 = question(f3, b)
    tickets.set_priority(t3, Priority.HIGH, master, now=f3)
    tickets.post_message(t3, b, "Kami cek.", now=f3 + H)
    tickets.post_message(t3, t3.customer, "Belum beres.", now=f3 + 2 * H)
    tickets.finish(t3, b, now=f3 + 30 * H)

    f4 = datetime(2026, 11, 3, 0, 0)
    t4 = question(f4, None)

    f5 = datetime(2026, 11, 20, 0, 0)
    t5 = criticism(f5, b)
    tickets.post_message(t5, b, "Sudah dikirim ulang.", now=f5 + 3 * H)
    db.session.commit()
    assert t4.status.value == "team" and t4.department.code == "CS" and t4.assignee is None
    assert t5.status.value == "responded"
    return {"t1": t1, "t2": t2, "t3": t3, "t4": t4, "t5": t5, "a": a, "b": b}


def _table(html: str, dim: str) -> dict:
    """{group code: (tickets, fr %, fr met, fr missed, res %, res met, res missed)}."""
    import re

    block = html.split(f'id="sla-{dim}"', 1)[1].split("</table>", 1)[0]
    out = {}
    for group, cells in re.findall(r'<tr data-group="([^"]*)">(.*?)</tr>', block, re.S):
        percents = re.findall(r'data-percent="([^"]*)"', cells)
        counts = re.findall(r'<td class="text-right">(\d+)</td>', cells)
        missed = re.findall(r'data-missed="(\d+)"', cells)
        out[group] = (
            int(counts[0]),
            percents[0],
            int(counts[1]),
            int(missed[0]),
            percents[1],
            int(counts[2]),
            int(missed[1]),
        )
    return out


def test_percent_met_per_department_priority_agent_and_month(login_as, known):
    browser, _ = login_as(perm.MASTER_ADMIN, locale="en")
    html = browser.get(f"/admin/reports/sla/?{RANGE}").get_data(as_text=True)
    a, b = known["a"], known["b"]
    assert _table(html, "department") == {
        "OPS": (3, "66.7", 2, 1, "100.0", 2, 0),  # T5's resolution not counted yet
        "CS": (2, "50.0", 1, 1, "0.0", 0, 2),
    }
    assert _table(html, "priority") == {
        "high": (1, "100.0", 1, 0, "0.0", 0, 1),
        "normal": (4, "50.0", 2, 2, "66.7", 2, 1),
    }
    assert _table(html, "agent") == {
        str(a.id): (2, "50.0", 1, 1, "100.0", 2, 0),
        str(b.id): (2, "100.0", 2, 0, "0.0", 0, 1),
        "": (1, "0.0", 0, 1, "0.0", 0, 1),  # unassigned: T4
    }
    assert _table(html, "month") == {
        "2026-10": (2, "50.0", 1, 1, "100.0", 2, 0),
        "2026-11": (3, "66.7", 2, 1, "0.0", 0, 2),
    }
    assert "=HYPERLINK" in html and "<script" not in html.split('id="sla-agent"')[1][:2000]


def _links(html: str, dim: str, group: str) -> dict:
    """{(clock index, status): url} of one row's missed-ticket links."""
    import re

    block = html.split(f'id="sla-{dim}"', 1)[1].split("</table>", 1)[0]
    row = re.search(rf'<tr data-group="{re.escape(group)}">(.*?)</tr>', block, re.S).group(1)
    cells = re.findall(r'data-missed="\d+">(.*?)</td>', row, re.S)
    out = {}
    for i, cell in enumerate(cells):
        for status, url in re.findall(r'data-status="(\w+)" href="([^"]+)"', cell):
            out[(i, status)] = url.replace("&amp;", "&")
    return out


def test_each_figure_s_missed_tickets_are_one_click_away(login_as, known):
    browser, _ = login_as(perm.MASTER_ADMIN, locale="en")
    html = browser.get(f"/admin/reports/sla/?{RANGE}").get_data(as_text=True)

    def listed(url):
        page = browser.get(url)
        assert page.status_code == 200, url
        return listed_numbers(page.get_data(as_text=True))

    cs = _links(html, "department", "CS")
    assert set(cs) == {(0, "team"), (1, "team"), (1, "finished")}
    assert listed(cs[(1, "finished")]) == {known["t3"].number}
    assert listed(cs[(1, "team")]) == {known["t4"].number}
    assert listed(cs[(0, "team")]) == {known["t4"].number}
    agent_a = _links(html, "agent", str(known["a"].id))
    assert set(agent_a) == {(0, "finished")}
    assert listed(agent_a[(0, "finished")]) == {known["t2"].number}  # not T1 (met)
    unassigned = _links(html, "agent", "")
    assert listed(unassigned[(0, "team")]) == {known["t4"].number}
    november = _links(html, "month", "2026-11")
    assert listed(november[(1, "finished")]) == {known["t3"].number}
    normal = _links(html, "priority", "normal")
    assert listed(normal[(0, "finished")]) == {known["t2"].number}  # T3 is high


def test_the_report_s_filters_narrow_the_figures_and_the_links(login_as, known, make):
    browser, _ = login_as(perm.MASTER_ADMIN, locale="en")
    ops = make.department("OPS")
    html = browser.get(f"/admin/reports/sla/?{RANGE}&department={ops.id}").get_data(as_text=True)
    assert set(_table(html, "department")) == {"OPS"}
    assert _table(html, "month") == {
        "2026-10": (2, "50.0", 1, 1, "100.0", 2, 0),
        "2026-11": (1, "100.0", 1, 0, "", 0, 0),  # T5 waits: nothing judged yet
    }
    october = _links(html, "month", "2026-10")
    page = browser.get(october[(0, "finished")]).get_data(as_text=True)
    assert listed_numbers(page) == {known["t2"].number}


def test_csv_export(login_as, known):
    browser, _ = login_as(perm.MASTER_ADMIN, locale="en")
    resp = browser.get(f"/admin/reports/sla.csv?{RANGE}")
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(resp.get_data().decode("utf-8-sig"))))
    assert rows[0][:3] == ["Grouped by", "Group", "Tickets"]
    by = {(r[0], r[-1]): r for r in rows[1:]}
    assert by[("Department", "CS")][2:9] == ["2", "1", "1", "50.0", "0", "2", "0.0"]
    assert by[("Month", "2026-10")][2:9] == ["2", "1", "1", "50.0", "2", "0", "100.0"]
    name = by[("Agent", str(known["b"].id))][1]
    assert name == '\'=HYPERLINK("x")'  # formula-neutralised
    bad = browser.get("/admin/reports/sla.csv?date_from=2026-11-30&date_to=2026-10-01")
    assert bad.status_code == 400


@pytest.mark.parametrize("role", [perm.CUSTOMER_SERVICE, perm.ADMIN_DEPARTMENT])
def test_only_the_master_admin_sees_it(login_as, known, role):
    browser, _ = login_as(role)
    assert browser.get(f"/admin/reports/sla/?{RANGE}").status_code == 403
    assert browser.get(f"/admin/reports/sla.csv?{RANGE}").status_code == 403


def test_the_master_admin_sees_it_in_both_languages(login_as, known):
    from .test_page_markup import duplicate_ids

    for locale in ("id", "en"):
        browser, _ = login_as(perm.MASTER_ADMIN, locale=locale)
        page = browser.get(f"/admin/reports/sla/?{RANGE}")
        assert page.status_code == 200
        html = page.get_data(as_text=True)
        assert 'id="sla-department"' in html and duplicate_ids(html) == []
    reports = browser.get(f"/admin/reports/?{RANGE}").get_data(as_text=True)
    assert f'href="/admin/reports/sla/?{RANGE.replace("&", "&amp;")}"' in reports


def test_bad_dates_are_a_message_not_an_error(login_as, known):
    browser, _ = login_as(perm.MASTER_ADMIN, locale="en")
    page = browser.get("/admin/reports/sla/?date_from=2026-11-30&date_to=2026-10-01")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "The end date is before the start date." in text and 'id="sla-department"' not in text

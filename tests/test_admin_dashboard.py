"""The home page per role and the master admin's figures, against known data."""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta

import pytest
from flask_babel import force_locale

from backoffice.domain import permissions as perm
from backoffice.domain import tickets
from backoffice.models import TicketKind
from backoffice.views.dashboard import MY_TICKETS_SHOWN, master_figures
from backoffice.views.sqlhelpers import local_today

from .test_sla import all_around_the_clock

JAKARTA = timedelta(hours=7)


def local_noon(days_ago: int, hour: int = 12) -> datetime:
    """A naive UTC time that is `hour` o'clock in Jakarta, `days_ago` local days back."""
    return datetime.combine(local_today() - timedelta(days=days_ago), time(hour)) - JAKARTA


@pytest.fixture
def known(make, db):
    all_around_the_clock(db, make)  # working time = wall-clock time less the waits
    master = make._master()
    ops = make.department("OPS")
    h = timedelta(hours=1)

    d2 = local_noon(2)
    t1 = make.ticket("progress", now=d2)  # criticism
    tickets.dispatch(t1, ops, master, now=d2 + h / 2)
    tickets.post_message(t1, master, "Dicek.", now=d2 + 2 * h)
    tickets.finish(t1, master, now=d2 + 24 * h)
    tickets.rate(t1, t1.customer, 4, now=d2 + 25 * h)

    d2b = local_noon(2, 14)
    t3 = make.ticket("progress", kind=TicketKind.QUESTION, now=d2b)  # routed to CS
    tickets.post_message(t3, master, "Jawaban.", now=d2b + 6 * h)
    tickets.finish(t3, master, now=d2b + 36 * h)
    tickets.rate(t3, t3.customer, 5, now=d2b + 37 * h)

    d1 = local_noon(1)
    t2 = make.ticket("progress", kind=TicketKind.COMPLAINT, now=d1)
    tickets.dispatch(t2, ops, master, now=d1 + h / 2)
    tickets.post_message(t2, master, "Sedang dicek.", now=d1 + 4 * h)
    t5 = make.ticket("progress", now=d1)  # never answered: SLA breached by now

    make.ticket("finished", now=local_noon(40))  # outside the 30 days
    db.session.commit()
    return {"t1": t1, "t2": t2, "t3": t3, "t5": t5, "d1": d1, "d2": d2}


def card(html: str, status: str) -> tuple[int, int | None]:
    block = html.split(f'data-list="{status}"', 1)[1].split("</div></div>", 1)[0]
    count = int(re.search(r'data-count="(\d+)"', block).group(1))
    breached = re.search(r'data-breached="(\d+)"', block)
    return count, int(breached.group(1)) if breached else None


def test_master_home_figures(login_as, known):
    b, _ = login_as(perm.MASTER_ADMIN)
    html = b.get("/admin/").get_data(as_text=True)
    assert card(html, "progress") == (1, 1)
    assert card(html, "team") == (0, 0)
    assert card(html, "responded") == (1, 0)
    assert card(html, "finished") == (3, None)
    assert re.search(r'id="fig-total">4<', html)
    first = re.search(r'id="fig-first-response" data-seconds="([\d.]+)"', html).group(1)
    resolution = re.search(r'id="fig-resolution" data-seconds="([\d.]+)"', html).group(1)
    assert round(float(first)) == 4 * 3600  # median of 2 h, 4 h, 6 h
    # working time: both finished while waiting for the customer after staff's reply at
    # 2 h and 6 h; the waits do not count, so the median of 2 h and 6 h
    assert round(float(resolution)) == 4 * 3600
    assert re.search(r'id="fig-rating">4.50 / 5<', html)
    assert "<svg" in html
    assert re.findall(r"<script(?![^>]*\bsrc=)", html) == []  # no inline script: CSP-safe
    day2 = (local_today() - timedelta(days=2)).isoformat()
    assert f"{day2} · Ticket Finish: 2" in html


def test_master_chart_series(db, known):
    with force_locale("en"):  # the series are labelled in the request's language
        figures = master_figures()
    days = [d.isoformat() for d in figures["days"]]
    assert len(days) == 30 and days[-1] == local_today().isoformat()
    i2, i1 = days.index(known["d2"].date().isoformat()), days.index(known["d1"].date().isoformat())
    status, kind, department = (dict(c.series) for c in figures["charts"])
    assert status["Ticket Finish"][i2] == 2 and status["Ticket Response"][i1] == 1
    assert status["Progress Ticket"][i1] == 1 and sum(status["Ticket Finish"]) == 2
    assert kind["Criticism"][i2] == 1 and kind["Question"][i2] == 1
    assert kind["Complaint"][i1] == 1 and kind["Criticism"][i1] == 1
    assert department["OPS"][i2] == 1 and department["CS"][i2] == 1
    assert department["OPS"][i1] == 1 and department["Not dispatched"][i1] == 1
    assert figures["total"] == 4 and figures["rated"] == 2
    assert figures["average_rating"] == pytest.approx(4.5)


def test_customer_service_home(login_as, known, db):
    b, user = login_as(perm.CUSTOMER_SERVICE)
    tickets.assign(known["t2"], user, user)
    db.session.commit()
    html = b.get("/admin/").get_data(as_text=True)
    assert 'data-list="progress"' not in html
    assert card(html, "team") == (0, 0)
    assert card(html, "responded") == (1, 0)
    assert card(html, "finished") == (3, None)
    assert 'id="my-count">1<' in html and known["t2"].number in html
    assert 'id="master-figures"' not in html and "<svg" not in html


def test_department_admin_home(login_as, make, db):
    make.ticket("team", department="OPS")
    make.ticket("team", department="CLAIMS")
    make.ticket("responded", department="OPS")
    db.session.commit()
    b, _ = login_as(perm.ADMIN_DEPARTMENT, department="OPS")
    html = b.get("/admin/").get_data(as_text=True)
    assert card(html, "team") == (1, 0)
    for other in ("progress", "responded", "finished"):
        assert f'data-list="{other}"' not in html
    assert 'id="master-figures"' not in html


def test_breached_link_opens_the_filtered_list(login_as, known):
    b, _ = login_as(perm.MASTER_ADMIN)
    html = b.get("/admin/").get_data(as_text=True)
    link = re.search(r'<a class="sla-breached" href="([^"]+)"', html).group(1).replace("&amp;", "&")
    page = b.get(link).get_data(as_text=True)
    assert known["t5"].number in page and known["t1"].number not in page


def test_my_open_tickets_counts_them_all_and_lists_the_most_urgent(login_as, make, db):
    b, user = login_as(perm.CUSTOMER_SERVICE)
    mine = [make.ticket("team") for _ in range(MY_TICKETS_SHOWN + 2)]
    for t in mine:
        tickets.assign(t, user, user)
    make.ticket("team")  # nobody's
    db.session.commit()
    html = b.get("/admin/").get_data(as_text=True)
    assert f'id="my-count">{MY_TICKETS_SHOWN + 2}<' in html
    urgent = sorted(mine, key=lambda t: (t.resolution_due, t.id))
    listed = re.findall(
        r'href="/admin/tickets/desk/([A-Z0-9-]+)/">', html.split('id="my-count"')[1]
    )
    assert listed[:MY_TICKETS_SHOWN] == [t.number for t in urgent[:MY_TICKETS_SHOWN]]

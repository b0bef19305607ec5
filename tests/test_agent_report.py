"""The per-agent report (issue 13 item 9) for the master admin, against known data:
on screen and as CSV (formula-neutralised), refused to every other role."""

from __future__ import annotations

from datetime import timedelta

from backoffice.domain import permissions as perm
from backoffice.domain import tickets
from backoffice.models.base import utcnow

from .test_admin_reports import read_csv
from .test_sla import all_around_the_clock

URL = "/admin/agent-report/"


def _known(make, db):
    """Two agents on three OPS tickets, and one ticket its customer closed unanswered."""
    all_around_the_clock(db, make)  # working time = wall-clock time less the waits
    now = utcnow().replace(microsecond=0)
    hours = lambda n: now - timedelta(hours=n)  # noqa: E731
    ana = make.user(perm.CUSTOMER_SERVICE, name='=HYPERLINK("http://evil","Ana")')
    budi = make.user(perm.CUSTOMER_SERVICE, name="Budi Agen")
    t1 = make.ticket("team", department="OPS", now=hours(30))
    t2 = make.ticket("team", department="OPS", now=hours(30))
    t3 = make.ticket("team", department="OPS", now=hours(30))
    tickets.post_message(t1, ana, "Sudah kami cek.", now=hours(28))  # first response 2 h
    tickets.post_message(t1, budi, "Tambahan info.", now=hours(27))  # waiting: no clock
    tickets.finish(t1, ana, now=hours(20))  # resolution 2 h (the wait is not counted)
    tickets.rate(t1, t1.customer, 4, now=hours(19))
    tickets.post_message(t2, ana, "Catatan gudang.", internal=True, now=hours(29))  # a note
    tickets.post_message(t2, budi, "Paket ditemukan.", now=hours(26))  # first response 4 h
    tickets.finish(t2, budi, now=hours(20))  # resolution 4 h
    tickets.rate(t2, t2.customer, 2, now=hours(19))
    tickets.finish(t3, t3.customer, now=hours(29))  # closed unanswered…
    tickets.rate(t3, t3.customer, 1, now=hours(28))  # …and rated: left out
    db.session.commit()
    return ana, budi


def test_master_sees_replies_medians_finishes_and_ratings_per_agent_and_department(
    login_as, make, db
):
    ana, budi = _known(make, db)
    b, _ = login_as(perm.MASTER_ADMIN, locale="en")
    page = b.get(URL).get_data(as_text=True)
    assert "=HYPERLINK(&#34;http://evil&#34;,&#34;Ana&#34;)" in page  # escaped on screen
    assert "before anyone from staff answered" in page
    rows = read_csv(b.get(f"{URL}agents.csv"))
    assert rows[0] == [
        "Row",
        "Name",
        "Department",
        "Replies",
        "Median first response (hours)",
        "Median resolution (hours)",
        "Tickets finished",
        "Average rating",
        "Row code",
        "Code",
    ]
    by_name = {r[1]: r for r in rows[1:]}
    # Formula-neutralised: the name starts with a quote in the CSV.
    assert by_name['\'=HYPERLINK("http://evil","Ana")'][3:] == [
        "1",
        "2.0",
        "2.0",
        "1",
        "4.0",
        "agent",
        str(ana.id),  # the user id, as the SLA CSV's agent groups
    ]
    assert by_name["Budi Agen"][3:] == ["2", "4.0", "4.0", "1", "2.0", "agent", str(budi.id)]
    ops = [r for r in rows[1:] if r[0] == "Department" and r[2] == "OPS"]
    # The customer's close is no finish, and its rating is out of the average.
    assert ops[0][3:] == ["3", "3.0", "3.0", "2", "3.0", "department", "OPS"]
    assert all(r[0] in ("Agent", "Department") for r in rows[1:])
    assert not any("Customer" in r[1] for r in rows[1:] if r[0] == "Agent")


def test_the_date_range_selects_the_tickets(login_as, make, db):
    _known(make, db)
    b, _ = login_as(perm.MASTER_ADMIN, locale="en")
    page = b.get(f"{URL}?date_from=2020-01-01&date_to=2020-01-31").get_data(as_text=True)
    assert page.count("No tickets in this range.") == 2
    assert read_csv(b.get(f"{URL}agents.csv?date_from=2020-01-01&date_to=2020-01-31"))[1:] == []
    bad = b.get(f"{URL}agents.csv?date_from=2026-02-01&date_to=2026-01-01")
    assert bad.status_code == 400
    page = b.get(f"{URL}?date_from=2026-02-01&date_to=2026-01-01")
    assert page.status_code == 200 and "The end date is before the start date." in page.get_data(
        as_text=True
    )


def test_only_the_master_admin_gets_the_report(login_as, make, db, client):
    _known(make, db)
    for role, extra in (
        (perm.CUSTOMER_SERVICE, {}),
        (perm.ADMIN_DEPARTMENT, {"department": "OPS"}),
        (perm.CUSTOMER, {}),
    ):
        b, _ = login_as(role, **extra)
        assert b.get(URL).status_code == 403, role
        assert b.get(f"{URL}agents.csv").status_code == 403, role
    assert client.get(URL).status_code == 302  # to the login page
    master, _ = login_as(perm.MASTER_ADMIN, locale="en")
    assert 'id="agent-report-link"' in master.get("/admin/reports/").get_data(as_text=True)

"""Reports: CSV streamed in batches, XLSX capped, formula cells neutralised, no notes."""

from __future__ import annotations

import csv
import io
import random
from datetime import datetime, timedelta

import openpyxl
import pytest
from flask_babel import force_locale
from sqlalchemy import select

from backoffice.domain import permissions as perm
from backoffice.domain import tickets
from backoffice.models import Ticket, TicketKind
from backoffice.models.base import utcnow
from backoffice.views.exports import hours_text, number_text
from backoffice.views.reports import neutralise
from backoffice.views.sqlhelpers import local_time, microseconds_between, offset_minutes

from .admin_support import counting_queries
from .test_sla import all_around_the_clock

HEADER = [
    "Number",
    "Subject",
    "Created",
    "First response",
    "Finished at",
    "Kind",
    "Status",
    "Department",
    "Priority",
    "First response (hours)",
    "Resolution (hours)",
    "SLA breached",
    "Rating",
    "Kind code",
    "Status code",
    "Priority code",
]


def read_csv(resp) -> list[list[str]]:
    return list(csv.reader(io.StringIO(resp.get_data().decode("utf-8-sig"))))


@pytest.fixture
def report_data(make, db):
    """Three tickets with known times, an injection attempt and an internal note."""
    all_around_the_clock(db, make)  # working time = wall-clock time less the waits
    now = utcnow().replace(microsecond=0)
    master = make._master()
    a = make.ticket(
        "progress", subject='=HYPERLINK("http://evil","klik")', now=now - timedelta(hours=30)
    )
    tickets.dispatch(a, make.department("OPS"), master, now=now - timedelta(hours=29))
    tickets.post_message(
        a, master, "Rahasia internal: nomor rekening", internal=True, now=now - timedelta(hours=29)
    )
    tickets.post_message(a, master, "Sudah kami cek.", now=now - timedelta(hours=28))  # 2 h
    tickets.finish(a, master, now=now - timedelta(hours=6))  # 24 h
    tickets.rate(a, a.customer, 4, now=now - timedelta(hours=5))
    b = make.ticket(
        "team", kind=TicketKind.COMPLAINT, subject="-Paket rusak", now=now - timedelta(hours=3)
    )
    c = make.ticket("progress", subject="@tanya", kind=TicketKind.QUESTION)  # routed to CS
    db.session.commit()
    return {"a": a, "b": b, "c": c}


def test_neutralise():
    for cell in ("=1+1", "+62811", "-5", "@SUM(A1)", "\tx", "\rx"):
        assert neutralise(cell) == "'" + cell
    assert neutralise("Paket") == "Paket"
    assert neutralise(5) == 5 and neutralise(None) is None


def test_csv_export_contents(login_as, report_data):
    b, _ = login_as(perm.MASTER_ADMIN, locale="en")
    resp = b.get("/admin/reports/tickets.csv")
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    assert resp.is_streamed
    assert "attachment;" in resp.headers["Content-Disposition"]
    rows = read_csv(resp)
    assert rows[0] == HEADER
    by_number = {r[0]: dict(zip(HEADER, r, strict=True)) for r in rows[1:]}
    a, bt, c = (report_data[k] for k in "abc")
    assert set(by_number) == {a.number, bt.number, c.number}
    ra = by_number[a.number]
    assert ra["Subject"] == '\'=HYPERLINK("http://evil","klik")'
    # Labels in the user's language, the codes in columns of their own.
    assert (ra["Kind"], ra["Status"], ra["Department"], ra["Priority"]) == (
        "Criticism",
        "Ticket Finish",
        "OPS",
        "Normal",
    )
    assert (ra["Kind code"], ra["Status code"], ra["Priority code"]) == (
        "criticism",
        "finished",
        "normal",
    )
    assert (ra["First response (hours)"], ra["Resolution (hours)"]) == ("2.0", "24.0")
    assert ra["SLA breached"] == "No" and ra["Rating"] == "4"
    assert ra["Created"] and ra["First response"] and ra["Finished at"]
    assert by_number[bt.number]["Subject"] == "'-Paket rusak"
    assert by_number[c.number]["Subject"] == "'@tanya"
    assert by_number[c.number]["Department"] == "CS"  # routed by the question rule
    text = resp.get_data(as_text=True)
    assert "Rahasia internal" not in text and "Sudah kami cek" not in text


def test_csv_reads_rows_in_batches(app, db, login_as, report_data, make):
    for _ in range(4):
        make.ticket("team")
    db.session.commit()
    b, _ = login_as(perm.MASTER_ADMIN)
    app.config["CAREBOX_REPORT_BATCH"] = 2
    try:
        with counting_queries(db.engine) as statements:
            rows = read_csv(b.get("/admin/reports/tickets.csv"))
    finally:
        app.config["CAREBOX_REPORT_BATCH"] = 2000
    assert len(rows) == 1 + 7
    batches = [s for s in statements if "ticket.id >" in s and "LIMIT" in s.upper()]
    assert len(batches) == 5  # 2 + 2 + 2 + 1 rows, then an empty batch ends it


def test_csv_filters(login_as, report_data, make):
    a, bt, c = (report_data[k] for k in "abc")
    b, _ = login_as(perm.MASTER_ADMIN)

    def numbers(query: str) -> set[str]:
        resp = b.get(f"/admin/reports/tickets.csv?{query}")
        assert resp.status_code == 200
        return {r[0] for r in read_csv(resp)[1:]}

    assert numbers("status=finished") == {a.number}
    assert numbers("status=team&status=finished") == {a.number, bt.number, c.number}
    assert numbers("kind=complaint") == {bt.number}
    assert numbers(f"department={make.department('OPS').id}") == {a.number, bt.number}
    assert numbers("sla=1") == set()
    assert numbers("sla=0") == {a.number, bt.number, c.number}
    assert numbers("q=tanya") == {c.number}
    assert numbers(f"q={a.customer.email}") == {a.number}
    tomorrow = (utcnow() + timedelta(days=2)).date()
    assert numbers(f"date_from={tomorrow}&date_to={tomorrow}") == set()
    resp = b.get("/admin/reports/tickets.csv?date_from=2026-02-01&date_to=2026-01-01")
    assert resp.status_code == 400
    resp = b.get("/admin/reports/tickets.csv?status=bogus")
    assert resp.status_code == 400


def test_xlsx_export_and_cap(app, login_as, report_data):
    b, _ = login_as(perm.MASTER_ADMIN, locale="en")
    resp = b.get("/admin/reports/tickets.xlsx")
    assert resp.status_code == 200
    assert resp.mimetype.endswith("spreadsheetml.sheet")
    sheet = openpyxl.load_workbook(io.BytesIO(resp.get_data()), read_only=True).active
    rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert rows[0] == HEADER and len(rows) == 4
    subjects = {r[1] for r in rows[1:]}
    assert '\'=HYPERLINK("http://evil","klik")' in subjects
    assert all(not str(s).startswith(("=", "-", "@", "+")) for s in subjects)
    assert "X-Carebox-Truncated" not in resp.headers

    app.config["CAREBOX_REPORT_XLSX_MAX_ROWS"] = 2
    try:
        resp = b.get("/admin/reports/tickets.xlsx")
    finally:
        del app.config["CAREBOX_REPORT_XLSX_MAX_ROWS"]
    assert resp.headers["X-Carebox-Truncated"] == "2"
    sheet = openpyxl.load_workbook(io.BytesIO(resp.get_data()), read_only=True).active
    rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert len(rows) == 1 + 2 + 1 and "use the CSV export" in rows[-1][0]


def test_summary_by_department_kind_and_month(login_as, report_data, make):
    a = report_data["a"]
    b, _ = login_as(perm.MASTER_ADMIN, locale="en")
    page = b.get("/admin/reports/").get_data(as_text=True)
    assert "3 tickets match." in page
    assert 'id="summary"' in page
    rows = read_csv(b.get("/admin/reports/summary.csv"))
    assert rows[0][:4] == ["Month", "Department", "Kind", "Tickets"]
    by_key = {(r[1], r[-1]): r for r in rows[1:]}  # the kind's code is the last column
    month = (a.created_at + timedelta(hours=7)).strftime("%Y-%m")
    ops_criticism = by_key[("OPS", "criticism")]
    assert ops_criticism[0] == month
    assert ops_criticism[2] == "Criticism"
    # medians in working time: answered after 2 h, finished while waiting for the
    # customer (22 h of waiting not counted): 2 h to resolve
    assert ops_criticism[3:-1] == ["1", "0", "2.0", "2.0", "4.0"]
    assert by_key[("OPS", "complaint")][3:6] == ["1", "0", ""]
    assert by_key[("CS", "question")][3] == "1"


@pytest.mark.parametrize("locale", ["en", "id"])
def test_the_hours_cells_are_written_as_babel_writes_them(app, locale):
    """hours_text (once per export) writes what number_text (Babel, per cell) wrote."""
    rng = random.Random(16)
    spans = [0, 1, -1, 17_999_999, 18_000_000, 3_600_000_000, 10**12, -(10**9)]
    spans += [rng.randrange(-(10**10), 10**13) for _ in range(5000)]
    with app.test_request_context(), force_locale(locale):
        text = hours_text()
        for us in spans:
            hours = round(us / 1_000_000 / 3600, 2)
            assert text(hours) == number_text(hours), us


def test_local_times_and_durations_come_from_the_database_as_python_had_them(db, make):
    """local_time and microseconds_between give on SQLite and MariaDB what the export used
    to compute in Python from the stored values: local time cut to the second, and
    timedelta.total_seconds()."""
    base = datetime(2026, 3, 1, 16, 59, 59, 999_999)  # 23:59:59 in Jakarta, a day's edge
    cases = [
        (base, base + timedelta(hours=2, microseconds=1)),
        (base, base + timedelta(seconds=18)),  # 0.005 h
        (base.replace(microsecond=0), None),
        (datetime(2025, 12, 31, 17, 0, 0, 500_000), datetime(2026, 1, 3, 9, 30, 0, 499_999)),
        (base, base - timedelta(minutes=5)),  # out of order: negative
    ]
    made = []
    for created, answered in cases:
        ticket = make.ticket("team")
        ticket.created_at, ticket.first_response_at = created, answered
        made.append(ticket)
    db.session.commit()
    minutes = offset_minutes()
    assert minutes == 7 * 60  # Asia/Jakarta
    for ticket in made:
        db.session.expire(ticket)  # as stored: MariaDB keeps no fraction of a second
        stored_created, stored_answered = ticket.created_at, ticket.first_response_at
        got = db.session.execute(
            select(
                local_time(Ticket.created_at, minutes),
                local_time(Ticket.first_response_at, minutes),
                microseconds_between(Ticket.created_at, Ticket.first_response_at),
            ).where(Ticket.id == ticket.id)
        ).one()
        shift = timedelta(minutes=minutes)

        def local(value, shift=shift):
            return None if value is None else str((value + shift).replace(microsecond=0))

        assert got[0] == local(stored_created) and got[1] == local(stored_answered)
        if stored_answered is None:
            assert got[2] is None
        else:
            assert got[2] / 1_000_000 == (stored_answered - stored_created).total_seconds()

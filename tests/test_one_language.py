"""Issue 9 item 20: an Indonesian user's back office is Indonesian throughout — labels,
enum values, numbers (decimal comma) and the CSV/XLSX exports (codes only in columns of
their own), with the paper's list names spelled one way."""

from __future__ import annotations

import csv
import io

import openpyxl

from backoffice.domain import permissions as perm
from backoffice.models import TicketStatus


def _csv(resp) -> list[dict]:
    rows = list(csv.reader(io.StringIO(resp.get_data().decode("utf-8-sig"))))
    return [dict(zip(rows[0], r, strict=True)) for r in rows[1:]]


def test_ticket_exports_are_indonesian_with_codes_apart(login_as, make, db):
    ticket = make.ticket(TicketStatus.RESPONDED)
    ticket.rating = None
    db.session.commit()
    b, _ = login_as(perm.MASTER_ADMIN, locale="id")
    row = next(r for r in _csv(b.get("/admin/reports/tickets.csv")) if r["Nomor"] == ticket.number)
    assert (row["Jenis"], row["Status"], row["Prioritas"]) == (
        "Kritik",
        "Tanggapan Ticket",
        "Normal",
    )
    assert (row["Kode jenis"], row["Kode status"], row["Kode prioritas"]) == (
        "criticism",
        "responded",
        "normal",
    )
    assert row["SLA terlampaui"] == "Tidak"
    assert row["Tanggapan pertama (jam)"] == "0,0"  # the decimal comma

    sheet = openpyxl.load_workbook(
        io.BytesIO(b.get("/admin/reports/tickets.xlsx").get_data()), read_only=True
    ).active
    header, *rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    cells = dict(zip(header, next(r for r in rows if r[0] == ticket.number), strict=True))
    assert cells["Jenis"] == "Kritik" and cells["Kode jenis"] == "criticism"
    assert cells["Tanggapan pertama (jam)"] == 0  # a number: the spreadsheet formats it

    summary = _csv(b.get("/admin/reports/summary.csv"))
    assert {r["Jenis"] for r in summary} == {"Kritik"}
    assert {r["Kode jenis"] for r in summary} == {"criticism"}


def test_customer_export_is_indonesian(login_as, make, db):
    customer = make.user(perm.CUSTOMER, email="siti@example.com", locale="id")
    db.session.commit()
    b, _ = login_as(perm.MASTER_ADMIN, locale="id")
    row = next(r for r in _csv(b.get("/admin/customers/export.csv")) if r["ID"] == str(customer.id))
    assert row["Aktif"] == "Ya" and row["Kabar lewat email"] == "Tidak"
    assert row["Bahasa"] == "Bahasa Indonesia"
    assert row["Segmen loyalitas"] == "Baru" and row["Kode segmen loyalitas"] == "new"


def test_list_pages_role_names_and_list_names_are_indonesian(login_as):
    b, _ = login_as(perm.MASTER_ADMIN, locale="id")
    page = b.get("/admin/tickets/team/").get_data(as_text=True)
    assert "25 per halaman" in page and " items" not in page
    # The paper's name of the list, spelled as its status is: no "Ticket Team".
    assert "Ticket dalam penanganan team" in page and "Ticket Team" not in page
    staff = b.get("/admin/staff/new/").get_data(as_text=True)
    assert "Master admin: semua daftar, laporan, pengguna, dan konten" in staff
    assert "every list, reports" not in staff


def test_average_ratings_use_the_decimal_comma(login_as, make, db):
    ticket = make.ticket(TicketStatus.FINISHED)
    ticket.rating = 4
    db.session.commit()
    b, _ = login_as(perm.MASTER_ADMIN, locale="id")
    assert "4,00 / 5" in b.get("/admin/").get_data(as_text=True)
    english, _ = login_as(perm.MASTER_ADMIN, locale="en")
    assert "4.00 / 5" in english.get("/admin/").get_data(as_text=True)

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


# --- the features of session 3: a scan for English in the Indonesian pages ----------------
#
# Every English msgid the Indonesian catalogue translates differently is cut at its
# placeholders; a piece of at least two words that shows in an Indonesian page's text
# (or its aria-labels, placeholders, titles) is English that leaked: a string outside
# gettext, a lazy string formatted too early, or a gettext call under the wrong locale.


def _english_pieces() -> set[str]:
    import re
    from pathlib import Path

    from babel.messages.pofile import read_po

    po = Path(__file__).parents[1] / "backoffice/translations/id/LC_MESSAGES/messages.po"
    with po.open("rb") as f:
        catalog = read_po(f)
    pieces = set()
    for m in catalog:
        ids = m.id if isinstance(m.id, tuple) else (m.id,)
        strings = m.string if isinstance(m.string, tuple) else (m.string,)
        translated = " ".join(s for s in strings if s)
        for msgid in ids:
            if not msgid or not translated or msgid in strings:
                continue
            for piece in re.split(r"%\(\w+\)[sdfr]|%[sd]|\{\w*\}|[\n:;…]", msgid):
                piece = piece.strip(" .,()“”\"'")
                if len(piece) >= 12 and " " in piece and piece not in translated:
                    pieces.add(piece)
    return pieces


def _shown_text(html: str) -> str:
    import html as html_lib
    import re

    html = re.sub(r"(?is)<(script|style)\b.*?</\1>", " ", html)
    attrs = re.findall(r'(?:aria-label|placeholder|title|alt)="([^"]*)"', html)
    text = re.sub(r"<[^>]+>", " ", html) + " " + " ".join(attrs)
    return re.sub(r"\s+", " ", html_lib.unescape(text))


def english_in(html: str, pieces: set[str]) -> list[str]:
    text = _shown_text(html)
    return sorted(p for p in pieces if p in text)


def _indonesian_world(make, db, client):
    """A ticket with a situation badge and a merged duplicate, notices for a department
    admin, an agent with figures for the reports, a WhatsApp template."""
    from backoffice.domain import tickets
    from backoffice.models import ShipmentSituation, TicketKind, WhatsAppTemplate

    owner = make.user(perm.CUSTOMER, locale="id", name="Budi")
    order = make.order(customer=owner)
    first = tickets.file_ticket(owner, TicketKind.COMPLAINT, "Paket belum sampai", "Halo")
    second = tickets.file_ticket(owner, TicketKind.COMPLAINT, "Paket belum sampai lagi", "Halo")
    master = make._master()
    tickets.dispatch(first, make.department("OPS"), master)
    first.situation = ShipmentSituation.LATE
    tickets.merge(second, first, master)
    agent = make.user(perm.CUSTOMER_SERVICE, name="Sari", locale="id")
    answered = make.ticket("team", department="OPS")
    tickets.assign(answered, agent, agent)
    tickets.post_message(answered, agent, "Sudah kami cek.")
    tickets.finish(answered, agent)
    db.session.add(
        WhatsAppTemplate(name="carebox_info", language="id", parameters='["nomor_tiket"]')
    )
    db.session.commit()
    return owner, order, first, second


def test_the_new_indonesian_pages_carry_no_english(login_as, make, db, client):
    from backoffice.domain import tickets
    from backoffice.models import ShipmentSituation

    from .portal_support import customer

    owner, order, first, second = _indonesian_world(make, db, client)
    pieces = _english_pieces()
    assert len(pieces) > 500  # the catalogue was read
    leaks = {}
    ops, _ = login_as(perm.ADMIN_DEPARTMENT, department="OPS", locale="id")
    b, _ = login_as(perm.MASTER_ADMIN, locale="id")
    pages = [(ops, "/admin/notifications/"), (ops, "/admin/")]
    pages += [
        (b, url)
        for url in (
            "/admin/",
            "/admin/reports/sla/",
            "/admin/agent-report/",
            "/admin/notifications/",
            f"/admin/tickets/desk/{first.number}/",
            f"/admin/tickets/desk/{second.number}/",
            "/admin/tickets/team/",
            "/admin/tickets/finished/",
            "/admin/whatsapp-templates/",
            "/admin/whatsapp-templates/new/",
        )
    ]
    c, me = customer(login_as, locale="id")
    mine = make.ticket("team", customer=me)
    duplicate = make.ticket("team", customer=me)
    mine.situation = ShipmentSituation.STUCK
    tickets.merge(duplicate, mine, make._master())
    db.session.commit()
    pages += [(c, "/account"), (c, "/tickets"), (c, f"/tickets/{mine.number}")]
    pages += [(c, f"/tickets/{duplicate.number}")]
    pages += [(c, f"/track/{order.resi}")]
    for browser, url in pages:
        resp = browser.get(url)
        if resp.status_code in (301, 302, 303):
            resp = browser.get(resp.headers["Location"])
        assert resp.status_code == 200, (url, resp.status_code)
        found = english_in(resp.get_data(as_text=True), pieces)
        if found:
            leaks[url] = found
    assert leaks == {}


def test_the_whatsapp_template_picker_is_indonesian(whatsapp, client, db, login_as):
    from .test_whatsapp_outbound import customer_writes
    from .test_whatsapp_templates import add_template

    ticket = customer_writes(client, db, hours_ago=30)
    row = add_template(db)
    b, _ = login_as(perm.CUSTOMER_SERVICE, locale="id")
    pieces = _english_pieces()
    for query in ("", f"?wa_template={row.id}", "?wa_template=abc"):
        html = b.get(f"/admin/tickets/desk/{ticket.number}/{query}").get_data(as_text=True)
        assert 'id="wa-templates"' in html
        assert english_in(html, pieces) == [], query


def test_the_new_csv_headers_are_indonesian(login_as, make, db, client):
    _indonesian_world(make, db, client)
    b, _ = login_as(perm.MASTER_ADMIN, locale="id")
    pieces = _english_pieces()
    for url in ("/admin/reports/sla.csv", "/admin/agent-report/agents.csv"):
        resp = b.get(url)
        assert resp.status_code == 200, url
        rows = list(csv.reader(io.StringIO(resp.get_data().decode("utf-8-sig"))))
        text = " ".join(" ".join(r) for r in rows)
        assert english_in(text, pieces) == [], (url, rows[0])
        assert not any(h.isascii() and h in {"Agent", "Department", "Month"} for h in rows[0])
    # Codes apart: a machine groups the rows without reading Indonesian.
    sla = _csv(b.get("/admin/reports/sla.csv"))
    assert {r["Kode pengelompokan"] for r in sla} == {"department", "priority", "agent", "month"}
    assert {r["Dikelompokkan menurut"] for r in sla} == {"Departemen", "Prioritas", "Agen", "Bulan"}
    agents = _csv(b.get("/admin/agent-report/agents.csv"))
    assert {(r["Baris"], r["Kode baris"]) for r in agents} == {
        ("Agen", "agent"),
        ("Departemen", "department"),
    }


def test_the_new_indonesian_emails_carry_no_english(login_as, make, db, client):
    """The order confirmation, shipment update, merge notice, auto-finish warning and the
    agent's digest, to an Indonesian customer and agent."""
    from .test_hostile_input import HOSTILE, make_the_new_emails

    mails = make_the_new_emails(db, make, client)
    pieces = _english_pieces()
    leaks = {}
    for mail in mails:
        for part in (mail.subject, mail.body_text, mail.body_html):
            found = english_in(part.replace(HOSTILE, ""), pieces)
            if found:
                leaks.setdefault(mail.subject, set()).update(found)
    assert leaks == {}


def test_the_new_actions_answer_in_indonesian(login_as, make, db):
    """Flashed answers of the desk's merge and parcel link, the notifications' buttons,
    good and refused, for an Indonesian master admin."""
    import re

    from .admin_support import flashes

    owner = make.user(perm.CUSTOMER, locale="id")
    other = make.order()
    first = make.ticket("team", customer=owner)
    second = make.ticket("team", customer=owner)
    db.session.commit()
    b, _ = login_as(perm.MASTER_ADMIN, locale="id")
    pieces = _english_pieces()
    desk = f"/admin/tickets/desk/{second.number}/"

    def post(path, data, url=desk):
        page = b.get(url).get_data(as_text=True)
        version = re.search(r'name="expected_version"[^>]*value="(\d+)"', page)
        form = {**data, **({"expected_version": version.group(1)} if version else {})}
        resp = b.post(path, form, form_url=url)
        if resp.status_code in (302, 303):
            resp = b.get(resp.headers["Location"])
        return flashes(resp.get_data(as_text=True))

    answers = [
        post(desk + "parcel", {"resi": ""}),
        post(desk + "parcel", {"resi": other.resi[:-3] + "0ID"}),  # a wrong check digit
        post(desk + "parcel", {"resi": other.resi}),  # another customer's parcel
        post(desk + "parcel", {"resi": "CB000000000ID"}),
        post(desk + "merge", {"into": "CX-0000-000000"}),
        post(desk + "merge", {"into": second.number}),  # into itself
        post(desk + "merge", {"into": first.number}),
        post("/admin/notifications/read", {}, url="/admin/notifications/"),
        post("/admin/notifications/digest", {}, url="/admin/"),
        post("/admin/notifications/digest", {}, url="/admin/"),
    ]
    assert all(answers), answers  # each one said something
    leaks = {a: english_in(a, pieces) for a in answers if english_in(a, pieces)}
    assert leaks == {}


def test_the_sla_report_uses_the_decimal_comma(login_as, make, db, client):
    _indonesian_world(make, db, client)
    b, _ = login_as(perm.MASTER_ADMIN, locale="id")
    page = _shown_text(b.get("/admin/reports/sla/").get_data(as_text=True))
    assert "100,0 %" in page and "100.0 %" not in page
    english, _ = login_as(perm.MASTER_ADMIN, locale="en")
    assert "100.0 %" in _shown_text(english.get("/admin/reports/sla/").get_data(as_text=True))


def test_weights_use_the_decimal_comma_in_the_order_email_and_on_the_desk(login_as, make, db):
    from decimal import Decimal

    from sqlalchemy import select

    from backoffice.domain import tickets
    from backoffice.domain.orders import place_order
    from backoffice.models import OutboxEmail, Product, TicketKind

    product = db.session.scalar(select(Product).where(Product.code == "REG"))
    owner = make.user(perm.CUSTOMER, locale="id")
    order = place_order(
        owner, product, origin="Jakarta", destination="Bandung", weight_kg=Decimal("2.5")
    )
    ticket = tickets.file_ticket(owner, TicketKind.COMPLAINT, "Paket", "Halo", order=order)
    db.session.commit()
    mail = db.session.scalars(
        select(OutboxEmail).where(OutboxEmail.subject.contains(order.number))
    ).one()
    for body in (mail.body_text, mail.body_html):
        assert "2,5 kg" in body and "2.50" not in body
    for lang, shown in (("id", "2,5 kg"), ("en", "2.5 kg")):
        b, _ = login_as(perm.MASTER_ADMIN, locale=lang)
        for url in (
            f"/admin/tickets/desk/{ticket.number}/",
            f"/admin/orders/details/?id={order.id}",
        ):
            page = _shown_text(b.get(url).get_data(as_text=True))
            assert shown.removesuffix(" kg") in page and "2.50" not in page, (lang, url)
            assert "desk" not in url or shown in page
        listed = _shown_text(b.get("/admin/orders/").get_data(as_text=True))
        assert shown.removesuffix(" kg") in listed and "2.50" not in listed, lang


def test_the_new_whatsapp_messages_to_an_indonesian_customer_carry_no_english(
    whatsapp, client, db, make
):
    """The auto-finish warning (as the reply template) and the phone claim link, queued
    for an Indonesian customer: their text and parameters."""
    from sqlalchemy import select

    from backoffice.domain import autofinish, phone_claims
    from backoffice.models import MessageChannel, OutboxWhatsApp

    from .test_autofinish import WARN, _waiting
    from .test_whatsapp_contacts import whatsapp_contact

    _waiting(db, make, channel=MessageChannel.WHATSAPP, phone="081298765432", email="w@x.id")
    assert autofinish.run(now=WARN).warned == 1
    whatsapp_contact(client, db)
    owner = make.user(phone="081234567890", locale="id")
    db.session.commit()
    assert phone_claims.offer(owner)
    db.session.commit()
    pieces = _english_pieces()
    rows = db.session.scalars(select(OutboxWhatsApp)).all()
    assert len(rows) >= 2
    leaks = {}
    for row in rows:
        for part in (row.body or "", row.template_params or ""):
            if english_in(part, pieces):
                leaks[row.send_key or row.id] = english_in(part, pieces)
    assert leaks == {}

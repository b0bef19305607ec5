"""Every page shape, in both languages, through axe-core and the Nu HTML checker.

One visit per page shape and language: the page is loaded in Chromium, axe-core
(from npm, node_modules/axe-core) runs inside it, and the HTML the server sent is
kept. After the visits, the Nu HTML checker (vnu-jar from npm, on the machine's
Java) reads all of those files in one run: one JVM start instead of one per page.

The visits happen once, in a module fixture, so the tests below only read what it
found: each page shape is its own test for axe (a failure names the page and the
rule), and one test holds the checker's verdict on all of them.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from .support import PASSWORD, unique_email, write_png

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
VNU = ROOT / "node_modules" / "vnu-jar" / "build" / "dist" / "vnu.jar"
LANGUAGES = ("id", "en")
# What axe checks: WCAG 2.x A and AA, and its best practices. What must be zero.
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]
BLOCKING = {"critical", "serious"}

# (shape, who visits it, URL; "{…}" names a row made by the fixture)
SHAPES: list[tuple[str, str, str]] = [
    # public portal, not signed in
    ("portal-home", "anonymous", "/"),
    ("faq", "anonymous", "/faq"),
    ("faq-search", "anonymous", "/faq?q=paket+belum+sampai"),
    ("products", "anonymous", "/products"),
    ("login", "anonymous", "/login"),
    ("register", "anonymous", "/register"),
    ("reset", "anonymous", "/reset"),
    ("confirm", "anonymous", "/confirm"),
    ("not-found", "anonymous", "/no-such-page"),
    ("track", "anonymous", "/track"),
    ("track-resi", "anonymous", "/track/{resi}"),
    # the customer's own pages
    ("my-tickets", "customer", "/tickets"),
    ("ticket-new", "customer", "/tickets/new"),
    ("ticket", "customer", "/tickets/{ticket}"),
    ("my-orders", "customer", "/orders"),
    ("order-new", "customer", "/orders/new"),
    ("order", "customer", "/orders/{order}"),
    ("account", "customer", "/account"),
    ("phone-claim", "customer", "/account/phone/{claim}"),
    ("phone-claim-bad", "customer", "/account/phone/not-a-token"),
    ("ticket-merged", "customer", "/tickets/{merged}"),
    ("change-password", "customer", "/account/password"),
    # the back office
    ("dashboard", "master", "/admin/"),
    ("tickets-progress", "master", "/admin/tickets/progress/"),
    ("tickets-team", "master", "/admin/tickets/team/"),
    ("tickets-responded", "master", "/admin/tickets/responded/"),
    ("tickets-finished", "master", "/admin/tickets/finished/"),
    ("desk", "master", "/admin/tickets/desk/{ticket}/"),
    ("desk-finished", "master", "/admin/tickets/desk/{finished}/"),
    # a WhatsApp ticket outside the 24-hour window: the picker, then a chosen template
    ("desk-whatsapp-picker", "master", "/admin/tickets/desk/{wa_ticket}/"),
    ("desk-whatsapp-template", "master", "/admin/tickets/desk/{wa_ticket}/?wa_template={wa}"),
    # a department admin's desk: replies and notes only, the Actions card says so
    ("desk-department", "department", "/admin/tickets/desk/{ticket}/"),
    # the desk's panels as pages of their own (their links without JavaScript)
    ("desk-panel-actions", "master", "/admin/tickets/desk/{ticket}/panel/actions"),
    ("desk-panel-customer", "master", "/admin/tickets/desk/{ticket}/panel/customer"),
    ("desk-panel-canned", "master", "/admin/tickets/desk/{ticket}/panel/canned"),
    ("notifications", "department", "/admin/notifications/"),
    ("reports", "master", "/admin/reports/"),
    ("agent-report", "master", "/admin/agent-report/"),
    ("sla-report", "master", "/admin/reports/sla/"),
    ("staff", "master", "/admin/staff/"),
    ("staff-new", "master", "/admin/staff/new/"),
    ("departments", "master", "/admin/departments/"),
    ("department-edit", "master", "/admin/departments/edit/?id={department}"),
    ("routing-rules", "master", "/admin/routing_rules/"),
    ("routing-rule-new", "master", "/admin/routing_rules/new/"),
    ("faq-categories", "master", "/admin/faq_categories/"),
    ("faq-entries", "master", "/admin/faq/"),
    ("faq-entry-edit", "master", "/admin/faq/edit/?id={faq}"),
    ("products-admin", "master", "/admin/products/"),
    ("product-edit", "master", "/admin/products/edit/?id={product}"),
    ("announcements", "master", "/admin/announcements/"),
    ("announcement-new", "master", "/admin/announcements/new/"),
    ("announcement-send", "master", "/admin/announcements/send/?id={announcement}"),
    ("announcement-log", "master", "/admin/announcements/log/"),
    ("customers", "master", "/admin/customers/"),
    ("customer", "master", "/admin/customers/details/?id={customer_id}"),
    ("orders-admin", "master", "/admin/orders/"),
    ("order-admin", "master", "/admin/orders/details/?id={order_id}"),
    ("order-admin-edit", "master", "/admin/orders/edit/?id={order_id}"),
    ("canned-replies", "master", "/admin/canned-replies/"),
    ("canned-reply-new", "master", "/admin/canned-replies/new/"),
    ("mail-review", "master", "/admin/mail-review/"),
    ("whatsapp-templates", "master", "/admin/whatsapp-templates/"),
    ("whatsapp-template-new", "master", "/admin/whatsapp-templates/new/"),
    ("whatsapp-template-edit", "master", "/admin/whatsapp-templates/edit/?id={wa}"),
    ("admin-not-found", "master", "/admin/tickets/desk/CX-1999-000000/"),
]


@dataclass
class Visit:
    url: str
    status: int
    violations: list[dict] = field(default_factory=list)
    html_file: Path | None = None


def _people(live_server) -> dict[str, dict]:
    """Per language: a master admin and a customer speaking it, and rows to show."""
    from sqlalchemy import select

    from backoffice.domain import attachments, contacts, phone_claims, tickets
    from backoffice.domain import permissions as perm
    from backoffice.domain.orders import place_order
    from backoffice.extensions import db
    from backoffice.models import (
        Announcement,
        AnnouncementKind,
        Department,
        FaqEntry,
        MessageChannel,
        Product,
        ShipmentSituation,
        TicketKind,
        WhatsAppTemplate,
    )
    from backoffice.models.base import utcnow
    from backoffice.seed import ensure_user

    rows: dict[str, dict] = {}
    with live_server.app_context():
        department = db.session.scalar(select(Department).where(Department.code == "OPS"))
        product = db.session.scalar(select(Product).where(Product.code == "REG"))
        faq = db.session.scalar(select(FaqEntry).order_by(FaqEntry.id))
        announcement = Announcement(
            kind=AnnouncementKind.NEW_PRODUCT,
            title_id="Layanan baru",
            body_id="Kini ada layanan kilat.",
            title_en="A new service",
            body_en="Same-day delivery is here.",
        )
        db.session.add(announcement)
        template = WhatsAppTemplate(
            name="carebox_info_tiket",
            language="id",
            parameters='["nomor_tiket", "nama_pelanggan", "catatan"]',
            body="Halo {{2}}, tiket {{1}}: {{3}}",
        )
        db.session.add(template)
        for n, lang in enumerate(LANGUAGES):
            # A WhatsApp contact who wrote 30 hours ago: outside the window. Its phone
            # becomes the customer's below, so the customer has a claim link to open.
            phone = f"+62 812 5550 00{n}{n}"
            contact, _new = contacts.find_or_create_contact(phone=phone, name="Wati", locale=lang)
            wa_ticket = tickets.file_ticket(
                contact,
                TicketKind.QUESTION,
                "Paket belum sampai",
                "Halo, paket saya di mana?",
                channel=MessageChannel.WHATSAPP,
                now=utcnow() - timedelta(hours=30),
            )
            master = ensure_user(unique_email(f"master-{lang}"), PASSWORD, perm.MASTER_ADMIN)
            master.name = "Maya Master"
            customer = ensure_user(unique_email(f"cust-{lang}"), PASSWORD, perm.CUSTOMER)
            customer.name = "Budi Pelanggan"
            for user in (master, customer):
                user.locale = lang
            customer.phone = phone
            order = place_order(
                customer,
                product,
                origin="Jakarta",
                destination="Bandung",
                weight_kg=Decimal("2.5"),
                receiver_name="Siti",
            )
            ticket = tickets.file_ticket(
                customer,
                TicketKind.COMPLAINT,
                "Paket belum sampai",
                "Paket saya belum sampai sejak Senin.",
                order=order,
            )
            tickets.dispatch(ticket, department, master)
            tickets.post_message(ticket, master, "Kami sedang memeriksanya.")
            tickets.post_message(ticket, master, "Catatan internal.", internal=True)
            tickets.post_message(ticket, customer, "Terima kasih, saya tunggu.")
            for n in range(6):  # enough to make the conversation and timeline scroll
                tickets.post_message(ticket, master, f"Kabar ke-{n + 1}: paket di gudang.")
                tickets.post_message(ticket, customer, f"Baik, terima kasih ({n + 1}).")
            # The customer's photo (a thumbnail) and a PDF (its icon); assigned to the
            # master, so the desk shows "Unassign me".
            photo = write_png(Path(tempfile.mkdtemp()) / "paket.png")
            with photo.open("rb") as stream:
                files = [
                    attachments.store(stream, "paket.png"),
                    attachments.store(io.BytesIO(b"%PDF-1.4\n%%EOF\n"), "resi.pdf"),
                ]
            tickets.post_message(ticket, customer, "Ini foto paketnya.", attachments=files)
            tickets.assign(ticket, master, master)
            ticket.situation = ShipmentSituation.LATE  # the badge on desk, lists and chat
            duplicate = tickets.file_ticket(
                customer, TicketKind.COMPLAINT, "Paket belum sampai (2)", "Masih belum."
            )
            tickets.merge(duplicate, ticket, master)
            agent = ensure_user(
                unique_email(f"ops-{lang}"), PASSWORD, perm.ADMIN_DEPARTMENT, department=department
            )
            agent.name, agent.locale = "Oki Operasional", lang
            db.session.flush()
            # A ticket reaching OPS: a notification for the department admin's page.
            extra = tickets.file_ticket(
                customer, TicketKind.COMPLAINT, "Paket rusak", "Kardusnya sobek."
            )
            if extra.department_id != department.id:
                tickets.dispatch(extra, department, master)
            finished = tickets.file_ticket(
                customer, TicketKind.QUESTION, "Jam buka kantor", "Kantor buka jam berapa?"
            )
            tickets.post_message(finished, master, "Pukul 08.00 sampai 17.00.")
            tickets.finish(finished, master)
            db.session.flush()
            rows[lang] = {
                "master": master.email,
                "customer": customer.email,
                "department_admin": agent.email,
                "ticket": ticket.number,
                "finished": finished.number,
                "order": order.number,
                "resi": order.resi,
                "order_id": order.id,
                "customer_id": customer.id,
                "department": department.id,
                "product": product.id,
                "faq": faq.id,
                "announcement": announcement.id,
                "merged": duplicate.number,
                "wa_ticket": wa_ticket.number,
                "wa": template.id,
                "claim": phone_claims.token_for(customer, contact),
            }
        db.session.commit()
        db.session.remove()
    return rows


def _axe(page) -> list[dict]:
    """axe-core's critical and serious violations on the page as it is now."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(AXE.read_text(encoding="utf-8"))  # evaluate is not subject to the CSP
    result = page.evaluate(
        "tags => axe.run(document,"
        " {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']})",
        AXE_TAGS,
    )
    return [
        {
            "rule": v["id"],
            "impact": v["impact"],
            "help": v["help"],
            "nodes": [n["target"] for n in v["nodes"]][:5],
            "summary": v["nodes"][0].get("failureSummary", "")[:300],
        }
        for v in result["violations"]
        if v["impact"] in BLOCKING
    ]


@pytest.fixture(scope="module")
def visits(chromium: Browser, live_server, tmp_path_factory) -> dict[tuple[str, str], Visit]:
    """Every shape in every language, visited once: {(lang, shape): Visit}."""
    assert AXE.exists() and VNU.exists(), "npm packages missing: make test-deps"
    # The WhatsApp channel configured (nothing is sent: no worker runs here), so that
    # the desk shows the template picker outside the window.
    wa_config = {
        "WHATSAPP_APP_SECRET": "s",
        "WHATSAPP_VERIFY_TOKEN": "v",
        "WHATSAPP_TOKEN": "t",
        "WHATSAPP_PHONE_NUMBER_ID": "1",
    }
    saved = {key: live_server.app.config.get(key) for key in wa_config}
    live_server.app.config.update(wa_config)
    try:
        return _visit_all(chromium, live_server, tmp_path_factory)
    finally:
        live_server.app.config.update(saved)


def _visit_all(chromium, live_server, tmp_path_factory) -> dict[tuple[str, str], Visit]:
    rows = _people(live_server)
    out = tmp_path_factory.mktemp("page-html")
    if os.environ.get("CAREBOX_PAGE_HTML"):  # keep the pages to look at (e.g. in CI)
        out = Path(os.environ["CAREBOX_PAGE_HTML"])
        out.mkdir(parents=True, exist_ok=True)
    found: dict[tuple[str, str], Visit] = {}
    only = os.environ.get("CAREBOX_PAGE_SHAPES")  # a regular expression, to look at a few
    for lang in LANGUAGES:
        pages = {}
        for who in ("anonymous", "customer", "master", "department"):
            context = chromium.new_context(
                base_url=live_server.url,
                locale="id-ID" if lang == "id" else "en-US",
                viewport={"width": 1280, "height": 900},
            )
            page = context.new_page()
            if who != "anonymous":
                _log_in(page, rows[lang]["department_admin" if who == "department" else who])
            pages[who] = page
        for shape, who, url in SHAPES:
            if only and not re.search(only, shape):
                continue
            page = pages[who]
            url = url.format(**rows[lang])
            response = page.goto(url)
            # The desk's panels arrive after the page: axe looks at them too.
            page.wait_for_function("() => !document.querySelector('[aria-busy=true]')")
            html = response.text()
            html_file = out / f"{lang}-{shape}.html"
            html_file.write_text(html, encoding="utf-8")
            found[lang, shape] = Visit(url, response.status, _axe(page), html_file)
        for page in pages.values():
            page.context.close()
    return found


def _log_in(page, email: str) -> None:
    """The login form, read by field name: it speaks the browser's language here."""
    page.goto("/login")
    page.locator("input[name=email]").fill(email)
    page.locator("input[name=password]").fill(PASSWORD)
    page.locator("form:has(input[name=password]) [type=submit]").click()
    page.wait_for_url(re.compile(r"/(admin/|signed-in|tickets|$)"))
    page.wait_for_load_state()


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("shape", [s[0] for s in SHAPES])
def test_axe_finds_nothing_serious(visits, shape, lang):
    if (lang, shape) not in visits:
        pytest.skip("not among CAREBOX_PAGE_SHAPES")
    visit = visits[lang, shape]
    assert visit.status < 500, (visit.url, visit.status)
    assert visit.violations == [], f"{visit.url} ({lang}):\n" + json.dumps(
        visit.violations, indent=1, ensure_ascii=False
    )


def test_every_page_is_valid_html(visits):
    """The Nu HTML checker on every page shape and language at once: zero errors."""
    files = sorted(str(v.html_file) for v in visits.values())
    java = shutil.which("java") or "java"  # Debian's, as .ci/debian-packages probes
    argv = [java, "-Xss4m", "-jar", str(VNU), "--errors-only", "--format", "json", *files]
    run = subprocess.run(argv, capture_output=True, text=True, timeout=300)  # noqa: S603
    messages = json.loads(run.stderr or '{"messages": []}')["messages"]
    errors = [
        f"{Path(m.get('url', '')).name}:{m.get('lastLine', '?')}: {m['message']}"
        f"  [{m.get('extract', '').strip()[:120]}]"
        for m in messages
        if m.get("type") == "error" or m.get("subType") == "fatal"
    ]
    assert run.returncode in (0, 1), run.stderr[-2000:]
    assert errors == [], f"{len(errors)} errors:\n" + "\n".join(errors)

"""Screenshots for the README: `make screenshots` writes docs/screenshots/*.png.

Collected only with `--screenshots` (tests/browser/conftest.py deselects it
otherwise): it rewrites files in the repository. The data are the demo seed
(`carebox seed --demo`) plus a month of tickets made through the lifecycle
module, so the dashboard's charts have something to show.
"""

from __future__ import annotations

import io
import random
from datetime import timedelta

import pytest
from playwright.sync_api import Page, expect

from .support import SCREENSHOTS, STAFF, log_in, write_png

pytestmark = pytest.mark.browser

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
SUBJECTS = {
    "complaint": ["Paket terlambat 3 hari", "Kemasan rusak", "Kurir tidak datang", "Salah alamat"],
    "criticism": ["Aplikasi lacak lambat", "Antrean gerai panjang", "Tarif kurang jelas"],
    "suggestion": ["Tambah gerai di Bekasi", "Notifikasi lewat WhatsApp", "Jemput paket sore"],
    "question": ["Jam buka gerai", "Cara klaim asuransi", "Berat maksimum kargo"],
}


def _month_of_tickets(tmp_path) -> str:
    """Demo data plus ~60 tickets over 30 days; returns the number of the chat's ticket."""
    from sqlalchemy import select

    from backoffice.domain import attachments as files
    from backoffice.domain import tickets as lifecycle
    from backoffice.extensions import db
    from backoffice.models import Department, Priority, TicketKind, User
    from backoffice.models.base import utcnow
    from backoffice.seed import seed_demo

    rng = random.Random(2026)
    seed_demo()
    users = {u.email: u for u in db.session.scalars(select(User))}
    customer = users["customer@carebox.example"]
    customer.locale = "en"  # the README is in English
    master, cs = users[STAFF["master"].email], users[STAFF["cs"].email]
    departments = list(db.session.scalars(select(Department).where(Department.active)))
    now = utcnow()
    for i in range(60):
        filed = now - timedelta(days=rng.uniform(0, 29), hours=rng.uniform(0, 8))
        kind = rng.choice(list(TicketKind))
        ticket = lifecycle.file_ticket(
            customer, kind, rng.choice(SUBJECTS[kind.value]), "Mohon dibantu.", now=filed
        )
        if rng.random() < 0.15:
            continue  # still in Progress
        if ticket.department_id is None:
            lifecycle.dispatch(ticket, rng.choice(departments), master, now=filed)
        if i % 5 == 0:
            lifecycle.set_priority(ticket, rng.choice(list(Priority)), cs, now=filed)
        if rng.random() < 0.25:
            continue  # still with the team
        answered = filed + timedelta(hours=rng.uniform(0.5, 30))
        if answered > now:
            continue
        lifecycle.post_message(ticket, cs, "Terima kasih, sedang kami cek.", now=answered)
        finished = answered + timedelta(hours=rng.uniform(1, 48))
        if rng.random() < 0.3 or finished > now:
            continue  # waiting for the customer
        lifecycle.finish(ticket, cs, now=finished)
        if rng.random() < 0.7:
            lifecycle.rate(ticket, customer, rng.choice([3, 4, 4, 5, 5, 5]), now=finished)

    # The conversation the ticket-chat screenshot shows: a photo, a reply, an answer.
    photo = files.store(io.BytesIO(write_png(tmp_path / "p.png", 160, 120).read_bytes()), "box.png")
    chat = lifecycle.file_ticket(
        customer,
        TicketKind.COMPLAINT,
        "Kardus penyok saat diterima",
        "Kardus paket saya penyok dan basah saat sampai. Foto terlampir.",
        attachments=[photo],
        now=now - timedelta(hours=3),
    )
    lifecycle.dispatch(chat, departments[0], master, now=now - timedelta(hours=2, minutes=50))
    lifecycle.post_message(
        chat, cs, "Catatan: cek foto gudang Bandung.", internal=True, now=now - timedelta(hours=2)
    )
    lifecycle.post_message(
        chat,
        cs,
        "Mohon maaf atas kejadian ini. Kurir kami akan menjemput paket besok untuk klaim.",
        now=now - timedelta(hours=1, minutes=30),
    )
    lifecycle.post_message(
        chat, customer, "Baik, saya di rumah setelah jam 10.", now=now - timedelta(hours=1)
    )
    db.session.commit()
    number = chat.number
    db.session.remove()
    return number


def shoot(page: Page, name: str, *, full_page: bool = True) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.wait_for_load_state("networkidle")
    page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=full_page)


def test_screenshots(new_context, live_server, tmp_path):
    with live_server.app_context():
        number = _month_of_tickets(tmp_path)

    for viewport, suffix in ((DESKTOP, ""), (PHONE, "-phone")):
        customer = new_context(viewport=viewport).new_page()
        log_in(customer, "customer@carebox.example", "customer-demo-2026")
        customer.goto("/")
        customer.get_by_role("searchbox", name="Your question").fill("track my parcel")
        expect(customer.get_by_role("link", name="How do I track my parcel?")).to_be_visible()
        shoot(customer, f"portal-home{suffix}", full_page=False)
        customer.goto(f"/tickets/{number}")
        expect(customer.get_by_role("img", name="box.png")).to_be_visible()
        shoot(customer, f"ticket-chat{suffix}")

    master = new_context(viewport=DESKTOP).new_page()
    log_in(master, STAFF["master"].email)
    expect(master.get_by_role("img", name="Tickets per day by status")).to_be_visible()
    shoot(master, "dashboard")
    master.goto("/admin/tickets/team/")
    expect(master.get_by_role("link", name=number)).to_be_visible()
    shoot(master, "backoffice-list", full_page=False)
    master.get_by_role("link", name=number).click()
    expect(master.get_by_role("region", name="Timeline")).to_be_visible()
    shoot(master, "ticket-desk")

    for name in (
        "portal-home",
        "portal-home-phone",
        "ticket-chat",
        "ticket-chat-phone",
        "dashboard",
        "backoffice-list",
        "ticket-desk",
    ):
        assert (SCREENSHOTS / f"{name}.png").stat().st_size > 10_000, name

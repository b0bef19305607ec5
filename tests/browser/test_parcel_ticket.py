"""A parcel's journey into a ticket, in Chromium: a customer types their resi on the portal
home (as people do: lower case, with spaces), follows the parcel, files a ticket from the
tracking page (the form comes prefilled); customer service then sees the ticket's
parcel situation as a badge in the Team list, and the badge and the live timeline on
the desk. Each person in their own browser."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from .support import STAFF, TICKET_NUMBER, log_in, make_customer

pytestmark = pytest.mark.browser


def _late_parcel(live_server, email: str) -> str:
    """An economy parcel of the customer's, picked up 9 days ago (4-7 days promised) and
    last seen at a hub yesterday: late. Returns its resi."""
    from sqlalchemy import select

    from backoffice.domain import shipments
    from backoffice.domain.orders import place_order
    from backoffice.extensions import db
    from backoffice.models import Product, TrackingSource, User
    from backoffice.models.base import utcnow

    with live_server.app_context():
        customer = db.session.scalar(select(User).where(User.email == email))
        eco = db.session.scalar(select(Product).where(Product.code == "ECO"))
        order = place_order(
            customer,
            eco,
            origin="Jl. Melati 5, Jakarta Selatan",
            destination="Jl. Braga 10, Bandung",
            weight_kg=Decimal("3"),
            receiver_name="Dewi Lestari",
            receiver_phone="+62 811 222 333",
        )
        now = utcnow()
        shipments.record_events(
            [
                shipments.EventIn(order.resi, "picked_up", now - timedelta(days=9), "Jakarta"),
                shipments.EventIn(order.resi, "at_hub", now - timedelta(days=1), "Hub Cikarang"),
            ],
            source=TrackingSource.IMPORT,
        )
        db.session.commit()
        resi = order.resi
        db.session.remove()
    return resi


def test_a_customer_tracks_a_parcel_and_files_a_ticket_that_the_desk_sees(new_context, live_server):
    account = make_customer(live_server, "Sari Pelanggan")
    resi = _late_parcel(live_server, account.email)

    customer = new_context().new_page()
    log_in(customer, account.email, account.password)
    customer.goto("/")
    typed = f"{resi[:2].lower()} {resi[2:6]} {resi[6:11]} {resi[11:].lower()}"
    customer.get_by_role("textbox", name="Track parcel").fill(typed)
    customer.get_by_role("button", name="Track", exact=True).click()

    # The parcel: its resi, the late mark, where it was last seen.
    result = customer.get_by_role("region", name=resi)
    expect(result).to_be_visible()
    expect(result.get_by_text("Late", exact=True)).to_be_visible()
    expect(result).to_contain_text("Hub Cikarang")
    expect(result).to_contain_text("Picked up")

    # A ticket from the tracking page: the form already knows the parcel.
    result.get_by_role("link", name="A problem with this parcel? Tell us").click()
    expect(customer.get_by_label("Resi / tracking number (optional)")).to_have_value(resi)
    expect(customer.get_by_label("What is it about?")).to_have_value("complaint")
    expect(customer.get_by_label("Subject")).to_have_value(f"About parcel {resi}")
    customer.get_by_label("Your message").fill("Sudah lewat seminggu, paket belum sampai.")
    customer.get_by_role("button", name="Send").click()
    flash = customer.get_by_role("status").filter(has_text="Your ticket")
    expect(flash).to_be_visible()
    number = TICKET_NUMBER.search(flash.inner_text()).group(0)
    # The chat shows the parcel beside the conversation, with its situation.
    parcel = customer.locator("details.tracking-ticket")
    expect(parcel).to_contain_text(resi)
    expect(parcel.locator(".situation-late")).to_have_text(re.compile("Late"))
    expect(parcel).to_contain_text("Hub Cikarang")

    # Late parcels go to Delivery Operations: customer service finds it in Team.
    cs = new_context().new_page()
    log_in(cs, STAFF["cs"].email)
    cs.goto("/admin/tickets/team/")
    cs.get_by_role("textbox", name="Number, subject, customer name or e-mail").fill(number)
    cs.get_by_role("button", name="Search").click()
    row = cs.get_by_role("row").filter(has=cs.get_by_role("link", name=number, exact=True))
    expect(row.locator(".situation-late")).to_have_text(re.compile("Late"))
    row.get_by_role("link", name=number, exact=True).click()
    expect(cs.get_by_role("heading", level=1)).to_contain_text(number)
    expect(cs.locator("#desk-status").locator("..").locator(".situation-late")).to_be_visible()
    timeline = cs.locator("#tracking-timeline")
    expect(timeline).to_contain_text("Hub Cikarang")
    expect(timeline).to_contain_text("Late")

    # A scan arrives while both pages stay open: the desk's poll and the customer's chat
    # redraw the timeline (and the situation) without a reload.
    _scan(live_server, resi, "delivery_failed", "Hub Pasir Koja, Bandung")
    expect(timeline).to_contain_text("Hub Pasir Koja, Bandung", timeout=15_000)
    expect(cs.locator("#desk-situation .situation-failed_delivery")).to_be_visible()
    customer.evaluate("document.dispatchEvent(new Event('visibilitychange'))")  # back to the tab
    expect(parcel).to_contain_text("Hub Pasir Koja, Bandung", timeout=15_000)
    expect(parcel.locator(".situation-failed_delivery")).to_be_visible()


def _scan(live_server, resi: str, kind: str, place: str) -> None:
    """A tracking event from the operations system (the API's way in)."""
    from backoffice.domain import shipments
    from backoffice.extensions import db
    from backoffice.models import TrackingSource
    from backoffice.models.base import utcnow

    with live_server.app_context():
        shipments.record_events(
            [shipments.EventIn(resi, kind, utcnow() - timedelta(minutes=1), place)],
            source=TrackingSource.API,
        )
        db.session.commit()
        db.session.remove()

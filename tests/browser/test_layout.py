"""Issue 9 item 22, measured in Chromium: the dashboard's chart labels are legible on a
laptop and on a phone (with the data table still there), and the portal's menu fits a
390 px phone instead of hiding "My tickets" past the edge."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from .support import STAFF, log_in, make_customer

pytestmark = pytest.mark.browser

LEGIBLE_PX = 11  # the smallest label height we accept (it was about 6 px)
PHONE = {"width": 390, "height": 844}


@pytest.mark.parametrize("viewport", [{"width": 1280, "height": 900}, PHONE], ids=["1280", "390"])
def test_dashboard_chart_labels_are_legible(new_context, viewport):
    page = new_context().new_page()
    log_in(page, STAFF["master"].email)  # on a phone the logout button is in the menu
    page.set_viewport_size(viewport)
    charts = page.locator(".chart svg")
    expect(charts.first).to_be_visible()
    heights = charts.locator("text").evaluate_all(
        "texts => texts.map(t => t.getBoundingClientRect().height)"
    )
    assert heights and min(heights) >= LEGIBLE_PX, heights
    # The numbers stay readable as a table for every chart.
    assert page.locator(".chart details table").count() == charts.count()
    page.locator(".chart details summary").first.click()
    expect(page.locator(".chart details table").first).to_be_visible()


def test_portal_menu_fits_a_phone(new_context, live_server):
    from sqlalchemy import update

    from backoffice.extensions import db
    from backoffice.models import User

    customer = make_customer(live_server)
    page = new_context(viewport=PHONE).new_page()
    log_in(page, customer.email)
    with live_server.app_context():  # Indonesian, whose menu words are the longer ones
        db.session.execute(update(User).where(User.email == customer.email).values(locale="id"))
        db.session.commit()
        db.session.remove()
    page.goto("/tickets")
    expect(page.locator("html")).to_have_attribute("lang", "id")
    menu = page.get_by_role("navigation", name="Menu utama")
    links = menu.get_by_role("link")
    assert links.count() >= 4
    for box in links.evaluate_all(
        "links => links.map(a => { const r = a.getBoundingClientRect();"
        " return [a.innerText, r.left, r.right]; })"
    ):
        text, left, right = box
        assert left >= 0 and right <= PHONE["width"], box  # nothing clipped at the edge
    assert menu.evaluate("n => n.scrollWidth <= n.clientWidth")  # nothing to scroll to
    expect(menu.get_by_role("link", name="Tiket saya")).to_be_in_viewport(ratio=1)

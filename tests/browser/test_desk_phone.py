"""The desk on a phone (issue 13 item 11): at 390 × 844 the Team list and a ticket's desk
scroll only up and down — a long conversation, an attachment, long words and all —
and the reply box, Send and the main actions can be reached and used."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from .support import log_in, make_customer
from .test_desk_keyboard import team_tickets

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
LONG = "Nomor resi saya JKT0123456789012345678901234567890 belum bergerak " + "x" * 120


# What sticks out past the right edge, for the failure message.
WIDE = """() => [...document.querySelectorAll('body *')].filter(e =>
    e.getBoundingClientRect().right > 391).slice(0, 8).map(e =>
    e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right))"""


def _no_sideways_scroll(page) -> None:
    width = page.evaluate("() => document.scrollingElement.scrollWidth")
    assert width <= PHONE["width"], (page.url, width, page.evaluate(WIDE))


def _inside_the_screen(locator) -> None:
    locator.scroll_into_view_if_needed()
    expect(locator).to_be_visible()
    box = locator.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], box


def test_list_and_desk_fit_a_phone_and_the_reply_is_sent(new_context, live_server):
    customer = make_customer(live_server, name="Rina Pelanggan")
    agent, [number] = team_tickets(live_server, customer.email, 1, body=LONG, photo=True)
    page = new_context().new_page()
    log_in(page, agent)  # on a phone the logout button log_in waits for is in the menu
    page.set_viewport_size(PHONE)
    page.goto("/admin/tickets/team/?assignee=me")
    expect(page.get_by_role("link", name=number).first).to_be_visible()
    _no_sideways_scroll(page)

    page.goto(f"/admin/tickets/desk/{number}/?from=/admin/tickets/team/?assignee%3Dme")
    expect(page.locator("#conversation")).to_contain_text("belum bergerak")
    _no_sideways_scroll(page)
    conversation = page.locator("#conversation")
    assert conversation.evaluate("n => n.scrollWidth <= n.clientWidth"), "conversation scrolls"
    for target in (
        page.get_by_label("Message"),
        page.get_by_role("button", name="Send", exact=True),
        page.locator("#finish-button"),
        page.locator("#department"),
    ):
        _inside_the_screen(target)
    box = page.get_by_label("Message")
    box.fill("Sudah kami cek, paket Anda di gudang Cakung.")
    page.get_by_role("button", name="Send", exact=True).click()
    expect(page.get_by_text("Reply sent to the customer.")).to_be_visible()
    expect(page.locator("#conversation")).to_contain_text("gudang Cakung")
    _no_sideways_scroll(page)

"""Presence and the desk's shortcuts in Chromium (issue 13 items 5 and 6): JavaScript
behaviour only (the HTTP side is tests/test_desk_presence.py, test_desk_one_step.py)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from .support import STAFF, log_in, make_customer
from .test_desk_canned import _team_ticket

pytestmark = pytest.mark.browser


def test_a_colleague_typing_shows_on_the_desk_and_shortcuts_stay_out_of_fields(
    new_context, live_server
):
    customer = make_customer(live_server)
    number = _team_ticket(live_server, customer.email)
    other = _team_ticket(live_server, customer.email)
    desk = f"/admin/tickets/desk/{number}/"
    citra = new_context().new_page()
    log_in(citra, STAFF["cs"].email)
    maya = new_context().new_page()
    log_in(maya, STAFF["master"].email)
    # Maya comes from the Team list: j and k walk it.
    maya.goto(f"{desk}?from=/admin/tickets/team/")
    citra.goto(desk)
    box = citra.get_by_label("Message")
    box.focus()
    box.press_sequentially("Baik, saya cek dulu")
    expect(maya.locator("#desk-presence")).to_have_text(
        re.compile(r"Citra Service is replying…"), timeout=15_000
    )
    # Typed letters stay in the box: no shortcut fires inside a field.
    assert box.input_value() == "Baik, saya cek dulu"
    expect(citra).to_have_url(re.compile(re.escape(desk)))
    # Outside a field "?" opens the list of shortcuts, Escape closes it.
    maya.locator("body").press("?")
    expect(maya.get_by_role("dialog", name="Keyboard shortcuts")).to_be_visible()
    maya.keyboard.press("Escape")
    expect(maya.get_by_role("dialog", name="Keyboard shortcuts")).to_be_hidden()
    # "r" puts the caret in the reply box; Escape leaves it; "j" goes to the next ticket.
    maya.keyboard.press("r")
    expect(maya.get_by_label("Message")).to_be_focused()
    maya.keyboard.press("Escape")
    neighbours = [maya.locator("#desk-next"), maya.locator("#desk-prev")]
    key, link = ("j", neighbours[0]) if neighbours[0].count() else ("k", neighbours[1])
    target = link.get_attribute("href")
    maya.keyboard.press(key)
    expect(maya).to_have_url(re.compile(re.escape(target.split("?")[0])))
    assert other  # a second Team ticket exists, so the list has a neighbour

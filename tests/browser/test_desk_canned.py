"""The desk's "/" canned-reply picker in Chromium (issue 13 item 3): JavaScript
behaviour only; what is filled and who may use which is tested over HTTP
(tests/test_canned_replies.py)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from backoffice.domain import tickets
from backoffice.extensions import db
from backoffice.models import Department, TicketKind, User

from .support import STAFF, log_in, make_customer

pytestmark = pytest.mark.browser


def _team_ticket(live_server, customer_email: str) -> str:
    from sqlalchemy import select

    with live_server.app_context():
        customer = db.session.scalar(select(User).where(User.email == customer_email))
        master = db.session.scalar(select(User).where(User.email == STAFF["master"].email))
        ops = db.session.scalar(select(Department).where(Department.code == "OPS"))
        t = tickets.file_ticket(customer, TicketKind.COMPLAINT, "Paket belum sampai", "Halo")
        tickets.dispatch(t, ops, master)
        db.session.commit()
        number = t.number
        db.session.remove()
    return number


def test_slash_and_letters_insert_a_canned_reply_with_the_keyboard(new_context, live_server):
    customer = make_customer(live_server, name="Rina Pelanggan")
    number = _team_ticket(live_server, customer.email)
    page = new_context().new_page()
    log_in(page, STAFF["cs"].email)
    page.goto(f"/admin/tickets/desk/{number}/")
    page.wait_for_load_state()
    box = page.get_by_label("Message")
    box.focus()
    box.press_sequentially("Halo. /terl")
    options = page.get_by_role("listbox", name="Canned replies").get_by_role("option")
    expect(options.first).to_contain_text("/terlambat")
    box.press("Enter")
    expect(options).to_have_count(0)
    # The customer's language is English: the English text, filled from the ticket,
    # replacing "/terl" and keeping what was typed before it.
    expect(box).to_have_value(re.compile(r"^Halo\. Hello Rina Pelanggan,"))
    value = box.input_value()
    assert number in value and "Citra Service" in value and "/terl" not in value
    # No order on this ticket: {resi} and {status_kiriman} stay and are highlighted.
    missing = page.locator("#canned-missing")
    expect(missing).to_be_visible()
    expect(missing.locator("mark")).to_have_text(["{resi}", "{status_kiriman}"])
    assert "{resi}" in value
    # Escape closes the list without inserting anything.
    box.press("End")
    box.press_sequentially(" /rus")
    expect(options.first).to_contain_text("/rusak")
    box.press("Escape")
    expect(options).to_have_count(0)
    assert box.input_value().endswith(" /rus")
    expect(page.locator("#canned_ids")).to_have_value(re.compile(r"^\d+$"))

"""An agent clears a queue with the keyboard only (issue 13, Tests): five tickets, each
opened, answered with a canned reply inserted by "/" and sent with "Send, then next
ticket". The test never clicks and never touches the mouse: every step is a key
press (Tab, Enter, a shortcut or typed text), or typing an address; a step that needed
the mouse could not be done, and the test fails there."""

from __future__ import annotations

import io

import pytest
from playwright.sync_api import Page, expect

from .support import PASSWORD, STAFF, unique_email, write_png

pytestmark = pytest.mark.browser

MAX_TABS = 60  # more presses than this to reach something is not a way to work


def team_tickets(live_server, customer_email: str, n: int, *, body="Halo", photo=False):
    """A fresh customer-service agent (their email) and `n` Team tickets of OPS
    assigned to them (their numbers, in filing order)."""
    import tempfile
    from pathlib import Path

    from sqlalchemy import select

    from backoffice.domain import attachments, tickets
    from backoffice.domain import permissions as perm
    from backoffice.extensions import db
    from backoffice.models import Department, TicketKind, User
    from backoffice.seed import ensure_user

    email = unique_email("agent")
    with live_server.app_context():
        agent = ensure_user(email, PASSWORD, perm.CUSTOMER_SERVICE, name="Sari Agen")
        agent.locale = "en"
        customer = db.session.scalar(select(User).where(User.email == customer_email))
        ops = db.session.scalar(select(Department).where(Department.code == "OPS"))
        master = db.session.scalar(select(User).where(User.email == STAFF["master"].email))
        numbers = []
        for i in range(n):
            files = []
            if photo:
                path = write_png(Path(tempfile.mkdtemp()) / "paket.png")
                files.append(attachments.store(io.BytesIO(path.read_bytes()), "paket.png"))
            t = tickets.file_ticket(
                customer, TicketKind.CRITICISM, f"Kurir kasar ({i + 1})", body, attachments=files
            )
            if t.department_id != ops.id:
                tickets.dispatch(t, ops, master)
            tickets.assign(t, agent, agent)
            numbers.append(t.number)
        db.session.commit()
        db.session.remove()
    return email, numbers


def tab_to(page: Page, selector: str, backwards: bool = False) -> None:
    """Press Tab until the focused element matches `selector`; fail if it never does."""
    key = "Shift+Tab" if backwards else "Tab"
    for _ in range(MAX_TABS):
        if page.evaluate(
            "s => !!document.activeElement && document.activeElement.matches(s)", selector
        ):
            return
        page.keyboard.press(key)
    raise AssertionError(f"{selector} cannot be reached with the keyboard on {page.url}")


def keyboard_log_in(page: Page, email: str) -> None:
    page.goto("/login")
    tab_to(page, "input[name=email]")
    page.keyboard.type(email)
    tab_to(page, "input[name=password]")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url("**/admin/")


def test_an_agent_works_five_tickets_with_the_keyboard_only(new_context, live_server):
    from .support import make_customer

    customer = make_customer(live_server, name="Rina Pelanggan")
    agent, numbers = team_tickets(live_server, customer.email, 5)
    page = new_context().new_page()
    keyboard_log_in(page, agent)
    page.goto("/admin/tickets/team/?assignee=me")
    page.wait_for_load_state()
    # Open the first (most urgent) ticket of the queue: Tab to it, Enter.
    tab_to(page, "table.model-list a[href*='/admin/tickets/desk/']")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    worked = []
    for step in range(5):
        page.wait_for_url("**/admin/tickets/desk/**")
        page.wait_for_load_state()
        number = page.locator("h1").inner_text().split(" · ")[0].strip()
        assert number in numbers and number not in worked, (step, number)
        worked.append(number)
        # "r": into the reply box; "/" and letters: the canned reply, Enter inserts it.
        page.keyboard.press("r")
        expect(page.locator("#body")).to_be_focused()
        page.keyboard.type("/terima")
        suggestions = page.get_by_role("listbox", name="Canned replies").get_by_role("option")
        expect(suggestions.first).to_contain_text("/terima-kasih")
        page.keyboard.press("Enter")
        expect(page.locator("#body")).to_have_value(
            "Hello Rina Pelanggan,\n\nThank you for your suggestion. We have passed it on to "
            "the team concerned; it helps us make carebox better.\n\nRegards,\nSari Agen"
        )
        # Send, then the next ticket: Tab to the button, Enter.
        tab_to(page, "#send-next")
        with page.expect_navigation():
            page.keyboard.press("Enter")
    # After the fifth: back at the list, which is empty now.
    page.wait_for_url("**/admin/tickets/team/**")
    expect(page.get_by_text("That was the last ticket of this list.")).to_be_visible()
    assert sorted(worked) == sorted(numbers)
    _all_answered(live_server, numbers)


def _all_answered(live_server, numbers) -> None:
    from sqlalchemy import select

    from backoffice.extensions import db
    from backoffice.models import Ticket, TicketMessage, TicketStatus

    with live_server.app_context():
        for number in numbers:
            ticket = db.session.scalar(select(Ticket).where(Ticket.number == number))
            last = db.session.scalars(
                select(TicketMessage)
                .where(TicketMessage.ticket_id == ticket.id)
                .order_by(TicketMessage.id.desc())
            ).first()
            assert ticket.status is TicketStatus.RESPONDED, number
            assert last.from_staff and "Thank you for your suggestion" in last.body, number
        db.session.remove()

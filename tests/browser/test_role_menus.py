"""docs/architecture.md §1's role table as a test: each role's menu shows exactly its lists, and
every other list's URL is refused.

The menu is read the way a person reads it: sign in, open each dropdown of the
back office's main menu, and note every link that is then visible.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from .support import STAFF, log_in, log_out, make_customer

pytestmark = pytest.mark.browser

# The back-office lists of docs/architecture.md §1 (URLs of §5): their URL and menu entry.
DOCUMENTED_LISTS = {
    "/admin/": "Home",
    "/admin/tickets/progress/": "Progress",
    "/admin/tickets/team/": "Team",
    "/admin/tickets/responded/": "Responded",
    "/admin/tickets/finished/": "Finished",
    "/admin/reports/": "Reports",
    "/admin/staff/": "Staff users",
    "/admin/departments/": "Departments",
    "/admin/routing_rules/": "Routing rules",
    "/admin/faq_categories/": "FAQ categories",
    "/admin/faq/": "FAQ entries",
    "/admin/products/": "Products and services",
    "/admin/announcements/": "Announcements",
    "/admin/customers/": "Customers",
    "/admin/orders/": "Orders",
}
# The customer's own lists on the portal: staff accounts are refused there.
CUSTOMER_LISTS = {
    "/tickets": "My tickets",
    "/tickets/new": "Contact us",
    "/orders": "My orders",
    "/orders/new": "Send a parcel",
}

# Beside the lists, every staff role's menu links its own notifications (with the
# unread count as a badge, which the menu's reading below leaves out).
PERSONAL = {"/admin/notifications/": "Notifications"}

# The master admin sees every list; the other roles exactly these.
ROLE_TABLE = {
    "cs": {
        "/admin/",
        "/admin/tickets/team/",
        "/admin/tickets/responded/",
        "/admin/tickets/finished/",
        "/admin/orders/",
        "/admin/customers/",
        "/admin/canned-replies/",
        "/admin/mail-review/",
    },
    "ops": {"/admin/", "/admin/tickets/team/", "/admin/canned-replies/"},
}


@pytest.fixture(scope="module")
def all_lists(live_server) -> dict[str, str]:
    """{URL: English menu entry} of every list the back office registers for its menu.

    Read from the app, so a list added later is covered at once: the master admin
    must see it, and every other role must be refused it until the table says otherwise.
    """
    from flask import url_for
    from flask_babel import force_locale

    admin = live_server.app.extensions["admin"][0]
    with live_server.app.test_request_context(), force_locale("en"):
        lists = {
            url_for(f"{view.endpoint}.{view._default_view}"): str(view.name)
            for view in admin._views
            if view.is_visible()
        }
    for url, name in DOCUMENTED_LISTS.items():
        assert lists.get(url) == name, f"docs/architecture.md §1 names {name} at {url}"
    return lists


def backoffice_menu(page: Page) -> dict[str, str]:
    """{href: text} of every entry of the back office's main menu, dropdowns opened."""
    page.wait_for_load_state()  # the dropdowns open only once the page's scripts ran
    menu = page.get_by_role("list", name="Main menu")
    entries: dict[str, str] = {}

    def links() -> list[tuple[str, str]]:
        """(href, text) of the menu's links a person can see now, read in one go."""
        return menu.get_by_role("link").evaluate_all(
            "links => links.map(a => [a.getAttribute('href') || '', a.innerText.trim()])"
        )

    def note_visible_entries():
        # A dropdown's toggle is a link that goes nowhere (href="javascript:void(0)").
        entries.update(
            (href, PERSONAL.get(href, text))
            for href, text in links()
            if not href.startswith("javascript:")
        )

    note_visible_entries()
    categories = [text for href, text in links() if href.startswith("javascript:")]
    for name in categories:
        toggle = menu.get_by_role("link", name=name, exact=True)
        toggle.click()
        expect(toggle.locator("xpath=following-sibling::ul")).to_be_visible()
        note_visible_entries()
    return entries


def refused(page: Page, url: str) -> None:
    response = page.goto(url)
    assert response is not None and response.status == 403, (url, response and response.status)
    expect(page.get_by_role("heading", name="Access denied")).to_be_visible()


@pytest.mark.parametrize("role", ["master", "cs", "ops"])
def test_staff_menu_shows_exactly_the_lists_of_the_role(new_context, all_lists, role):
    mine = set(all_lists) if role == "master" else ROLE_TABLE[role]
    page = new_context().new_page()
    log_in(page, STAFF[role].email)
    assert page.url.endswith("/admin/")

    assert backoffice_menu(page) == {url: all_lists[url] for url in mine} | PERSONAL
    assert (
        page.get_by_role("list", name="Main menu").get_by_role("link", name="Notifications").count()
        == 1
    )

    for url in sorted(mine):
        response = page.goto(url)
        assert response.status == 200, url
        expect(page.get_by_role("list", name="Main menu")).to_be_visible()
    for url in sorted(set(all_lists) - mine):
        refused(page, url)
    for url in CUSTOMER_LISTS:
        refused(page, url)
    expect(page.get_by_role("link", name="Go to the back office")).to_be_visible()
    log_out(page)


def test_customer_menu_is_the_portal_and_the_back_office_is_refused(
    new_context, live_server, all_lists
):
    person = make_customer(live_server, name="Wulan Customer")
    page = new_context().new_page()
    log_in(page, person.email)
    assert not page.url.rstrip("/").endswith("/admin")

    nav = page.get_by_role("navigation", name="Main menu")
    links = dict(
        nav.get_by_role("link").evaluate_all(
            "links => links.map(a => [a.getAttribute('href'), a.innerText.trim()])"
        )
    )
    assert links == {
        "/track": "Track parcel",
        "/faq": "Help & FAQ",
        "/products": "Services",
        "/orders": "My orders",
        "/tickets": "My tickets",
    }
    header = page.get_by_role("banner")
    expect(header.get_by_role("link", name="Wulan Customer")).to_have_attribute("href", "/account")
    expect(header.get_by_role("button", name="Log out")).to_be_visible()

    for url in CUSTOMER_LISTS:
        assert page.goto(url).status == 200, url
        expect(page.get_by_role("navigation", name="Main menu")).to_be_visible()
    for url in all_lists:
        refused(page, url)
    assert page.get_by_role("list", name="Main menu").count() == 0  # no back-office menu
    log_out(page)


def _widest_tickets(live_server, customer_email: str) -> None:
    """A ticket in each list with the widest content a list shows: an order number,
    the longest department name, a priority badge, a breached SLA, an assignee."""
    from datetime import timedelta

    from sqlalchemy import func, select

    from backoffice.domain import orders
    from backoffice.domain import tickets as lifecycle
    from backoffice.extensions import db
    from backoffice.models import Department, Priority, Product, ProductKind, TicketKind, User
    from backoffice.models.base import utcnow

    with live_server.app_context():
        users = {u.email: u for u in db.session.scalars(select(User))}
        customer = users[customer_email]
        master, cs = users[STAFF["master"].email], users[STAFF["cs"].email]
        widest = db.session.scalars(
            select(Department).order_by(func.length(Department.name_en).desc())
        ).first()
        service = db.session.scalars(
            select(Product).where(Product.kind == ProductKind.SERVICE, Product.active)
        ).first()
        filed = utcnow() - timedelta(days=20)
        for step in range(4):
            order = orders.place_order(
                customer, service, origin="Jakarta Selatan", destination="Surabaya", weight_kg=2
            )
            ticket = lifecycle.file_ticket(
                customer,
                TicketKind.COMPLAINT,
                "Paket belum sampai padahal status terkirim",
                "Mohon dicek.",
                order=order,
                now=filed,
            )
            if step == 0:
                continue  # Progress
            lifecycle.dispatch(ticket, widest, master, now=filed)
            lifecycle.set_priority(ticket, Priority.URGENT, master, now=filed)
            lifecycle.assign(ticket, cs, master, now=filed)
            if step >= 2:
                lifecycle.post_message(ticket, cs, "Sedang kami cek.", now=filed)  # Responded
            if step == 3:
                lifecycle.finish(ticket, cs, now=filed)
        db.session.commit()
        db.session.remove()


def test_ticket_lists_fit_a_laptop_screen(new_context, live_server):
    """Eleven columns and a breached SLA still fit 1280 px: no sideways scrolling."""
    person = make_customer(live_server, name="Bernadetta Kusumawardhani")
    _widest_tickets(live_server, person.email)
    page = new_context(viewport={"width": 1280, "height": 800}).new_page()
    log_in(page, STAFF["master"].email)
    for status in ("progress", "team", "responded", "finished"):
        page.goto(f"/admin/tickets/{status}/")
        expect(page.get_by_text("Bernadetta Kusumawardhani").first).to_be_visible()
        # The list sits in a scrolling box: it must not need to scroll, nor the page.
        widths = page.evaluate(
            """() => {
                const box = document.querySelector('table.model-list').parentElement;
                return [document.documentElement.scrollWidth, box.scrollWidth, box.clientWidth];
            }"""
        )
        assert widths[0] <= 1280 and widths[1] <= widths[2], (status, widths)
    log_out(page)

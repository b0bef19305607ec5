"""The journey of a ticket across every role, in Chromium, each person in their own browser.

A new customer registers, orders a service, complains about that order with a
photo and sees the complaint listed; the master admin finds it in Progress and
dispatches it; the department admin sees it in Team and adds an internal note;
customer service replies; the customer, who never left the ticket page, sees
the reply arrive and answers, and never sees the note; customer service
finishes it; the customer rates it; the master admin exports the report and
finds the ticket in it. Everyone logs out.
"""

from __future__ import annotations

import csv
import re

import pytest
from playwright.sync_api import Page, expect

from .support import STAFF, TICKET_NUMBER, log_in, log_out, make_customer, unique_email, write_png

pytestmark = pytest.mark.browser


# --- steps that people repeat -------------------------------------------------------------


def open_from_list(page: Page, list_url: str, number: str) -> None:
    """Find a ticket in a back-office list with the list's search box, and open its desk."""
    page.goto(list_url)
    page.get_by_role("textbox", name="Number, subject, customer name or e-mail").fill(number)
    page.get_by_role("button", name="Search").click()
    page.get_by_role("link", name=number, exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(number)


def not_in_list(page: Page, list_url: str, number: str) -> None:
    page.goto(list_url)
    page.get_by_role("textbox", name="Number, subject, customer name or e-mail").fill(number)
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_role("link", name=number, exact=True)).to_have_count(0)


def post_on_desk(page: Page, text: str, *, as_: str, done: str) -> None:
    """Write on the desk's message form as a public reply or an internal note."""
    page.get_by_label("Message").fill(text)
    page.get_by_role("radio", name=as_).check()
    page.get_by_role("button", name="Send", exact=True).click()
    expect(page.get_by_role("status").filter(has_text=done)).to_be_visible()
    expect(page.get_by_text(text)).to_be_visible()


def status_badge(page: Page):
    """The customer's ticket page states the ticket's status next to its subject."""
    return page.get_by_role("main").get_by_text(
        re.compile(r"^(Received|Being handled by our team|Answered: waiting for you|Closed)$")
    )


def confirmation_link(live_server, email: str) -> str:
    """The link of the welcome email the outbox holds for `email` (what the customer opens)."""
    from sqlalchemy import select

    from backoffice.extensions import db
    from backoffice.models import OutboxEmail

    with live_server.app_context():
        bodies = db.session.scalars(
            select(OutboxEmail.body_text).where(OutboxEmail.recipient.contains(email))
        ).all()
        db.session.remove()
    return re.search(r"https?://\S+/confirm/\S+", bodies[-1]).group(0)


def register(page: Page, live_server, name: str, email: str, password: str) -> None:
    page.goto("/")
    page.get_by_role("link", name="Register").click()
    page.get_by_label("Email").fill(email)
    page.get_by_label("Full name").fill(name)
    page.get_by_label("Phone (optional)").fill("+62 812 3456 7890")
    page.get_by_label("Password", exact=True).fill(password)
    repeat = page.get_by_label("Repeat the password")
    if repeat.count():
        repeat.fill(password)
    page.get_by_role("button", name="Create my account").click()
    # The account opens once its address is confirmed from the welcome email.
    expect(page.get_by_role("status").filter(has_text=email)).to_be_visible()
    page.goto(confirmation_link(live_server, email))
    expect(page.get_by_role("status").filter(has_text="confirmed")).to_be_visible()
    log_in(page, email, password)
    expect(page.get_by_role("link", name=name)).to_be_visible()  # the account link


def order_service(page: Page) -> str:
    """Order the regular service; returns the order number."""
    page.get_by_role("link", name="Send a parcel").click()
    page.get_by_label("Service").select_option("REG")
    page.get_by_label("Pick-up address (origin)").fill("Jl. Melati 5, Jakarta Selatan")
    page.get_by_label("Delivery address (destination)").fill("Jl. Braga 10, Bandung")
    page.get_by_label("Weight (kg)").fill("2,5")
    page.get_by_label("Receiver's name").fill("Dewi Lestari")
    page.get_by_label("Receiver's phone").fill("+62 811 222 333")
    page.get_by_role("button", name="Calculate price").click()
    expect(page.get_by_text(re.compile(r"^Price: "))).to_be_visible()
    page.get_by_role("button", name="Place order").click()
    heading = page.get_by_role("heading", level=1, name=re.compile(r"^Order ORD-"))
    expect(heading).to_be_visible()
    return TICKET_NUMBER.search(heading.inner_text()).group(0)


# --- the journey -----------------------------------------------------------------------------


def test_a_complaint_travels_through_every_role(new_context, live_server, tmp_path):
    photo = write_png(tmp_path / "damaged-parcel.png")
    customer_name, email, password = "Rina Wijaya", unique_email("rina"), "rina-secret-2026"

    # The customer registers and orders a service.
    customer = new_context().new_page()
    # The page's own clock: lets the test say "a while later" to the chat's polling
    # (the poll interval grows to 30 s while nothing changes) instead of sleeping.
    customer.clock.install()
    register(customer, live_server, customer_name, email, password)
    order_number = order_service(customer)

    # A complaint about that order, with a photo, from the order's own page.
    customer.get_by_role("link", name="A problem with this order? Tell us").click()
    expect(customer.get_by_label("What is it about?")).to_have_value("complaint")
    expect(customer.get_by_label("Order number (optional)")).to_have_value(order_number)
    customer.get_by_label("Subject").fill("Paket rusak saat diterima")
    customer.get_by_label("Your message").fill("The box arrived crushed and wet. Photo attached.")
    customer.get_by_label(re.compile(r"^Attachment")).set_input_files(photo)
    customer.get_by_role("button", name="Send").click()
    flash = customer.get_by_role("status").filter(has_text="Your ticket")
    expect(flash).to_be_visible()
    number = TICKET_NUMBER.search(flash.inner_text()).group(0)
    expect(status_badge(customer)).to_have_text("Received")
    photo_shown = customer.get_by_role("img", name="damaged-parcel.png")
    expect(photo_shown).to_be_visible()
    # decode() resolves once the picture has arrived: "visible" alone can come first on a
    # busy machine (a lazy image's box is laid out before its bytes are in).
    assert photo_shown.evaluate("img => img.decode().then(() => img.naturalWidth)") == 48

    # ... and sees it listed, then goes back to it and stays there.
    customer.get_by_role("navigation", name="Main menu").get_by_role(
        "link", name="My tickets"
    ).click()
    customer.get_by_role("link", name=re.compile("Paket rusak saat diterima")).click()
    expect(customer.get_by_role("heading", level=1)).to_have_text("Paket rusak saat diterima")
    expect(customer.get_by_role("link", name=f"Order {order_number}")).to_be_visible()
    customer.evaluate("window.stillTheSamePage = true")  # a reload would forget it

    # The master admin finds it in Progress and dispatches it to Delivery Operations.
    master = new_context().new_page()
    log_in(master, STAFF["master"].email)
    open_from_list(master, "/admin/tickets/progress/", number)
    # (exact: the thumbnail beside it is a second link, named "Picture: damaged-parcel.png")
    photo_link = master.get_by_role("link", name="damaged-parcel.png", exact=True)
    expect(photo_link).to_be_visible()
    expect(master.get_by_role("listitem").filter(has=photo_link)).to_contain_text("(1 KB)")
    expect(master.get_by_role("region", name="Linked order")).to_contain_text(order_number)
    master.get_by_label("Dispatch to a department").select_option(label="OPS — Delivery Operations")
    master.get_by_role("button", name="Dispatch").click()
    sent = master.get_by_role("status").filter(has_text="Ticket sent to the department.")
    expect(sent).to_be_visible()
    not_in_list(master, "/admin/tickets/progress/", number)

    # The department admin sees it in Team and adds an internal note.
    ops = new_context().new_page()
    log_in(ops, STAFF["ops"].email)
    open_from_list(ops, "/admin/tickets/team/", number)
    note = "Internal: the Bandung hub reported water damage on pallet 7."
    post_on_desk(ops, note, as_="Internal note", done="Internal note added.")

    # Customer service replies.
    cs = new_context().new_page()
    log_in(cs, STAFF["cs"].email)
    open_from_list(cs, "/admin/tickets/team/", number)
    expect(cs.get_by_text(note)).to_be_visible()  # staff read the note
    reply = "We are sorry! A courier will collect the box tomorrow for a full refund."
    post_on_desk(cs, reply, as_="Public reply", done="Reply sent to the customer.")

    # The customer, still on the ticket page, sees the reply arrive without reloading.
    customer.clock.fast_forward("00:31")  # half a minute later: the next poll is due
    conversation = customer.get_by_role("region", name="Conversation")
    expect(conversation.get_by_text(reply)).to_be_visible()
    expect(status_badge(customer)).to_have_text("Answered: waiting for you")
    assert note not in customer.content()

    # ... and answers; the answer joins the conversation, still without a reload.
    answer = "Thank you, I will be home after 10:00."
    customer.get_by_label("Your reply").fill(answer)
    customer.get_by_role("button", name="Send", exact=True).click()
    expect(conversation.get_by_text(answer)).to_be_visible()
    expect(customer.get_by_label("Your reply")).to_have_value("")
    assert customer.evaluate("window.stillTheSamePage") is True, "the page was reloaded"

    # Customer service sees the answer and finishes the ticket.
    cs.reload()
    expect(cs.get_by_text(answer)).to_be_visible()
    cs.once("dialog", lambda dialog: dialog.accept())  # "Finish this ticket?"
    cs.get_by_role("button", name="Finish", exact=True).click()
    expect(cs.get_by_role("status").filter(has_text="Ticket finished.")).to_be_visible()

    # The customer's page notices, they reload it, and rate the help.
    customer.clock.fast_forward("00:31")
    expect(status_badge(customer)).to_have_text("Closed")
    customer.get_by_role("link", name="Reload the page").click()
    customer.get_by_role("radio", name="5").check()
    customer.get_by_label("Comment (optional)").fill("Quick and kind, thank you!")
    customer.get_by_role("button", name="Send rating").click()
    expect(customer.get_by_text("Thank you for rating our help!")).to_be_visible()
    expect(customer.get_by_text("Your rating: 5 of 5")).to_be_visible()
    page_text = customer.content()
    assert note not in page_text and "pallet 7" not in page_text

    # The master admin exports the report and finds the ticket, finished and rated.
    master.get_by_role("link", name="Reports").click()
    master.get_by_label("Number, subject, customer name or e-mail").fill(number)
    master.get_by_role("button", name="Show").click()
    expect(master.get_by_text("1 tickets match.")).to_be_visible()
    with master.expect_download() as download:
        master.get_by_role("link", name="Export CSV").click()
    path = download.value.path()
    rows = list(csv.reader(path.read_text(encoding="utf-8-sig").splitlines()))
    found = [row for row in rows if row and row[0] == number]
    assert len(found) == 1, rows
    header = rows[0]
    row = dict(zip(header, found[0], strict=True))
    assert (
        row["Status code"] == "finished"
        and row["Status"] == "Ticket Finish"
        and row["Rating"] == "5"
    )
    assert row["Department"] == "OPS" and row["Kind code"] == "complaint"
    assert note not in path.read_text(encoding="utf-8-sig")

    # Everyone logs out.
    for person in (customer, master, ops, cs):
        log_out(person)
    customer.goto(f"/tickets/{number}")
    expect(customer.get_by_role("heading", name="Log in")).to_be_visible()


def test_a_routing_rule_dispatches_a_question_on_its_own(new_context, live_server):
    """Seed rule: questions go to Customer Service. Nobody has to dispatch them."""
    person = make_customer(live_server, name="Agus Santoso")
    customer = new_context().new_page()
    log_in(customer, person.email)
    customer.get_by_role("contentinfo").get_by_role("link", name="Contact us").click()
    customer.get_by_label("What is it about?").select_option("question")
    customer.get_by_label("Subject").fill("Jam buka gerai Depok")
    customer.get_by_label("Your message").fill("Until when is the Depok outlet open on Sundays?")
    customer.get_by_role("button", name="Send").click()
    number = TICKET_NUMBER.search(
        customer.get_by_role("status").filter(has_text="Your ticket").inner_text()
    ).group(0)
    expect(status_badge(customer)).to_have_text("Being handled by our team")

    master = new_context().new_page()
    log_in(master, STAFF["master"].email)
    not_in_list(master, "/admin/tickets/progress/", number)
    open_from_list(master, "/admin/tickets/team/", number)
    expect(master.get_by_text("Customer Service", exact=True)).to_be_visible()
    timeline = master.get_by_role("region", name="Timeline")
    expect(timeline).to_contain_text("Routed by rule")
    expect(timeline).to_contain_text("question → CS")

    # Customer Service's department admin has it in Team; Delivery Operations' has not.
    csdept = new_context().new_page()
    log_in(csdept, STAFF["csdept"].email)
    open_from_list(csdept, "/admin/tickets/team/", number)
    ops = new_context().new_page()
    log_in(ops, STAFF["ops"].email)
    not_in_list(ops, "/admin/tickets/team/", number)
    assert ops.goto(f"/admin/tickets/desk/{number}/").status == 404

    for page in (customer, master, csdept, ops):
        log_out(page)


def test_the_language_switch_turns_a_page_indonesian_to_english_and_back(new_context, live_server):
    """Indonesian is the default; the switch changes the page, and the choice sticks."""
    from flask_babel import force_locale
    from flask_babel import gettext as _

    with live_server.app.test_request_context():
        with force_locale("id"):
            nav_id = _("My tickets")
        with force_locale("en"):
            nav_en = _("My tickets")

    page = new_context(locale="id-ID").new_page()
    page.goto("/products")
    html = page.locator("html")
    expect(html).to_have_attribute("lang", "id")
    expect(page.get_by_role("heading", name="Reguler", exact=True)).to_be_visible()
    expect(page.get_by_role("link", name=nav_id, exact=True).first).to_be_visible()
    expect(page.get_by_role("button", name="ID")).to_have_attribute("aria-pressed", "true")

    if nav_id != nav_en:  # with the Indonesian catalogue compiled (`make translations`)
        expect(page.get_by_role("link", name=nav_en, exact=True)).to_have_count(0)

    page.get_by_role("button", name="EN").click()
    expect(html).to_have_attribute("lang", "en")
    assert page.url.endswith("/products")
    expect(page.get_by_role("heading", name="Regular", exact=True)).to_be_visible()
    expect(page.get_by_role("heading", name="Reguler", exact=True)).to_have_count(0)
    expect(page.get_by_role("link", name=nav_en, exact=True).first).to_be_visible()
    expect(page.get_by_role("button", name="EN")).to_have_attribute("aria-pressed", "true")
    page.goto("/faq")  # the choice is remembered from page to page
    expect(html).to_have_attribute("lang", "en")
    page.get_by_role("navigation", name="Main menu").get_by_role("link", name="Services").click()
    expect(page.get_by_role("heading", name="Regular", exact=True)).to_be_visible()

    page.get_by_role("button", name="ID").click()
    expect(html).to_have_attribute("lang", "id")
    expect(page.get_by_role("heading", name="Reguler", exact=True)).to_be_visible()
    expect(page.get_by_role("link", name=nav_id, exact=True).first).to_be_visible()
    expect(page.get_by_role("button", name="ID")).to_have_attribute("aria-pressed", "true")

"""What a user wrote, where the new features show it: escaped in HTML (pages and
emails), plain in plain text (not escaped twice), neutralised in CSV exports.

One hostile text carries the three attacks: a formula first (a spreadsheet would run
it), then a script tag and an attribute break-out with an onerror image.
"""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import select

from backoffice.domain import autofinish, staff_notices, tickets
from backoffice.domain import permissions as perm
from backoffice.domain.orders import place_order
from backoffice.domain.shipments import EventIn, record_events
from backoffice.models import OutboxEmail, Product, TicketKind, TrackingSource
from backoffice.models.base import utcnow

from .security_support import as_sent

HOSTILE = '=HYPERLINK("http://x.test/","<script>alert(1)</script>\\"><img src=x onerror=alert(2)>")'
RAW = ("<script>", "<img src=x", "onerror=alert(2)>")  # never as markup in HTML


def assert_escaped_html(html: str, where: str) -> None:
    for raw in RAW:
        assert raw not in html, (where, raw)
    assert "&amp;lt;" not in html, where  # escaped once, not twice


def assert_plain_text(text: str, where: str) -> None:
    assert "&lt;" not in text and "&#34;" not in text and "&quot;" not in text, where


def _mails(db, *emails: str) -> list[OutboxEmail]:
    db.session.commit()
    rows = db.session.scalars(select(OutboxEmail).order_by(OutboxEmail.id))
    return as_sent(m for m in rows if any(e in m.recipient for e in emails))


def _wib(hours_ago: float = 1) -> str:
    moment = utcnow() + timedelta(hours=7) - timedelta(hours=hours_ago)
    return moment.replace(microsecond=0).isoformat() + "+07:00"


def make_the_new_emails(db, make, client) -> list[OutboxEmail]:
    """The order confirmation, a shipment update, a merge notice, an auto-finish warning
    and an agent's digest, each carrying HOSTILE where a user's text goes (Indonesian)."""
    from .test_autofinish import WARN, _waiting

    # The order confirmation and the shipment update (origin, tracking location, name).
    owner = make.user(perm.CUSTOMER, name=HOSTILE, locale="id")
    owner.shipment_updates = True
    product = db.session.scalar(select(Product).where(Product.code == "REG"))
    order = place_order(
        owner,
        product,
        origin=HOSTILE,
        destination=HOSTILE,
        weight_kg=Decimal("1"),
        receiver_name=HOSTILE,
    )
    db.session.commit()
    event = EventIn(
        resi=order.resi, event="out_for_delivery", occurred_at=_wib(), location=HOSTILE[:120]
    )
    record_events([event], source=TrackingSource.API)
    db.session.commit()
    track = client.get(f"/track/{order.resi}").get_data(as_text=True)
    assert "HYPERLINK" in track  # the location, as the courier sent it
    assert_escaped_html(track, "tracking page")
    # The merge notice: both subjects are the customer's.
    first = tickets.file_ticket(owner, TicketKind.COMPLAINT, HOSTILE[:150], HOSTILE)
    second = tickets.file_ticket(owner, TicketKind.COMPLAINT, HOSTILE[:150], HOSTILE)
    master = make._master()
    tickets.merge(second, first, master)
    # The auto-finish warning (the ticket's subject).
    waiting, waiter, _agent = _waiting(db, make, name=HOSTILE)
    waiting.subject = HOSTILE[:150]
    db.session.commit()
    assert autofinish.run(now=WARN).warned == 1
    # The agent's digest (the ticket's subject, the agent's own name).
    agent = make.user(perm.ADMIN_DEPARTMENT, department="OPS", name=HOSTILE, locale="id")
    agent.notice_digest = True
    hostile = make.ticket("progress", subject=HOSTILE[:150])
    tickets.dispatch(hostile, make.department("OPS"), master)
    db.session.commit()
    assert staff_notices.send_digests() >= 1

    mails = _mails(db, owner.email, waiter.email, agent.email)
    subjects = [m.subject for m in mails]
    # The confirmation, the shipment update, the merge notice, the warning, the digest.
    for mark in (order.number, f"[{order.resi}]", f"[{second.number}]", f"[{waiting.number}]"):
        assert any(mark in s for s in subjects), (mark, subjects)
    assert any(agent.email in m.recipient and "(1)" in m.subject for m in mails), subjects
    return mails


def test_the_new_emails_escape_what_users_wrote(db, make, client):
    mails = make_the_new_emails(db, make, client)
    for mail in mails:
        assert_escaped_html(mail.body_html, mail.subject)
        assert_plain_text(mail.body_text, mail.subject)
        assert "\n" not in mail.subject and "\r" not in mail.subject
    # The text each one was about reached the customer, as text.
    assert any("onerror=alert(2)" in m.body_text for m in mails)


def _csv(resp) -> list[list[str]]:
    assert resp.status_code == 200, resp.status_code
    return list(csv.reader(io.StringIO(resp.get_data().decode("utf-8-sig"))))


def _formula_cells(rows: list[list[str]]) -> list[str]:
    return [c for r in rows for c in r if c[:1] in ("=", "+", "@", "\t", "\r")]


def _agent_with_work(make, db):
    """An agent named HOSTILE who answered and finished a ticket of a HOSTILE customer."""
    agent = make.user(perm.CUSTOMER_SERVICE, name=HOSTILE)
    customer = make.user(perm.CUSTOMER, name=HOSTILE)
    ticket = make.ticket("team", customer=customer, subject=HOSTILE[:150])
    tickets.assign(ticket, agent, agent)
    tickets.post_message(ticket, agent, HOSTILE)
    tickets.finish(ticket, agent)
    db.session.commit()
    return agent, ticket


def test_the_sla_and_agent_exports_neutralise_formulas(login_as, make, db):
    _agent_with_work(make, db)
    b, _ = login_as(perm.MASTER_ADMIN)
    for url in ("/admin/reports/sla.csv", "/admin/agent-report/agents.csv"):
        rows = _csv(b.get(url))
        assert any(HOSTILE[1:] in c for r in rows for c in r), (url, rows)  # the name is there
        assert _formula_cells(rows) == [], url


def test_the_new_staff_pages_escape_what_users_wrote(login_as, make, db):
    agent, ticket = _agent_with_work(make, db)
    ops, _ = login_as(perm.ADMIN_DEPARTMENT, department="OPS")
    notice = make.ticket("progress", subject=HOSTILE[:150])
    tickets.dispatch(notice, make.department("OPS"), make._master())
    db.session.commit()
    page = ops.get("/admin/notifications/").get_data(as_text=True)
    assert "HYPERLINK" in page
    assert_escaped_html(page, "notifications")
    b, _ = login_as(perm.MASTER_ADMIN)
    for url in (
        "/admin/reports/sla/",
        "/admin/agent-report/",
        f"/admin/tickets/desk/{ticket.number}/",
        "/admin/tickets/finished/",
        "/admin/",
    ):
        page = b.get(url).get_data(as_text=True)
        assert_escaped_html(page, url)
    # The desk's poll sends its messages as HTML the page inserts as it is.
    poll = b.get(f"/admin/tickets/desk/{ticket.number}/poll?after=0").get_json()
    assert poll["messages"] and "HYPERLINK" in poll["messages"][-1]["html"]
    for message in poll["messages"]:
        assert_escaped_html(message["html"], "desk poll")


def test_a_merged_ticket_escapes_both_subjects_on_desk_and_portal(login_as, make, db):
    from .portal_support import customer

    c, owner = customer(login_as, name=HOSTILE)
    first = tickets.file_ticket(owner, TicketKind.COMPLAINT, HOSTILE[:150], HOSTILE)
    second = tickets.file_ticket(owner, TicketKind.COMPLAINT, HOSTILE[:150] + "!", HOSTILE)
    tickets.merge(second, first, make._master())
    db.session.commit()
    b, _ = login_as(perm.MASTER_ADMIN)
    for browser, url in (
        (b, f"/admin/tickets/desk/{first.number}/"),
        (b, f"/admin/tickets/desk/{second.number}/"),
        (b, "/admin/tickets/finished/"),
        (c, "/tickets"),
        (c, f"/tickets/{first.number}"),
        (c, f"/tickets/{second.number}"),
    ):
        resp = browser.get(url)
        if resp.status_code in (301, 302, 303):
            resp = browser.get(resp.headers["Location"])
        assert resp.status_code == 200, (url, resp.status_code)
        assert_escaped_html(resp.get_data(as_text=True), url)


def test_whatsapp_template_parameters_are_text_everywhere(whatsapp, client, db, login_as):
    from backoffice.channels.whatsapp_out import send_pending

    from .test_admin_desk import desk, version_on
    from .test_whatsapp_outbound import customer_writes, rows
    from .test_whatsapp_templates import add_template

    ticket = customer_writes(client, db, hours_ago=30, name=HOSTILE[:60])
    row = add_template(db, body="Halo {{2}}, tiket {{1}}: {{3}}")
    b, _staff = login_as(perm.CUSTOMER_SERVICE)
    page = b.get(desk(ticket.number) + f"?wa_template={row.id}").get_data(as_text=True)
    assert_escaped_html(page, "picker prefilled with the customer's name")
    values = re.findall(r'id="wa-param-\d" value="([^"]*)"', page)
    assert "&lt;script&gt;" in values[1]  # the name, escaped inside the attribute
    resp = b.post(
        desk(ticket.number) + "whatsapp-template",
        {
            "expected_version": version_on(page),
            "template_id": str(row.id),
            "params-0": ticket.number,
            "params-1": HOSTILE[:60],
            "params-2": HOSTILE,
        },
        form_url=desk(ticket.number),
    )
    assert resp.status_code == 302
    (queued,) = rows()
    assert json.loads(queued.template_params)[2] == HOSTILE  # sent as text, unchanged
    page = b.get(desk(ticket.number)).get_data(as_text=True)
    assert_escaped_html(page, "desk with the sent template")
    assert send_pending().sent == 1
    (sent,) = whatsapp.sends()
    assert sent["template"]["components"][0]["parameters"][2] == {"type": "text", "text": HOSTILE}


def test_the_template_admin_list_and_form_escape_the_approved_text(login_as, db):
    from .test_whatsapp_templates import URL, add_template

    row = add_template(db, body=HOSTILE, params=("nomor_tiket",))
    b, _ = login_as(perm.MASTER_ADMIN)
    for url in (URL, f"{URL}edit/?id={row.id}"):
        assert_escaped_html(b.get(url).get_data(as_text=True), url)

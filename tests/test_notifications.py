"""Ticket and order notifications: who receives what, escaped, in their language, by SMTP."""

from __future__ import annotations

import json
import re
import time

import pytest
from itsdangerous.timed import TimestampSigner
from sqlalchemy import select

from backoffice.channels import mailer
from backoffice.domain import notifications, tickets
from backoffice.domain import permissions as perm
from backoffice.domain.orders import change_status
from backoffice.models import OrderStatus, OutboxEmail, TicketKind, TicketStatus

from .smtp_server import html_of, running_smtp, text_of

BASE = "http://127.0.0.1:5000"
EN = {"Accept-Language": "en"}
NASTY = 'Paket <script>alert("x")</script> & "rusak"'


@pytest.fixture
def smtp(app, monkeypatch):
    yield from running_smtp(app, monkeypatch)


def deliver(db, smtp):
    """Commit, then let the outbox worker deliver everything to the loopback server."""
    db.session.commit()
    while mailer.send_pending().claimed:
        pass
    return smtp.messages


def outbox(db) -> list[OutboxEmail]:
    db.session.flush()
    return list(db.session.scalars(select(OutboxEmail).order_by(OutboxEmail.id)))


def addresses(messages) -> list[str]:
    return sorted(m["To"].addresses[0].addr_spec for m in messages)


def test_ticket_received_goes_to_the_customer_with_number_and_link(db, make, smtp):
    customer = make.user(email="budi@example.com", locale="en")
    ticket = tickets.file_ticket(customer, TicketKind.CRITICISM, NASTY, "Isi keluhan")
    [msg] = deliver(db, smtp)
    assert addresses([msg]) == ["budi@example.com"]
    assert ticket.number in msg["Subject"]
    text, html = text_of(msg), html_of(msg)
    assert f"{BASE}/tickets/{ticket.number}" in text
    assert f'href="{BASE}/tickets/{ticket.number}"' in html
    assert NASTY in text  # plain text carries it verbatim
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &#34;rusak&#34;" in html
    assert '<html lang="en">' in html


def test_email_is_rendered_in_the_recipients_language(db, make, smtp):
    en = make.user(email="en@example.com", locale="en")
    idn = make.user(email="id@example.com", locale="id")
    tickets.file_ticket(en, TicketKind.CRITICISM, "A", "a")
    tickets.file_ticket(idn, TicketKind.CRITICISM, "B", "b")
    deliver(db, smtp)
    [english], [indonesian] = smtp.to(en.email), smtp.to(idn.email)
    assert '<html lang="en">' in html_of(english) and "We received" in text_of(english)
    assert '<html lang="id">' in html_of(indonesian) and "We received" not in text_of(indonesian)
    assert "received" in english["Subject"] and "received" not in indonesian["Subject"]


def test_filing_renders_no_email_the_worker_does_and_keeps_what_it_sent(db, make, smtp):
    """The filing's emails are queued as template, language and context (rendered by the
    outbox worker, not in the request); once sent, the row holds the text and HTML sent."""
    make.user(perm.ADMIN_DEPARTMENT, department="CS", email="cs-admin@example.com", locale="en")
    customer = make.user(email="rani@example.com")
    ticket = tickets.file_ticket(customer, TicketKind.QUESTION, NASTY, "Kapan sampai?")
    assert ticket.status is TicketStatus.TEAM  # routed: the department's admin hears too
    queued = outbox(db)
    assert [(r.template, r.lang, r.body_text, r.body_html) for r in queued] == [
        ("ticket_filed", "id", None, None),
        ("department_ticket", "en", None, None),
    ]
    # As typed: the template escapes it when the worker renders it.
    assert json.loads(queued[0].context)["ticket"]["subject"] == NASTY
    sent = {m["To"].addresses[0].addr_spec: m for m in deliver(db, smtp)}
    db.session.expire_all()
    for row in outbox(db):
        message = sent[row.recipient.rpartition("<")[2].rstrip(">")]
        assert row.body_text.strip() == text_of(message).strip()  # (MIME ends with a newline)
        assert row.body_html.strip() == html_of(message).strip()
        assert "<script>" not in row.body_html and "&lt;script&gt;" in row.body_html
    admin_text = text_of(sent["cs-admin@example.com"])
    assert "Kind: Question" in admin_text and "Priority: Normal" in admin_text
    assert "Customer Service" in admin_text  # the department in the admin's language


def test_an_email_that_cannot_be_rendered_is_retried_and_holds_up_nothing(db, make, smtp):
    first = make.user(email="first@example.com")
    second = make.user(email="second@example.com")
    tickets.file_ticket(first, TicketKind.QUESTION, "Satu", "a")
    tickets.file_ticket(second, TicketKind.QUESTION, "Dua", "b")
    broken = outbox(db)[0]
    broken.template = "no_such_template"  # a template a deploy took away
    report = (db.session.commit(), mailer.send_pending())[1]
    assert (report.claimed, report.sent, report.retried) == (2, 1, 1)
    assert addresses(smtp.messages) == ["second@example.com"]
    db.session.expire_all()
    assert broken.status.value == "pending" and broken.body_text is None
    assert "no_such_template" in broken.last_error


def test_routed_ticket_tells_the_admins_of_that_department_only(db, make, smtp):
    cs_admin = make.user(perm.ADMIN_DEPARTMENT, department="CS", email="cs-admin@example.com")
    make.user(perm.ADMIN_DEPARTMENT, department="CS", email="off@example.com").active = False
    make.user(perm.ADMIN_DEPARTMENT, department="OPS", email="ops-admin@example.com")
    make.user(perm.CUSTOMER_SERVICE, email="desk@example.com")
    customer = make.user(email="tanya@example.com")
    ticket = tickets.file_ticket(customer, TicketKind.QUESTION, NASTY, "Kapan sampai?")
    assert ticket.status is TicketStatus.TEAM  # routed to CS by the seed rule
    messages = deliver(db, smtp)
    assert addresses(messages) == ["cs-admin@example.com", "tanya@example.com"]
    [admin_mail] = smtp.to(cs_admin.email)
    assert ticket.number in admin_mail["Subject"]
    assert f"{BASE}/admin/tickets/team/?search={ticket.number}" in text_of(admin_mail)
    assert "Layanan Pelanggan" in text_of(admin_mail)  # the department, in Indonesian
    assert "<script>" not in html_of(admin_mail)


def test_dispatch_and_escalation_tell_the_receiving_department(db, make, smtp):
    ops_admin = make.user(perm.ADMIN_DEPARTMENT, department="OPS", email="ops@example.com")
    claims_admin = make.user(perm.ADMIN_DEPARTMENT, department="CLAIMS", email="kl@example.com")
    master = make.user(perm.MASTER_ADMIN, department="OPS", email="master@example.com")
    ticket = make.ticket(TicketStatus.PROGRESS)
    deliver(db, smtp)
    smtp.clear()
    tickets.dispatch(ticket, make.department("OPS"), master)
    assert addresses(deliver(db, smtp)) == [ops_admin.email]
    smtp.clear()
    tickets.dispatch(ticket, make.department("CLAIMS"), master)  # escalation
    assert addresses(deliver(db, smtp)) == [claims_admin.email]


def test_the_admin_who_moves_a_ticket_is_not_told_about_it(db, make):
    ops_admin = make.user(perm.ADMIN_DEPARTMENT, department="OPS")
    ticket = make.ticket(TicketStatus.PROGRESS)
    before = len(outbox(db))
    notifications.ticket_reached_department(ticket, ops_admin)  # nobody is in OPS yet
    ticket.department = make.department("OPS")
    db.session.flush()
    notifications.ticket_reached_department(ticket, ops_admin)
    assert len(outbox(db)) == before


def test_staff_public_reply_is_emailed_and_internal_notes_never_are(db, make, smtp):
    customer = make.user(email="rina@example.com")
    cs = make.user(perm.CUSTOMER_SERVICE, email="cs-agent@example.com")
    ticket = make.ticket(TicketStatus.TEAM, customer=customer)
    deliver(db, smtp)
    smtp.clear()
    secret = "INTERNAL-ONLY: customer is a known fraudster <b>"
    tickets.post_message(ticket, cs, secret, internal=True)
    assert deliver(db, smtp) == []
    reply = 'Paket Anda <b>sudah</b> dikirim ulang & "aman".\nTerima kasih.'
    tickets.post_message(ticket, cs, reply)
    [msg] = deliver(db, smtp)
    assert addresses([msg]) == ["rina@example.com"]
    assert reply in text_of(msg)
    html = html_of(msg)
    assert "&lt;b&gt;sudah&lt;/b&gt; dikirim ulang &amp; &#34;aman&#34;." in html
    assert "<b>sudah</b>" not in html
    for row in outbox(db):  # no email, to anyone, ever carried the note
        assert "INTERNAL-ONLY" not in row.body_text
        assert "INTERNAL-ONLY" not in (row.body_html or "")


def test_customer_reply_sends_nothing(db, make):
    ticket = make.ticket(TicketStatus.RESPONDED)
    before = len(outbox(db))
    tickets.post_message(ticket, ticket.customer, "Masih belum sampai")
    assert len(outbox(db)) == before


def test_finished_ticket_mail_carries_one_click_rating_links(db, make, smtp, client):
    customer = make.user(email="ani@example.com", locale="en")
    ticket = make.ticket(TicketStatus.FINISHED, customer=customer)
    messages = deliver(db, smtp)
    [finished] = [m for m in messages if "finished" in m["Subject"]]
    text = text_of(finished)
    links = [line.split(": ", 1)[1] for line in text.splitlines() if "/email/rate/" in line]
    assert len(links) == 5
    assert all(f'href="{link}"' in html_of(finished) for link in links)
    path = links[3].removeprefix(BASE)  # a 4
    for _ in range(2):  # mail scanners and previews follow links: GET changes nothing
        resp = client.get(path, headers=EN)
        assert resp.status_code == 200
        assert resp.headers["Cache-Control"] == "no-store"
    html = resp.get_data(as_text=True)
    assert ticket.number in html and 'id="rating-form"' in html
    assert re.search(r'<input checked[^>]*value="4"|value="4"[^>]*checked', html)
    assert len(re.findall(r'type="radio"', html)) == 5 and 'name="comment"' in html
    db.session.expire_all()
    assert ticket.rating is None
    # The form posts back to the same URL; the customer may change the score.
    resp = client.post(path, data={"score": "5", "comment": "Cepat & <ramah>"}, headers=EN)
    assert resp.status_code == 200
    assert "5 of 5" in resp.get_data(as_text=True)
    db.session.expire_all()
    assert (ticket.rating, ticket.rating_comment) == (5, "Cepat & <ramah>")
    for link in (links[0], path):  # another link, or the same form again, changes nothing
        resp = client.post(link.removeprefix(BASE), data={"score": "1"}, headers=EN)
        assert resp.status_code == 200 and "already rated" in resp.get_data(as_text=True)
        resp = client.get(link.removeprefix(BASE), headers=EN)
        assert resp.status_code == 200 and "already rated" in resp.get_data(as_text=True)
    db.session.expire_all()
    assert ticket.rating == 5


def test_rating_form_refuses_a_bad_score_or_comment(db, make, client):
    ticket = make.ticket(TicketStatus.FINISHED)
    url = f"/email/rate/{notifications.rating_token(ticket, 3)}"
    db.session.commit()
    for data in ({"score": "9"}, {"score": ""}, {"score": "4", "comment": "x" * 2001}):
        resp = client.post(url, data=data, headers=EN)
        assert resp.status_code == 400 and 'id="rating-form"' in resp.get_data(as_text=True)
    db.session.expire_all()
    assert ticket.rating is None
    resp = client.post(url, data={"score": "3"}, headers=EN)  # no comment is fine
    assert resp.status_code == 200
    db.session.expire_all()
    assert (ticket.rating, ticket.rating_comment) == (3, None)


def test_rating_link_tampered_or_expired_changes_nothing(db, make, client, monkeypatch):
    ticket = make.ticket(TicketStatus.FINISHED)
    good = notifications.rating_token(ticket, 5)
    other = make.ticket(TicketStatus.FINISHED)
    db.session.commit()
    tampered = good[:-2] + ("AA" if not good.endswith("AA") else "BB")
    forged_for_other = (
        notifications.rating_token(other, 5).split(".")[0] + "." + ".".join(good.split(".")[1:])
    )
    for bad in (tampered, forged_for_other):
        assert client.get(f"/email/rate/{bad}").status_code == 400
        assert client.post(f"/email/rate/{bad}", data={"score": "5"}).status_code == 400
    real_now = time.time()
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: int(real_now - 31 * 86400))
    expired = notifications.rating_token(ticket, 5)
    monkeypatch.undo()
    for resp in (
        client.get(f"/email/rate/{expired}", headers=EN),
        client.post(f"/email/rate/{expired}", data={"score": "5"}, headers=EN),
    ):
        assert resp.status_code == 400 and "expired" in resp.get_data(as_text=True)
        assert 'id="rating-form"' not in resp.get_data(as_text=True)
    db.session.expire_all()
    assert ticket.rating is None and other.rating is None


def test_rating_link_of_a_reopened_ticket_changes_nothing(db, make, client):
    ticket = make.ticket(TicketStatus.FINISHED)
    token = notifications.rating_token(ticket, 2)
    tickets.reopen(ticket, make._master())
    db.session.commit()
    assert client.get(f"/email/rate/{token}").status_code == 409
    assert client.post(f"/email/rate/{token}", data={"score": "2"}).status_code == 409
    db.session.expire_all()
    assert ticket.rating is None


def test_customer_closing_their_own_ticket_gets_no_finished_mail(db, make):
    ticket = make.ticket(TicketStatus.RESPONDED)
    before = len(outbox(db))
    tickets.finish(ticket, ticket.customer)
    assert len(outbox(db)) == before


def test_order_status_change_is_emailed_to_the_customer(db, make, smtp):
    customer = make.user(email="dewi@example.com", locale="en")
    order = make.order(customer, destination='Bandung <i>"Jl. Merdeka"</i>')
    cs = make.user(perm.CUSTOMER_SERVICE)
    [placed] = deliver(db, smtp)  # the order's confirmation (tests/test_shipment_notices.py)
    assert order.resi in placed["Subject"]
    change_status(order, OrderStatus.PICKED_UP, cs, note="staff-only remark")
    _placed, msg = deliver(db, smtp)
    assert addresses([msg]) == ["dewi@example.com"]
    assert order.number in msg["Subject"] and "Picked up" in msg["Subject"]
    assert f"{BASE}/orders/{order.number}" in text_of(msg)
    assert "staff-only remark" not in text_of(msg) + html_of(msg)
    assert "&lt;i&gt;&#34;Jl. Merdeka&#34;&lt;/i&gt;" in html_of(msg)


def test_inactive_customers_get_nothing(db, make):
    customer = make.user()
    ticket = make.ticket(TicketStatus.TEAM, customer=customer)
    customer.active = False
    before = len(outbox(db))
    tickets.post_message(ticket, make._master(), "Halo")
    assert len(outbox(db)) == before

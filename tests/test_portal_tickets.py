"""Tickets on the portal: filing, uploads, the conversation, reply, close, reopen, rate."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from backoffice.domain import permissions as perm
from backoffice.domain import tickets as lifecycle
from backoffice.models import (
    EventAction,
    Ticket,
    TicketAttachment,
    TicketEvent,
    TicketMessage,
    TicketStatus,
)
from backoffice.models.base import utcnow

from .conftest import Browser
from .portal_support import (
    JPEG,
    PDF,
    customer,
    encoded_form,
    field_error,
    png_bytes,
    text,
    upload,
)

GOOD = {
    "kind": "complaint",
    "subject": "Paket belum sampai",
    "body": "Sudah lima hari.\nMohon dicek.",
}


def _count(db, model) -> int:
    db.session.commit()  # a fresh snapshot (MariaDB reads repeatably inside a transaction)
    return db.session.scalar(select(func.count()).select_from(model))


def _files(app) -> set[str]:
    return {p.name for p in Path(app.config["UPLOAD_FOLDER"]).glob("*")}


def test_new_ticket_form_has_the_contract_fields(login_as):
    b, _user = customer(login_as)
    page = b.get("/tickets/new").get_data(as_text=True)
    for name in ("kind", "subject", "body", "order_number", "attachment"):
        assert f'name="{name}"' in page
    assert 'enctype="multipart/form-data"' in page


def test_the_chat_box_question_is_carried_over(login_as):
    b, _user = customer(login_as)
    page = text(b.get("/tickets/new?subject=Paket+rusak&body=Kardusnya+penyok"))
    assert 'value="Paket rusak"' in page and "Kardusnya penyok</textarea>" in page


def test_filing_a_ticket_with_an_own_order_and_a_picture(app, login_as, db, make):
    b, user = customer(login_as)
    order = make.order(customer=user)
    db.session.commit()
    resp = b.post(
        "/tickets/new",
        {
            **GOOD,
            "order_number": order.number.lower(),
            "attachment": upload(png_bytes(), "foto.png"),
        },
    )
    assert resp.status_code == 302, text(resp)[-2000:]
    ticket = db.session.scalars(select(Ticket)).one()
    assert resp.headers["Location"].endswith(f"/tickets/{ticket.number}")
    assert (ticket.customer_id, ticket.order_id, ticket.kind.value) == (
        user.id,
        order.id,
        "complaint",
    )
    message = db.session.scalars(select(TicketMessage)).one()
    assert message.body == "Sudah lima hari.\nMohon dicek."
    attachment = db.session.scalars(select(TicketAttachment)).one()
    assert (attachment.content_type, attachment.filename) == ("image/png", "foto.png")
    assert attachment.storage_key in _files(app)
    assert not str(app.config["UPLOAD_FOLDER"]).startswith(app.static_folder)
    page = text(b.get(f"/tickets/{ticket.number}"))
    assert "Paket belum sampai" in page and "Thank you! Your ticket" in page
    assert f"/attachments/{attachment.id}" in page
    with b.get(f"/attachments/{attachment.id}") as download:
        assert download.status_code == 200 and download.data == png_bytes()
        assert download.headers["Content-Type"] == "image/png"


def test_pdf_attachment_is_a_download(login_as, db):
    b, _user = customer(login_as)
    b.post("/tickets/new", {**GOOD, "attachment": upload(PDF, "struk.pdf")})
    attachment = db.session.scalars(select(TicketAttachment)).one()
    with b.get(f"/attachments/{attachment.id}") as resp:
        assert resp.headers["Content-Type"] == "application/pdf"
        assert resp.headers["Content-Disposition"].startswith("attachment")


@pytest.mark.parametrize(
    ("data", "name"),
    [
        (b"<html><script>alert(1)</script></html>", "foto.png"),  # disguised as a PNG
        (b"MZ\x90\x00" + b"\x00" * 100, "invoice.pdf"),  # an executable named .pdf
        (b"GIF89a" + b"\x00" * 20, "anim.gif"),  # a real type we do not take
        (b"", "empty.jpg"),
    ],
)
def test_disguised_or_empty_uploads_are_refused_next_to_the_field(app, login_as, db, data, name):
    b, _user = customer(login_as)
    before = _files(app)
    resp = b.post("/tickets/new", {**GOOD, "attachment": upload(data, name)})
    assert resp.status_code == 400
    assert field_error(resp, "attachment")
    assert _count(db, Ticket) == 0 and _files(app) == before
    assert 'value="Paket belum sampai"' in text(resp)  # the rest of the form is kept


def test_a_jpeg_is_accepted(login_as, db):
    b, _user = customer(login_as)
    resp = b.post("/tickets/new", {**GOOD, "attachment": upload(JPEG, "x.jpeg")})
    assert resp.status_code == 302
    assert db.session.scalars(select(TicketAttachment)).one().content_type == "image/jpeg"


def test_upload_just_over_5_mb_is_refused_next_to_the_field(app, login_as, db):
    b, _user = customer(login_as)
    big = png_bytes() + b"\x00" * (5 * 1024 * 1024)
    fields = {**GOOD, "csrf_token": b.token("/tickets/new"), "attachment": upload(big, "b.png")}
    resp = b.client.post("/tickets/new", **encoded_form(fields))
    assert resp.status_code == 400 and "5 MB" in field_error(resp, "attachment")
    assert _count(db, Ticket) == 0


def test_upload_over_the_request_limit_gets_a_friendly_413(login_as, db):
    b, _user = customer(login_as)
    huge = png_bytes() + b"\x00" * (7 * 1024 * 1024)
    fields = {**GOOD, "csrf_token": b.token("/tickets/new"), "attachment": upload(huge, "a.png")}
    form_page = "http://localhost/tickets/new"
    resp = b.client.post("/tickets/new", headers={"Referer": form_page}, **encoded_form(fields))
    assert resp.status_code == 413
    page = text(resp)
    assert "5 MB" in page and 'class="portal-header"' in page
    assert f'href="{form_page}"' in page  # back to the form
    assert _count(db, Ticket) == 0


def test_order_number_must_be_ones_own(login_as, db, make):
    b, _user = customer(login_as)
    other = make.order()
    db.session.commit()
    for number in (other.number, "ORD-2026-999999", "nonsense", "ORD-" + "9" * 30):
        resp = b.post("/tickets/new", {**GOOD, "order_number": number})
        assert resp.status_code == 400, number
        assert field_error(resp, "order_number"), number
    assert _count(db, Ticket) == 0


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"kind": "praise"}, "kind"),
        ({"kind": ""}, "kind"),
        ({"subject": ""}, "subject"),
        ({"subject": "s" * 201}, "subject"),
        ({"body": "   "}, "body"),
        ({"body": "b" * 10_001}, "body"),
        ({"body": "\x00\x01\x02"}, "body"),
    ],
)
def test_bad_ticket_input_is_shown_next_to_the_field(login_as, db, change, field):
    b, _user = customer(login_as)
    resp = b.post("/tickets/new", {**GOOD, **change})
    assert resp.status_code == 400 and field_error(resp, field)
    assert _count(db, Ticket) == 0


def test_messages_follow_the_account_language(login_as, db):
    b, _user = customer(login_as)
    resp = b.post("/tickets/new", {**GOOD, "subject": ""})
    assert "Please fill in this field." in field_error(resp, "subject")
    assert '<html lang="en"' in resp.get_data(as_text=True)
    b, _user = customer(login_as, locale="id")
    resp = b.post("/tickets/new", {**GOOD, "subject": ""}, headers={"Accept-Language": "en"})
    assert resp.status_code == 400 and field_error(resp, "subject")
    assert '<html lang="id"' in resp.get_data(as_text=True)  # the account wins


def test_odd_unicode_is_stored_cleaned_and_shown_escaped(login_as, db):
    b, _user = customer(login_as)
    resp = b.post(
        "/tickets/new",
        {
            "kind": "question",
            "subject": "Halo\x00 <i>dunia</i> 🌏",
            "body": "e\u0301 \ufeff<script>x</script>",
        },
    )
    assert resp.status_code == 302
    ticket = db.session.scalars(select(Ticket)).one()
    assert ticket.subject == "Halo <i>dunia</i> 🌏"
    message = db.session.scalars(select(TicketMessage)).one()
    assert message.body == "\u00e9 <script>x</script>"  # NFC, no BOM
    html = b.get(f"/tickets/{ticket.number}").get_data(as_text=True)
    assert "<script>x</script>" not in html and "&lt;script&gt;x&lt;/script&gt;" in html
    assert "&lt;i&gt;dunia&lt;/i&gt;" in html


def test_filing_without_csrf_changes_nothing(login_as, db):
    b, _user = customer(login_as)
    resp = b.client.post("/tickets/new", data=GOOD)
    assert resp.status_code == 400 and "expired" in text(resp)
    assert _count(db, Ticket) == 0


def test_staff_without_the_customer_role_cannot_file(login_as, db):
    for role in perm.STAFF_ROLES:
        b, _user = login_as(role)
        page = b.get("/tickets/new")
        assert page.status_code == 403 and "/admin/" in page.get_data(as_text=True)
        resp = b.post("/tickets/new", GOOD, form_url="/")
        assert resp.status_code == 403
    assert _count(db, Ticket) == 0


def test_tickets_need_a_login(client):
    for url in ("/tickets", "/tickets/new", "/tickets/CX-2026-000001"):
        resp = client.get(url)
        assert resp.status_code == 302 and "/login?next=" in resp.headers["Location"], url


# --- the conversation ------------------------------------------------------------------


def test_ticket_page_shows_public_messages_only(login_as, db, make):
    b, user = customer(login_as)
    ticket = make.ticket(status=TicketStatus.TEAM, customer=user)
    staff = make.user(perm.CUSTOMER_SERVICE, name="Rina Wulandari")
    lifecycle.post_message(ticket, staff, "Catatan internal: pelanggan VIP", internal=True)
    lifecycle.post_message(ticket, staff, "Paket Anda sudah di gudang Bandung.")
    db.session.commit()
    page = text(b.get(f"/tickets/{ticket.number}"))
    assert "Tolong dibantu." in page and "Paket Anda sudah di gudang Bandung." in page
    assert "Catatan internal" not in page and "VIP" not in page
    assert "Rina from carebox" in page and "Wulandari" not in page
    assert 'name="body"' in page  # reply form
    assert "/tickets/" + ticket.number + "/close" in page


def test_tickets_list_uses_friendly_labels(login_as, db, make):
    b, user = customer(login_as)
    make.ticket(status=TicketStatus.RESPONDED, customer=user, subject="Tiket saya")
    make.ticket(customer=user, subject="Tiket <kedua>")
    make.ticket(subject="Tiket orang lain")
    db.session.commit()
    page = text(b.get("/tickets"))
    assert "Tiket saya" in page and "Answered: waiting for you" in page and "Received" in page
    assert "Tiket orang lain" not in page
    assert "Tiket &lt;kedua&gt;" in b.get("/tickets").get_data(as_text=True)


def test_reply_moves_a_responded_ticket_back_to_the_team(app, login_as, db, make):
    b, user = customer(login_as)
    ticket = make.ticket(status=TicketStatus.RESPONDED, customer=user)
    db.session.commit()
    url = f"/tickets/{ticket.number}"
    resp = b.post(
        f"{url}/reply",
        {"body": "Terima kasih, sudah diterima?", "attachment": upload(PDF, "bukti.pdf")},
        form_url=url,
    )
    assert resp.status_code == 302 and f"{url}#m" in resp.headers["Location"]
    db.session.refresh(ticket)
    assert ticket.status is TicketStatus.TEAM
    assert "Terima kasih, sudah diterima?" in text(b.get(url))
    assert db.session.scalars(select(TicketAttachment)).one().filename == "bukti.pdf"


def test_reply_with_javascript_gets_json(login_as, db, make):
    b, user = customer(login_as)
    ticket = make.ticket(status=TicketStatus.TEAM, customer=user)
    db.session.commit()
    url = f"/tickets/{ticket.number}"
    headers = {"Accept": "application/json"}
    resp = b.post(f"{url}/reply", {"body": "Ada kabar?"}, form_url=url, headers=headers)
    assert resp.status_code == 200
    data = resp.get_json()
    assert data["ok"] and data["message"]["body"] == "Ada kabar?" and data["message"]["mine"]
    bad = b.post(f"{url}/reply", {"body": ""}, form_url=url, headers=headers)
    assert bad.status_code == 400 and bad.get_json()["errors"]["body"]
    no_token = b.client.post(f"{url}/reply", data={"body": "x"}, headers=headers)
    assert no_token.status_code == 400 and "CSRF" in str(no_token.get_json())


def test_bad_reply_is_shown_next_to_the_field_and_changes_nothing(app, login_as, db, make):
    b, user = customer(login_as)
    ticket = make.ticket(status=TicketStatus.RESPONDED, customer=user)
    db.session.commit()
    url = f"/tickets/{ticket.number}"
    before = _count(db, TicketMessage)
    for data in (
        {"body": ""},
        {"body": "x" * 10_001},
        {"body": "ok", "attachment": upload(b"<svg onload=alert(1)>", "a.png")},
    ):
        resp = b.post(f"{url}/reply", data, form_url=url)
        assert resp.status_code == 400
        assert field_error(resp, "body") or field_error(resp, "attachment")
    assert b.client.post(f"{url}/reply", data={"body": "tanpa token"}).status_code == 400
    assert _count(db, TicketMessage) == before
    db.session.refresh(ticket)
    assert ticket.status is TicketStatus.RESPONDED


def test_close_reopen_and_rate(login_as, db, make):
    b, user = customer(login_as)
    ticket = make.ticket(status=TicketStatus.RESPONDED, customer=user)
    db.session.commit()
    url = f"/tickets/{ticket.number}"
    resp = b.post(f"{url}/close", {"version": ticket.version_id}, form_url=url)
    assert resp.status_code == 302
    db.session.refresh(ticket)
    assert ticket.status is TicketStatus.FINISHED
    page = text(b.get(url))
    assert "/reopen" in page and "/rate" in page and 'name="body"' not in page
    # A finished ticket takes no replies.
    resp = b.post(f"{url}/reply", {"body": "Halo?"}, form_url=url)
    assert resp.status_code == 302 and "Reopen it" in text(b.get(url))
    # Rate once, 1-5.
    assert b.post(f"{url}/rate", {"rating": "6"}, form_url=url).status_code == 400
    assert b.post(f"{url}/rate", {"rating": "x"}, form_url=url).status_code == 400
    resp = b.post(f"{url}/rate", {"rating": "4", "comment": "Cepat <b>sekali</b>"}, form_url=url)
    assert resp.status_code == 302
    db.session.refresh(ticket)
    assert (ticket.rating, ticket.rating_comment) == (4, "Cepat <b>sekali</b>")
    page = b.get(url).get_data(as_text=True)
    assert "Cepat &lt;b&gt;sekali&lt;/b&gt;" in page and 'action="' + url + '/rate"' not in page
    second = b.post(f"{url}/rate", {"rating": "1"}, form_url=url)
    assert second.status_code == 302 and "already been rated" in text(b.get(url))
    db.session.refresh(ticket)
    assert ticket.rating == 4
    # Reopen within 7 days.
    resp = b.post(f"{url}/reopen", {"version": ticket.version_id}, form_url=url)
    assert resp.status_code == 302
    db.session.refresh(ticket)
    assert ticket.status is TicketStatus.TEAM and ticket.reopen_count == 1


def test_reopen_after_7_days_is_refused_with_a_message(login_as, db, make):
    b, user = customer(login_as)
    long_ago = utcnow() - timedelta(days=8)
    ticket = make.ticket(status=TicketStatus.FINISHED, customer=user, now=long_ago)
    db.session.commit()
    url = f"/tickets/{ticket.number}"
    assert "/reopen" not in b.get(url).get_data(as_text=True)
    resp = b.post(f"{url}/reopen", {"version": ticket.version_id}, form_url=url)
    assert resp.status_code == 302
    assert "7 days" in text(b.get(url))
    db.session.refresh(ticket)
    assert ticket.status is TicketStatus.FINISHED


def test_close_from_a_stale_page_is_refused(login_as, db, make):
    b, user = customer(login_as)
    ticket = make.ticket(status=TicketStatus.TEAM, customer=user)
    db.session.commit()
    url = f"/tickets/{ticket.number}"
    stale = ticket.version_id
    lifecycle.post_message(ticket, make._master(), "Sudah kami kirim ulang.")
    db.session.commit()
    resp = b.post(f"{url}/close", {"version": stale}, form_url=url)
    assert resp.status_code == 302
    assert "changed by someone else" in text(b.get(url))
    db.session.refresh(ticket)
    assert ticket.status is TicketStatus.RESPONDED
    assert b.client.post(f"{url}/close", data={"version": ticket.version_id}).status_code == 400
    db.session.refresh(ticket)
    assert ticket.status is TicketStatus.RESPONDED  # no token, no change


def test_every_change_is_an_audited_lifecycle_event(login_as, db, make):
    b, user = customer(login_as)
    b.post("/tickets/new", GOOD)
    ticket = db.session.scalars(select(Ticket)).one()
    url = f"/tickets/{ticket.number}"
    b.post(f"{url}/reply", {"body": "Tambahan"}, form_url=url)
    db.session.refresh(ticket)
    b.post(f"{url}/close", {"version": ticket.version_id}, form_url=url)
    actions = db.session.scalars(
        select(TicketEvent.action)
        .where(TicketEvent.ticket_id == ticket.id)
        .order_by(TicketEvent.id)
    ).all()
    assert actions[0] is EventAction.FILED
    assert EventAction.CUSTOMER_REPLIED in actions and actions[-1] is EventAction.FINISHED


# --- rate limits -------------------------------------------------------------------------


def test_filing_and_replying_are_rate_limited_per_account(limited_app, make, db):
    limited = limited_app(RATELIMIT_TICKET_FILE="2 per hour", RATELIMIT_TICKET_REPLY="2 per hour")
    one, two = make.user(perm.CUSTOMER, locale="en"), make.user(perm.CUSTOMER)
    db.session.commit()
    first = Browser(limited.test_client())
    first.login(one)
    # A rejected form does not use up the limit; two filings do.
    assert first.post("/tickets/new", {**GOOD, "subject": ""}).status_code == 400
    assert [first.post("/tickets/new", GOOD).status_code for _ in range(2)] == [302, 302]
    blocked = first.post("/tickets/new", GOOD)
    assert blocked.status_code == 429 and "too often" in text(blocked)
    second = Browser(limited.test_client())
    second.login(two)
    assert second.post("/tickets/new", GOOD).status_code == 302  # another account
    assert _count(db, Ticket) == 3

    number = db.session.scalars(select(Ticket.number).where(Ticket.customer_id == one.id)).first()
    url = f"/tickets/{number}"
    codes = [
        first.post(f"{url}/reply", {"body": "lagi"}, form_url=url).status_code for _ in range(3)
    ]
    assert codes == [302, 302, 429]

"""Where inbound mail lands, over a real LMTP conversation (backoffice/channels/email_in.py).

Replies from the corpus (tests/mail/) land in their ticket; unknown senders become
contact-only customers; auto-replies, bounces, bulk mail and carebox's own mail are
never posted nor answered; forged tokens and strangers' replies are held for review.
"""

from __future__ import annotations

import base64
import logging
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from backoffice.channels import email_threads
from backoffice.domain import permissions as perm
from backoffice.models import (
    InboundEmail,
    InboundReason,
    InboundStatus,
    MessageChannel,
    OutboxEmail,
    Ticket,
    TicketMessage,
    TicketStatus,
    User,
)
from backoffice.models.base import utcnow

from .mail_support import Receiver, corpus, message_id
from .portal_support import PDF
from .test_mail_parse import REPLIES

H = InboundStatus
R = InboundReason


@pytest.fixture
def receiver(app, db):
    with Receiver(app) as running:
        yield running


def _last_row(db) -> InboundEmail:
    db.session.commit()  # a fresh snapshot (MariaDB: REPEATABLE READ)
    return db.session.scalars(select(InboundEmail).order_by(InboundEmail.id.desc()).limit(1)).one()


def _messages(db, ticket_id=None):
    db.session.commit()  # a fresh snapshot (MariaDB: REPEATABLE READ)
    stmt = select(TicketMessage).where(TicketMessage.channel == MessageChannel.EMAIL)
    if ticket_id is not None:
        stmt = stmt.where(TicketMessage.ticket_id == ticket_id)
    return list(db.session.scalars(stmt.order_by(TicketMessage.id)))


def _outbox(db) -> int:
    db.session.commit()  # a fresh snapshot (MariaDB: REPEATABLE READ)
    return db.session.scalar(select(func.count()).select_from(OutboxEmail))


def _ticket(make, db, email="budi@example.net", status=TicketStatus.RESPONDED, **kw):
    customer = make.user(email=email, locale="en")
    ticket = make.ticket(status=status, customer=customer, **kw)
    db.session.commit()
    return ticket


REPLY_FILES = [n for n, _ in REPLIES if n not in ("broken_mime.eml", "odd_charsets.eml")]


@pytest.mark.parametrize("name", REPLY_FILES)
def test_a_reply_from_each_client_lands_in_its_ticket(name, db, make, receiver):
    ticket = _ticket(make, db)
    raw = corpus(name, sender="budi@example.net", ticket=ticket)
    assert receiver.deliver(raw, mail_from="budi@example.net")[0] == 250
    row = _last_row(db)
    assert (row.status, row.ticket_id) == (H.POSTED, ticket.id)
    [message] = _messages(db, ticket.id)
    assert message.body == dict(REPLIES)[name]
    assert not message.from_staff and message.author_id == ticket.customer_id
    assert db.session.get(Ticket, ticket.id).status is TicketStatus.TEAM


def test_the_reply_appears_in_the_portal_chat_and_the_desk(db, make, receiver, login_as):
    from .portal_support import customer as portal_customer

    browser, customer = portal_customer(login_as, email="dewi@example.net")
    ticket = make.ticket(status=TicketStatus.RESPONDED, customer=customer)
    db.session.commit()
    receiver.deliver(corpus("apple_mail_id.eml", sender="dewi@example.net", ticket=ticket))
    db.session.commit()  # the requests below share this session: a fresh snapshot
    page = browser.get(f"/tickets/{ticket.number}").get_data(as_text=True)
    assert "Baik, saya ambil sendiri di gudang Cakung besok pagi." in page
    assert "Dikirim dari iPhone saya" not in page and "menulis:" not in page
    staff, _ = login_as(perm.CUSTOMER_SERVICE)
    desk = staff.get(f"/admin/tickets/desk/{ticket.number}/").get_data(as_text=True)
    assert "Baik, saya ambil sendiri" in desk and 'channel-email"' in desk


def test_a_token_in_the_references_alone_finds_the_ticket(db, make, receiver):
    ticket = _ticket(make, db)
    # Sent to the care address (the client dropped Reply-To), References name the root.
    raw = corpus("thunderbird_reply.eml", sender="budi@example.net", ticket=ticket)
    raw = raw.replace(email_threads.reply_address(ticket).encode(), b"care@reply.carebox.example")
    receiver.deliver(raw)
    assert _last_row(db).ticket_id == ticket.id and len(_messages(db, ticket.id)) == 1


def test_in_reply_to_a_carebox_message_id_finds_the_ticket(db, make, receiver):
    ticket = _ticket(make, db)
    sent = db.session.scalars(
        select(OutboxEmail).where(OutboxEmail.headers.contains(ticket.number))
    ).first()
    assert sent is not None  # the staff reply's notice (factories' RESPONDED)
    raw = corpus("plain_new.eml", sender="budi@example.net").replace(
        b"Subject: Paket belum sampai",
        f"Subject: Re: notice\r\nIn-Reply-To: {sent.message_id}".encode(),
    )
    receiver.deliver(raw)
    row = _last_row(db)
    assert (row.status, row.ticket_id) == (H.POSTED, ticket.id)


def test_a_finished_ticket_reopens_and_an_old_one_is_followed_up(db, make, receiver):
    ticket = _ticket(make, db, status=TicketStatus.FINISHED)
    receiver.deliver(corpus("gmail_reply_en.eml", sender="budi@example.net", ticket=ticket))
    assert _last_row(db).ticket_id == ticket.id
    assert db.session.get(Ticket, ticket.id).status is TicketStatus.TEAM

    old = make.ticket(status=TicketStatus.FINISHED, customer=ticket.customer)
    old.finished_at = utcnow() - timedelta(days=8)
    db.session.commit()
    receiver.deliver(corpus("gmail_reply_en.eml", sender="budi@example.net", ticket=old))
    row = _last_row(db)
    assert row.status is H.POSTED and row.ticket_id != old.id
    assert db.session.get(Ticket, row.ticket_id).follow_up_of_id == old.id


def test_an_unknown_sender_becomes_a_contact_with_a_ticket_and_files_are_checked(db, receiver):
    receiver.deliver(corpus("with_pdf.eml", sender="Bambang@Example.net"))
    row = _last_row(db)
    assert row.status is H.POSTED
    customer = db.session.scalars(select(User).where(User.email == "bambang@example.net")).one()
    assert customer.contact_only and customer.name == "Bambang Susilo"
    ticket = db.session.get(Ticket, row.ticket_id)
    assert ticket.customer_id == customer.id and ticket.subject == "Bukti pembayaran \u2013 Resi"
    [message] = _messages(db, ticket.id)
    assert [a.filename for a in message.attachments] == ["Bukti pembayaran _ resi.pdf"]
    assert message.body.startswith("Terlampir bukti pembayaran \u2013 mohon diproses.")
    assert "invoice.pdf.exe" in message.body  # refused, and named
    # The contact hears its ticket number, like any customer.
    assert _outbox(db) == 1


def test_a_10_mb_attachment_is_taken_in_and_refused_by_the_upload_limit(db, make, receiver):
    ticket = _ticket(make, db)
    big = base64.encodebytes(PDF + b"0" * (10 * 1024 * 1024)).decode()
    raw = corpus("with_pdf.eml", sender="budi@example.net").replace(
        PDF_B64_FIRST_LINE, big.encode(), 1
    )
    raw = b"\r\n".join(raw.splitlines()) + b"\r\n"
    assert len(raw) > 13_000_000
    code, _ = receiver.deliver(raw, to=[email_threads.reply_address(ticket)])
    assert code == 250
    row = _last_row(db)
    assert row.status is H.POSTED and row.size == len(raw)
    message = db.session.get(TicketMessage, row.ticket_message_id)
    assert message.attachments == []
    assert "Bukti pembayaran \u2013 resi.pdf \u2014 The attached file is larger than 5 MB." in (
        message.body
    )


PDF_B64_FIRST_LINE = base64.encodebytes(PDF).split(b"\n")[0]


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("out_of_office.eml", R.AUTO_REPLY),
        ("outlook_auto_reply.eml", R.AUTO_REPLY),
        ("bounce.eml", R.BOUNCE),
    ],
)
def test_auto_replies_and_bounces_are_never_posted_nor_answered(name, reason, db, make, receiver):
    ticket = _ticket(make, db)
    before = _outbox(db)
    mail_from = "" if name == "bounce.eml" else "budi@example.net"
    with receiver.client() as client:
        client.mail(mail_from or "<>")
        client.rcpt(email_threads.reply_address(ticket))
        assert client.data(corpus(name, sender="budi@example.net", ticket=ticket))[0] == 250
    row = _last_row(db)
    assert (row.status, row.reason) == (H.IGNORED, reason)
    assert _messages(db) == [] and _outbox(db) == before
    assert db.session.get(Ticket, ticket.id).status is TicketStatus.RESPONDED


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        ("Precedence: list", R.BULK),
        ("List-Id: Promo <promo.lists.example.net>", R.BULK),
        ("Auto-Submitted: auto-generated", R.AUTO_REPLY),
        ("X-Carebox-Ticket: CX-0001", R.LOOP),
    ],
)
def test_bulk_mail_and_carebox_own_mail_are_ignored(extra, reason, db, make, receiver):
    make.user(email="budi@example.net")
    db.session.commit()
    raw = corpus("plain_new.eml", sender="budi@example.net").replace(
        b"MIME-Version: 1.0", extra.encode() + b"\r\nMIME-Version: 1.0", 1
    )
    receiver.deliver(raw)
    row = _last_row(db)
    assert (row.status, row.reason) == (H.IGNORED, reason) and _messages(db) == []


def test_carebox_own_sender_address_coming_back_is_a_loop(db, receiver):
    receiver.deliver(corpus("plain_new.eml", sender="no-reply@carebox.example"))
    assert (_last_row(db).reason, _messages(db)) == (R.LOOP, [])


def test_a_forged_token_is_held_not_posted(db, make, receiver):
    ticket = _ticket(make, db)
    good = email_threads.reply_token(ticket)
    forged = good[:-4] + ("aaaa" if not good.endswith("aaaa") else "bbbb")
    raw = corpus("gmail_reply_en.eml", sender="budi@example.net", ticket=ticket)
    raw = raw.replace(good.encode(), forged.encode())
    receiver.deliver(raw, to=[f"reply+{forged}@reply.carebox.example"])
    row = _last_row(db)
    assert (row.status, row.reason) == (H.HELD, R.BAD_TOKEN)
    assert _messages(db) == []


def test_a_valid_token_from_another_sender_is_held_then_accepted(db, make, receiver, login_as):
    ticket = _ticket(make, db)
    before = _outbox(db)
    raw = corpus("gmail_reply_en.eml", sender="mallory@evil.example", ticket=ticket)
    receiver.deliver(raw, mail_from="mallory@evil.example")
    row = _last_row(db)
    assert (row.status, row.reason, row.ticket_id) == (H.HELD, R.WRONG_SENDER, ticket.id)
    assert _messages(db) == [] and _outbox(db) == before
    assert db.session.scalar(select(User.id).where(User.email == "mallory@evil.example")) is None

    staff, reviewer = login_as(perm.CUSTOMER_SERVICE, locale="en")
    listing = staff.get("/admin/mail-review/").get_data(as_text=True)
    assert "mallory@evil.example" in listing
    page = staff.get(f"/admin/mail-review/details/?id={row.id}").get_data(as_text=True)
    assert "Sender is not the ticket&#39;s customer" in page and ticket.number in page
    assert "Can I still claim the insurance?" in page
    url = f"/admin/mail-review/accept/?id={row.id}"
    resp = staff.post(url, form_url=f"/admin/mail-review/details/?id={row.id}")
    assert resp.status_code == 302
    row = _last_row(db)
    assert (row.status, row.reviewed_by_id) == (H.POSTED, reviewer.id)
    [message] = _messages(db, ticket.id)
    assert message.author_id == ticket.customer_id  # posted as the ticket's customer
    # Accepted once: a second accept finds nothing held.
    again = staff.post(url, form_url="/admin/mail-review/")
    assert again.status_code == 404 and len(_messages(db, ticket.id)) == 1


def test_a_held_mail_rejected_is_never_posted(db, make, receiver, login_as):
    ticket = _ticket(make, db)
    receiver.deliver(corpus("gmail_reply_en.eml", sender="mallory@evil.example", ticket=ticket))
    row = _last_row(db)
    staff, reviewer = login_as(perm.MASTER_ADMIN)
    resp = staff.post(
        f"/admin/mail-review/reject/?id={row.id}",
        form_url=f"/admin/mail-review/details/?id={row.id}",
    )
    assert resp.status_code == 302
    assert _last_row(db).status is H.REJECTED and _messages(db) == []
    # Without the CSRF token nothing happens.
    other = _ticket(make, db, email="siti@example.net")
    receiver.deliver(corpus("gmail_reply_en.eml", sender="x@evil.example", ticket=other))
    held = _last_row(db)
    staff.post(f"/admin/mail-review/accept/?id={held.id}", csrf=False)
    assert _last_row(db).status is H.HELD


def test_a_staff_sender_is_held(db, make, receiver):
    make.user(perm.CUSTOMER_SERVICE, email="cs@carebox-staff.example")
    db.session.commit()
    receiver.deliver(corpus("plain_new.eml", sender="cs@carebox-staff.example"))
    row = _last_row(db)
    assert (row.status, row.reason) == (H.HELD, R.STAFF_SENDER) and _messages(db) == []


def test_a_dmarc_failure_is_held(db, make, receiver):
    ticket = _ticket(make, db)
    raw = corpus("outlook_reply_en.eml", sender="budi@example.net", ticket=ticket).replace(
        b"dmarc=pass", b"dmarc=fail"
    )
    receiver.deliver(raw)
    assert (_last_row(db).status, _last_row(db).reason) == (H.HELD, R.NOT_AUTHENTIC)


def test_a_sender_over_the_hourly_limit_is_throttled_and_logged(
    app, db, make, receiver, monkeypatch, caplog
):
    monkeypatch.setitem(app.config, "CAREBOX_MAIL_MAX_PER_HOUR", 2)
    make.user(email="budi@example.net")
    db.session.commit()
    with caplog.at_level(logging.WARNING, logger="carebox.mail"):
        for _ in range(3):
            receiver.deliver(corpus("plain_new.eml", sender="budi@example.net"))
    statuses = [
        (r.status, r.reason)
        for r in db.session.scalars(select(InboundEmail).order_by(InboundEmail.id))
    ]
    assert statuses == [(H.POSTED, None), (H.POSTED, None), (H.IGNORED, R.THROTTLED)]
    assert "budi@example.net over 2 an hour" in caplog.text
    out = app.test_cli_runner().invoke(args=["mail", "status"]).output
    assert "throttled: budi@example.net (1)" in out


def test_broken_mime_and_odd_charsets_still_make_a_message(db, receiver):
    receiver.deliver(corpus("broken_mime.eml", sender="rudi@example.net"))
    receiver.deliver(corpus("odd_charsets.eml", sender="wayan@example.net"))
    broken, odd = _messages(db)
    assert broken.body.startswith("Paket saya hilang, resi CB123456785ID.")
    assert odd.ticket.subject == "Kiriman ke Denpasar \u2014 rusak"
    assert odd.body.startswith("Kardusnya penyok \u2014 isinya keramik")
    assert "catatan.txt" in odd.body  # a text file is not an allowed upload: named, not kept


def test_the_same_message_to_two_addresses_is_one_message(db, make, receiver):
    ticket = _ticket(make, db)
    raw = corpus("apple_mail_id.eml", sender="budi@example.net", ticket=ticket, mid=message_id())
    receiver.deliver(raw, to=[email_threads.reply_address(ticket)])
    receiver.deliver(raw, to=["care@reply.carebox.example"])  # the Cc, in its own transaction
    assert len(_messages(db, ticket.id)) == 1
    assert db.session.scalar(select(func.count()).select_from(InboundEmail)) == 1


def test_nothing_posted_leaves_no_file_behind(app, db, make, receiver, monkeypatch):
    """A processing failure after the files were written removes them (rolled back)."""
    from pathlib import Path

    from backoffice.domain import inbound

    folder = Path(app.config["UPLOAD_FOLDER"])
    before = set(folder.iterdir()) if folder.exists() else set()
    real = inbound.receive

    def fails_after_storing(incoming, **kw):
        got = real(incoming, **kw)
        raise RuntimeError(f"crash after storing {len(got.stored)} file(s)")

    monkeypatch.setattr(inbound, "receive", fails_after_storing)
    receiver.deliver(corpus("with_pdf.eml", sender="budi@example.net"))
    row = _last_row(db)
    assert row.status is H.RECEIVED and "crash after storing" in row.last_error
    assert set(folder.iterdir()) == before
    assert _messages(db) == []

"""WhatsApp messages into tickets: through the webhook, the queue, and the local Graph API."""

from __future__ import annotations

import time
from datetime import timedelta

from sqlalchemy import select

from backoffice.channels.whatsapp_in import process_pending
from backoffice.domain import permissions as perm
from backoffice.domain.phones import normalise_phone
from backoffice.models import (
    InboxStatus,
    MessageChannel,
    Ticket,
    TicketKind,
    TicketMessage,
    User,
    WhatsAppInbox,
)
from backoffice.models.base import utcnow

from .portal_support import JPEG, PDF
from .whatsapp import payloads
from .whatsapp.support import count, post

SENDER = "6281234567890"


def deliver(client, *deliveries):
    for payload in deliveries:
        assert post(client, payload).status_code == 200


def process(db, **kw):
    report = process_pending(**kw)
    db.session.commit()  # a fresh snapshot on MariaDB: the workers commit on their own
    db.session.expire_all()
    return report


def messages(db) -> list[TicketMessage]:
    return list(db.session.scalars(select(TicketMessage).order_by(TicketMessage.id)))


def test_phone_numbers_are_one_number_however_typed():
    for typed in ("08123456789", "0812-3456-789", "+62 812 3456 789", "628123456789", "8123456789"):
        assert normalise_phone(typed) == "+628123456789", typed
    assert normalise_phone("+65 6123 4567") == "+6561234567"
    for junk in ("", None, "12", "abc", "+", "0" * 80):
        assert normalise_phone(junk) is None


def test_unknown_phone_becomes_a_contact_only_customer_with_a_question(whatsapp, client, db):
    deliver(client, payloads.text("Halo, paket saya belum sampai.", name="Budi Santoso"))
    assert process(db).done == 1
    customer = db.session.scalars(select(User).where(User.phone_key == "+6281234567890")).one()
    assert customer.contact_only and customer.name == "Budi Santoso"
    assert customer.phone == "+6281234567890"
    ticket = db.session.scalars(select(Ticket)).one()
    assert ticket.customer_id == customer.id and ticket.kind is TicketKind.QUESTION
    (msg,) = messages(db)
    assert msg.channel is MessageChannel.WHATSAPP and msg.external_id.startswith("wamid.")
    assert msg.body == "Halo, paket saya belum sampai." and not msg.from_staff
    item = db.session.scalars(select(WhatsAppInbox)).one()
    assert item.status is InboxStatus.DONE and item.processed_at is not None


def test_08_and_plus62_are_the_same_registered_customer(whatsapp, client, db, make):
    registered = make.user(phone="0812-3456-7890")
    db.session.commit()
    deliver(client, payloads.text("Selamat pagi", sender=SENDER))
    deliver(client, payloads.text("Ada kabar?", sender=SENDER))
    process(db)
    assert count(User) == len(list(db.session.scalars(select(User.id))))  # no contact added
    assert not db.session.scalar(select(User.id).where(User.contact_only))
    tickets = list(db.session.scalars(select(Ticket)))
    assert len(tickets) == 1 and tickets[0].customer_id == registered.id
    assert [m.body for m in messages(db)] == ["Selamat pagi", "Ada kabar?"]


def test_a_replayed_message_is_posted_once_even_if_queued_twice(whatsapp, client, db):
    payload = payloads.text("Halo")
    deliver(client, payload)
    process(db)
    # The same message queued again under another key (a bug, a restore): one message.
    item = db.session.scalars(select(WhatsAppInbox)).one()
    db.session.add(WhatsAppInbox(item_key="copy", kind=item.kind, payload=item.payload))
    db.session.commit()
    assert process(db).done == 1
    assert len(messages(db)) == 1


def test_an_image_is_fetched_with_the_token_and_attached(whatsapp, client, db):
    whatsapp.add_media("1234567890", "image/jpeg", JPEG)
    deliver(client, payloads.image("1234567890", caption="Foto paket rusak"))
    process(db)
    (msg,) = messages(db)
    assert msg.body == "Foto paket rusak"
    (attachment,) = msg.attachments
    assert attachment.content_type == "image/jpeg" and attachment.size == len(JPEG)
    gets = [r for r in whatsapp.requests if r["method"] == "GET"]
    assert [r["path"].split("?")[0] for r in gets] == ["/v21.0/1234567890", "/download/1234567890"]
    assert all(r["headers"]["Authorization"] == "Bearer EAAtest-token" for r in gets)


def test_a_document_is_attached_under_its_name(whatsapp, client, db):
    whatsapp.add_media("555", "application/pdf", PDF)
    deliver(client, payloads.document("555", "bukti-transfer.pdf"))
    process(db)
    (msg,) = messages(db)
    assert [a.filename for a in msg.attachments] == ["bukti-transfer.pdf"]
    assert msg.body  # "(files only, no text)" in the default language


def test_a_disguised_file_is_refused_and_named_in_the_message(whatsapp, client, db):
    whatsapp.add_media("666", "application/pdf", b"<html><script>alert(1)</script></html>")
    deliver(client, payloads.document("666", "invoice.pdf", caption="Ini tagihannya"))
    process(db)
    (msg,) = messages(db)
    assert msg.attachments == []
    assert msg.body.startswith("Ini tagihannya")
    assert "invoice.pdf" in msg.body and "JPEG, PNG" in msg.body


def test_a_file_larger_than_allowed_is_not_downloaded(whatsapp, client, db, app):
    big = b"\xff\xd8\xff" + b"\x00" * (app.config["ATTACHMENT_MAX_BYTES"] + 10)
    whatsapp.add_media("777", "image/jpeg", big)
    deliver(client, payloads.image("777"))
    process(db)
    (msg,) = messages(db)
    assert msg.attachments == [] and "whatsapp-image.jpg" in msg.body
    assert not any(r["path"].startswith("/download/") for r in whatsapp.requests)


def test_a_location_becomes_a_map_link(whatsapp, client, db):
    deliver(
        client,
        payloads.location(-6.2088, 106.8456, name="Gudang Cakung", address="Jl. Raya Bekasi"),
    )
    process(db)
    (msg,) = messages(db)
    assert "Gudang Cakung" in msg.body and "Jl. Raya Bekasi" in msg.body
    assert "https://www.openstreetmap.org/?mlat=-6.208800&mlon=106.845600" in msg.body


def test_a_broken_location_and_unknown_kinds_still_post_a_line(whatsapp, client, db):
    deliver(client, payloads.location("utara", None))
    deliver(client, payloads.message("sticker_pack", {"id": "1"}))
    deliver(client, payloads.message("reaction", {"message_id": "x", "emoji": "👍"}))
    process(db)
    bodies = [m.body for m in messages(db)]
    assert len(bodies) == 2 and "sticker_pack" in bodies[1]


def test_a_reply_to_an_earlier_message_lands_in_that_ticket(whatsapp, client, db, make):
    hour_ago = int(time.time()) - 3600  # ticket A's messages are older than ticket B
    first = payloads.text("Pertanyaan tentang paket A", timestamp=hour_ago)
    deliver(client, first)
    process(db)
    ticket_a = db.session.scalars(select(Ticket)).one()
    customer = ticket_a.customer
    ticket_b = make.ticket(customer=customer, subject="Paket B")  # the latest open one
    db.session.commit()
    quoted = first["entry"][0]["changes"][0]["value"]["messages"][0]["id"]
    deliver(client, payloads.text("Jadi bagaimana?", context=quoted, timestamp=hour_ago + 60))
    deliver(client, payloads.text("Dan yang ini?"))
    process(db)
    last = {m.ticket_id: m.body for m in messages(db)}
    assert last == {ticket_a.id: "Jadi bagaimana?", ticket_b.id: "Dan yang ini?"}


def test_quoting_another_customers_message_names_no_ticket(whatsapp, client, db):
    first = payloads.text("Punya Budi", sender="6281111111111")
    deliver(client, first)
    process(db)
    quoted = first["entry"][0]["changes"][0]["value"]["messages"][0]["id"]
    deliver(client, payloads.text("Punya Ani", sender="6282222222222", context=quoted))
    process(db)
    tickets = list(db.session.scalars(select(Ticket).order_by(Ticket.id)))
    assert len(tickets) == 2 and tickets[0].customer_id != tickets[1].customer_id


def test_a_resi_in_the_text_links_the_customers_own_order(whatsapp, client, db, make):
    customer = make.user(phone="081234567890")
    order = make.order(customer)
    stranger = make.order()
    db.session.commit()
    text = f"Resi saya {order.resi.lower()}, kok belum sampai? Juga {stranger.resi}"
    deliver(client, payloads.text(text, sender="6281234567890"))
    process(db)
    ticket = db.session.scalars(select(Ticket)).one()
    assert ticket.order_id == order.id


def test_a_strangers_resi_links_nothing(whatsapp, client, db, make):
    stranger = make.order()
    db.session.commit()
    deliver(client, payloads.text(f"Cek resi {stranger.resi}"))
    process(db)
    assert db.session.scalars(select(Ticket)).one().order_id is None


def test_a_message_from_a_staff_phone_is_not_posted(whatsapp, client, db, make):
    make.user(perm.CUSTOMER_SERVICE, phone="081234567890")
    db.session.commit()
    deliver(client, payloads.text("Halo", sender="6281234567890"))
    report = process(db)
    assert report.failed == 1 and messages(db) == []
    item = db.session.scalars(select(WhatsAppInbox)).one()
    assert item.status is InboxStatus.FAILED and "staf" in item.last_error  # in Indonesian


def test_media_while_the_graph_api_is_down_waits_without_spending_attempts(
    whatsapp, client, db, app
):
    whatsapp.add_media("888", "image/png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
    deliver(client, payloads.image("888", caption="Tolong cek"))
    real = app.config["WHATSAPP_API_BASE"]
    app.config["WHATSAPP_API_BASE"] = "http://127.0.0.1:9/v21.0"  # nothing listens there
    try:
        report = process(db)
    finally:
        app.config["WHATSAPP_API_BASE"] = real
    assert report.waiting == 1 and messages(db) == []
    item = db.session.scalars(select(WhatsAppInbox)).one()
    assert item.status is InboxStatus.PENDING and item.attempts == 0
    assert item.next_attempt_at > utcnow()
    assert process(db, now=utcnow() + timedelta(minutes=5)).done == 1
    (msg,) = messages(db)
    assert msg.body == "Tolong cek" and len(msg.attachments) == 1


def test_media_meta_keeps_failing_is_posted_without_the_file_in_the_end(whatsapp, client, db, app):
    app.config["WHATSAPP_QUEUE"] = {"max_attempts": 2}
    try:
        for _ in range(2):
            whatsapp.media_script.append(
                (500, {"error": {"message": "Service unavailable", "code": 131000}})
            )
        deliver(client, payloads.image("999", caption="Foto"))
        assert process(db).waiting == 1
        assert process(db, now=utcnow() + timedelta(hours=1)).done == 1
    finally:
        app.config["WHATSAPP_QUEUE"] = {}
    (msg,) = messages(db)
    assert msg.attachments == [] and "whatsapp-image" in msg.body


def test_the_message_time_is_whatsapps(whatsapp, client, db):
    sent = int(time.time()) - 3600
    deliver(client, payloads.text("Tadi saya kirim", timestamp=sent))
    process(db)
    (msg,) = messages(db)
    assert abs((msg.created_at - (utcnow() - timedelta(hours=1))).total_seconds()) < 60


def test_the_phone_key_follows_every_change_of_the_phone(db, make):
    user = make.user(phone="0812-3456-7890")
    assert user.phone_key == "+6281234567890"
    user.phone = "+62 813 1111 2222"  # the account page, the admin's People form
    assert user.phone_key == "+6281311112222"
    user.phone = "bukan nomor"
    assert user.phone_key is None
    user.phone = None
    db.session.flush()
    assert user.phone_key is None

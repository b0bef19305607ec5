"""Staff replies going back on WhatsApp: the 24-hour window, templates, retries, ticks.

Everything runs against the local Graph API stand-in (tests/whatsapp/graph_server.py)
and asserts on what carebox sent it.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from backoffice.channels.whatsapp_in import process_pending
from backoffice.channels.whatsapp_out import send_pending
from backoffice.domain import notifications, tickets
from backoffice.domain import permissions as perm
from backoffice.models import (
    InboxStatus,
    MessageChannel,
    OutboxEmail,
    OutboxStatus,
    OutboxWhatsApp,
    Ticket,
    TicketMessage,
    WhatsAppDelivery,
    WhatsAppInbox,
    WhatsAppSendKind,
    WhatsAppTemplate,
)
from backoffice.models.base import utcnow

from .test_admin_desk import act, desk
from .whatsapp import payloads
from .whatsapp.support import count, post

SENDER = "6281234567890"


def customer_writes(
    client, db, text="Halo, paket saya di mana?", hours_ago=0, sender=SENDER, **kw
) -> Ticket:
    stamp = int(time.time() - hours_ago * 3600)
    assert (
        post(client, payloads.text(text, sender=sender, timestamp=stamp, **kw)).status_code == 200
    )
    assert process_pending().done == 1
    db.session.commit()  # a fresh snapshot on MariaDB: the workers commit on their own
    db.session.expire_all()
    return db.session.scalars(select(Ticket).order_by(Ticket.id.desc())).first()


def staff_reply(db, make, ticket, body="Paket Anda sedang diantar kurir hari ini.", **kw):
    staff = make.user(perm.CUSTOMER_SERVICE)
    message = tickets.post_message(ticket, staff, body, **kw)
    db.session.commit()
    return message


def no_templates(db, app) -> None:
    """No reply template at all: none in the back office, no old setting."""
    app.config["WHATSAPP_REPLY_TEMPLATE"] = ""
    db.session.execute(update(WhatsAppTemplate).values(active=False))
    db.session.commit()


def rows() -> list[OutboxWhatsApp]:
    from backoffice.extensions import db

    db.session.commit()  # a fresh snapshot on MariaDB: the workers commit on their own
    db.session.expire_all()
    return list(db.session.scalars(select(OutboxWhatsApp).order_by(OutboxWhatsApp.id)))


def test_journey_customer_writes_staff_answer_from_the_desk_goes_back_on_whatsapp(
    whatsapp, client, db, login_as
):
    ticket = customer_writes(client, db)
    b, _staff = login_as(perm.CUSTOMER_SERVICE)
    page = b.get(desk(ticket.number)).get_data(as_text=True)
    assert 'id="reply-route"' in page and "WhatsApp" in page and "sisa 23 jam" in page
    emails_before = count(OutboxEmail)
    resp = act(b, ticket.number, "reply", body="Paket Anda sedang diantar.", visibility="public")
    assert resp.status_code == 302
    (row,) = rows()
    assert (row.kind, row.status, row.recipient) == (
        WhatsAppSendKind.TEXT,
        OutboxStatus.PENDING,
        "+6281234567890",
    )
    assert count(OutboxEmail) == emails_before  # a phone-only contact: no email at all

    report = send_pending()
    assert (report.sent, report.failed) == (1, 0)
    (sent,) = whatsapp.sends()
    assert sent == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": SENDER,
        "type": "text",
        "text": {"preview_url": False, "body": "Paket Anda sedang diantar."},
    }
    (row,) = rows()
    assert row.status is OutboxStatus.SENT and row.wa_message_id.startswith("wamid.")
    assert row.message.channel is MessageChannel.WHATSAPP
    assert "✓" in b.get(desk(ticket.number)).get_data(as_text=True)

    for state in ("delivered", "read"):
        assert post(client, payloads.status(row.wa_message_id, state)).status_code == 200
    process_pending()
    (row,) = rows()
    assert row.delivery is WhatsAppDelivery.READ
    page = b.get(desk(ticket.number)).get_data(as_text=True)
    assert "wa-read" in page
    assert send_pending().claimed == 0  # nothing is ever sent twice


def test_outside_the_window_the_reply_goes_as_the_template(whatsapp, client, db, make, login_as):
    ticket = customer_writes(client, db, hours_ago=25)
    b, _staff = login_as(perm.CUSTOMER_SERVICE)
    page = b.get(desk(ticket.number)).get_data(as_text=True)
    assert "carebox_balasan_tiket" in page and "alert-warning" in page
    staff_reply(db, make, ticket, body="Mohon maaf atas keterlambatannya.\n\nSalam,\nTim CS")
    (row,) = rows()
    assert row.kind is WhatsAppSendKind.TEMPLATE and row.template_language == "id"
    send_pending()
    (sent,) = whatsapp.sends()
    assert sent["type"] == "template" and sent["to"] == SENDER
    assert sent["template"] == {
        "name": "carebox_balasan_tiket",
        "language": {"code": "id"},
        "components": [
            {
                "type": "body",
                "parameters": [
                    {"type": "text", "text": ticket.number},
                    {"type": "text", "text": "Mohon maaf atas keterlambatannya. Salam, Tim CS"},
                ],
            }
        ],
    }


def test_the_window_is_decided_in_one_place(whatsapp, client, db, app):
    ticket = customer_writes(client, db, hours_ago=23)
    route = notifications.reply_route(ticket)
    assert route.channel is MessageChannel.WHATSAPP and route.kind is WhatsAppSendKind.TEXT
    assert route.window_left()[0] == 0  # under an hour left
    later = utcnow() + timedelta(hours=2)
    route = notifications.reply_route(ticket, later)
    assert route.kind is WhatsAppSendKind.TEMPLATE and route.template == "carebox_balasan_tiket"
    no_templates(db, app)
    route = notifications.reply_route(ticket, later)
    assert route.channel is None and route.window_ends_at is not None  # a phone-only contact


def test_without_a_template_outside_the_window_a_registered_customer_gets_email(
    whatsapp, client, db, make, app, login_as
):
    no_templates(db, app)
    registered = make.user(phone="081234567890", email="budi@example.com")
    db.session.commit()
    ticket = customer_writes(client, db, hours_ago=30)
    assert ticket.customer_id == registered.id
    b, _staff = login_as(perm.CUSTOMER_SERVICE)
    page = b.get(desk(ticket.number)).get_data(as_text=True)
    assert "alert-warning" in page and 'id="reply-route"' in page
    emails = count(OutboxEmail)
    staff_reply(db, make, ticket)
    assert rows() == [] and count(OutboxEmail) == emails + 1


def test_a_customer_who_last_wrote_on_the_portal_is_answered_by_email(whatsapp, client, db, make):
    registered = make.user(phone="081234567890", email="budi@example.com")
    db.session.commit()
    ticket = customer_writes(client, db)
    tickets.post_message(ticket, registered, "Saya tulis dari portal.")
    db.session.commit()
    emails = count(OutboxEmail)
    staff_reply(db, make, ticket)
    assert rows() == [] and count(OutboxEmail) == emails + 1


def test_an_internal_note_never_goes_to_whatsapp(whatsapp, client, db, make):
    ticket = customer_writes(client, db)
    staff_reply(db, make, ticket, body="Catatan internal: cek gudang.", internal=True)
    assert rows() == []


def test_the_api_answering_5xx_then_200_sends_once(whatsapp, client, db, make):
    ticket = customer_writes(client, db)
    staff_reply(db, make, ticket)
    whatsapp.fail_next_send(131000)
    first = send_pending()
    assert (first.sent, first.retried) == (0, 1)
    (row,) = rows()
    assert row.status is OutboxStatus.PENDING and row.attempts == 1
    assert row.next_attempt_at > utcnow() and "131000" in row.last_error
    assert send_pending().claimed == 0  # not due yet
    assert send_pending(now=utcnow() + timedelta(minutes=10)).sent == 1
    assert send_pending(now=utcnow() + timedelta(hours=2)).claimed == 0
    assert len(whatsapp.sends()) == 2 and len(whatsapp.accepted_sends()) == 1
    (row,) = rows()
    assert row.status is OutboxStatus.SENT and row.last_error is None


def test_a_rate_limit_waits_at_least_retry_after(whatsapp, client, db, make):
    ticket = customer_writes(client, db)
    staff_reply(db, make, ticket)
    whatsapp.fail_next_send(130429, retry_after="600")
    before = utcnow().replace(microsecond=0)  # MariaDB keeps whole seconds
    assert send_pending().retried == 1
    (row,) = rows()
    assert row.next_attempt_at >= before + timedelta(seconds=600)


def test_a_closed_window_refusal_turns_the_text_into_the_template(whatsapp, client, db, make):
    ticket = customer_writes(client, db)
    staff_reply(db, make, ticket)
    whatsapp.fail_next_send(131047)
    assert send_pending().retried == 1
    (row,) = rows()
    assert row.kind is WhatsAppSendKind.TEMPLATE and row.status is OutboxStatus.PENDING
    assert "131047" in row.last_error
    assert send_pending().sent == 1
    assert [s["type"] for s in whatsapp.sends()] == ["text", "template"]


def test_a_refusal_that_will_not_change_fails_at_once_and_the_desk_says_why(
    whatsapp, client, db, make, login_as
):
    ticket = customer_writes(client, db)
    staff_reply(db, make, ticket)
    whatsapp.fail_next_send(100)
    assert send_pending().failed == 1
    (row,) = rows()
    assert row.status is OutboxStatus.FAILED and "Invalid parameter" in row.last_error
    b, _staff = login_as(perm.CUSTOMER_SERVICE)
    page = b.get(desk(ticket.number)).get_data(as_text=True)
    assert "wa-failed" in page and "Invalid parameter" in page


def test_an_invalid_token_keeps_the_message_without_spending_an_attempt(
    whatsapp, client, db, make, app
):
    ticket = customer_writes(client, db)
    staff_reply(db, make, ticket)
    app.config["WHATSAPP_TOKEN"] = "expired"
    assert send_pending().released == 1
    (row,) = rows()
    assert row.status is OutboxStatus.PENDING and row.attempts == 0
    assert "WHATSAPP_TOKEN" in row.last_error


def test_status_webhooks_out_of_order_end_on_the_right_tick(whatsapp, client, db, make):
    ticket = customer_writes(client, db)
    staff_reply(db, make, ticket)
    send_pending()
    (row,) = rows()
    wamid = row.wa_message_id
    for state in ("read", "sent", "delivered"):
        post(client, payloads.status(wamid, state))
    process_pending()
    assert rows()[0].delivery is WhatsAppDelivery.READ
    failed = [{"code": 131026, "title": "Message undeliverable"}]
    post(client, payloads.status(wamid, "failed", errors=failed))
    process_pending()
    (row,) = rows()
    assert row.delivery is WhatsAppDelivery.READ and "131026" in row.delivery_error


def test_a_failed_status_shows_on_the_desk(whatsapp, client, db, make, login_as):
    ticket = customer_writes(client, db)
    staff_reply(db, make, ticket)
    send_pending()
    (row,) = rows()
    errors = [{"code": 131026, "title": "Message undeliverable"}]
    post(client, payloads.status(row.wa_message_id, "sent"))
    post(client, payloads.status(row.wa_message_id, "failed", errors=errors))
    process_pending()
    b, _staff = login_as(perm.CUSTOMER_SERVICE)
    page = b.get(desk(ticket.number)).get_data(as_text=True)
    assert "wa-failed" in page and "Message undeliverable" in page


def test_a_status_that_outruns_the_send_waits_for_it(whatsapp, client, db, make):
    ticket = customer_writes(client, db)
    staff_reply(db, make, ticket)
    post(client, payloads.status("wamid.not-recorded-yet", "delivered"))
    assert process_pending().waiting == 1
    send_pending()
    (row,) = rows()
    # The send's commit arrives (simulated: the API gave the id the status named).
    row.wa_message_id = "wamid.not-recorded-yet"
    db.session.commit()
    assert process_pending(now=utcnow() + timedelta(minutes=5)).done == 1
    assert rows()[0].delivery is WhatsAppDelivery.DELIVERED
    item = db.session.scalars(select(WhatsAppInbox)).all()[-1]
    assert item.status is InboxStatus.DONE


def test_a_reply_to_carebox_message_lands_in_its_ticket(whatsapp, client, db, make):
    ticket = customer_writes(client, db)
    staff_reply(db, make, ticket)
    send_pending()
    (row,) = rows()
    other = make.ticket(customer=ticket.customer, subject="Lain")
    db.session.commit()
    post(client, payloads.text("Terima kasih!", sender=SENDER, context=row.wa_message_id))
    process_pending()
    db.session.commit()  # a fresh snapshot on MariaDB: the workers commit on their own
    db.session.expire_all()
    last = db.session.scalars(select(TicketMessage).order_by(TicketMessage.id.desc())).first()
    assert last.ticket_id == ticket.id != other.id and last.body == "Terima kasih!"


@pytest.mark.parametrize("configured", [False, True])
def test_the_worker_command(runner, db, app, graph, configured):
    from .whatsapp.support import settings

    saved = dict(app.config)
    if configured:
        app.config.update(settings(graph.base))
    try:
        result = runner.invoke(args=["whatsapp", "process"])
    finally:
        app.config.clear()
        app.config.update(saved)
    if configured:
        assert result.exit_code == 0 and "inbound claimed 0" in result.output
    else:
        assert result.exit_code != 0 and "WHATSAPP_TOKEN" in result.output


def test_two_workers_in_turn_never_claim_the_same_row(whatsapp, client, db, make):
    """Runs on SQLite and MariaDB: claims interleaved, then each batch sent."""
    ticket = customer_writes(client, db)
    for n in range(5):
        staff_reply(db, make, ticket, body=f"Balasan ke-{n}")
    first = send_pending(batch=3)
    second = send_pending(batch=3)
    assert (first.sent, second.sent, send_pending().claimed) == (3, 2, 0)
    bodies = sorted(s["text"]["body"] for s in whatsapp.sends())
    assert bodies == [f"Balasan ke-{n}" for n in range(5)]


def test_two_concurrent_workers_send_every_reply_exactly_once(whatsapp, client, db, make, app):
    import threading

    if db.engine.dialect.name == "sqlite":
        pytest.skip(
            "SQLite has no SELECT … FOR UPDATE SKIP LOCKED and serialises writers; the "
            "in-turn test covers it. Run with TEST_DATABASE_URL (MariaDB)."
        )
    ticket = customer_writes(client, db)
    staff = make.user(perm.CUSTOMER_SERVICE)
    for n in range(60):
        tickets.post_message(ticket, staff, f"Balasan nomor {n}")
    db.session.commit()
    claimed, errors = {"a": 0, "b": 0}, []
    start = threading.Barrier(2)

    def worker(name):
        try:
            with app.app_context():
                start.wait()
                while True:
                    report = send_pending(batch=4)
                    if not report.claimed:
                        break
                    claimed[name] += report.claimed
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in claimed]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    bodies = sorted(s["text"]["body"] for s in whatsapp.sends())
    assert bodies == sorted(f"Balasan nomor {n}" for n in range(60))  # each exactly once
    assert claimed["a"] > 0 and claimed["b"] > 0 and sum(claimed.values()) == 60
    assert {r.status for r in rows()} == {OutboxStatus.SENT}

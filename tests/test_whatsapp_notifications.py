"""Ticket and parcel notifications as WhatsApp templates, for customers who chose WhatsApp
in their profile (off by default): staff replied, finished with the rating link, out for
delivery. Each is queued once (its send key) and what the Graph API stand-in received is
the documented template shape."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select

from backoffice.channels.whatsapp_out import send_pending
from backoffice.domain import notifications, shipments, tickets
from backoffice.domain import permissions as perm
from backoffice.models import (
    OutboxEmail,
    OutboxWhatsApp,
    TrackingEventKind,
    TrackingSource,
    User,
    WhatsAppTemplateUse,
)
from backoffice.models.base import utcnow

from .test_whatsapp_outbound import rows
from .test_whatsapp_templates import add_template
from .whatsapp.support import count

PHONE = "0812-3456-7890"


def consenting(make, db, **fields) -> User:
    user = make.user(name="Rina", phone=PHONE, whatsapp_consent=True, **fields)
    db.session.commit()
    return user


def sent_params(send: dict) -> list[str]:
    (component,) = send["template"]["components"]
    return [p["text"] for p in component["parameters"]]


# --- the choice in the profile ----------------------------------------------------------


def test_the_whatsapp_choice_is_off_by_default_and_kept_with_its_time(login_as, db):
    b, user = login_as(perm.CUSTOMER, phone=PHONE)
    page = b.get("/account").get_data(as_text=True)
    assert 'name="whatsapp_consent"' in page and "WhatsApp" in page
    assert 'name="whatsapp_consent" type="checkbox" value="y">' in page  # not checked
    form = {"name": "Rina", "phone": PHONE, "locale": "id", "whatsapp_consent": "y"}
    assert b.post("/account", form).status_code == 302
    db.session.expire_all()
    user = db.session.get(User, user.id)
    assert user.whatsapp_consent and user.whatsapp_consent_at is not None
    form.pop("whatsapp_consent")
    assert b.post("/account", form).status_code == 302
    db.session.expire_all()
    assert not db.session.get(User, user.id).whatsapp_consent


def test_the_whatsapp_choice_needs_a_phone(login_as, db):
    b, user = login_as(perm.CUSTOMER)
    form = {"name": "Rina", "phone": "", "locale": "en", "whatsapp_consent": "y"}
    resp = b.post("/account", form)
    page = resp.get_data(as_text=True)
    assert resp.status_code == 400 and ("phone number" in page or "nomor telepon" in page)
    db.session.expire_all()
    assert not db.session.get(User, user.id).whatsapp_consent


# --- staff replied ----------------------------------------------------------------------


def test_a_staff_reply_is_also_announced_on_whatsapp_once(whatsapp, db, make):
    add_template(
        db,
        name="carebox_balasan_baru",
        params=("nomor_tiket", "nama_agen", "tautan_tiket"),
        use=WhatsAppTemplateUse.STAFF_REPLIED,
    )
    customer = consenting(make, db)
    ticket = make.ticket(customer=customer)
    staff = make.user(perm.MASTER_ADMIN, name="Sari")
    emails = count(OutboxEmail)
    message = tickets.post_message(ticket, staff, "Kami cek dulu ya.")
    db.session.commit()
    assert count(OutboxEmail) == emails + 1  # the email still goes
    (row,) = rows()
    assert row.send_key == f"staff_replied:{message.id}" and row.message_id is None
    notifications.message_posted(message)  # the same reply reported again
    db.session.commit()
    assert len(rows()) == 1
    assert send_pending().sent == 1
    (sent,) = whatsapp.sends()
    assert sent["to"] == "6281234567890" and sent["type"] == "template"
    assert sent["template"]["name"] == "carebox_balasan_baru"
    assert sent["template"]["language"] == {"code": "id"}
    number, agent, link = sent_params(sent)
    assert (number, agent) == (ticket.number, "Sari")
    assert link.startswith("http") and link.endswith(f"/tickets/{ticket.number}")


def test_without_the_choice_or_without_a_template_nothing_goes_on_whatsapp(whatsapp, db, make):
    add_template(db, name="carebox_balasan_baru", use=WhatsAppTemplateUse.STAFF_REPLIED)
    staff = make.user(perm.MASTER_ADMIN)
    silent = make.user(phone=PHONE)  # whatsapp_consent is off by default
    tickets.post_message(make.ticket(customer=silent), staff, "Halo")
    db.session.commit()
    assert rows() == []
    from sqlalchemy import update

    from backoffice.models import WhatsAppTemplate

    db.session.execute(update(WhatsAppTemplate).values(active=False))
    db.session.commit()
    willing = consenting(make, db, email="rina2@example.com")
    tickets.post_message(make.ticket(customer=willing), staff, "Halo")
    db.session.commit()
    assert rows() == []


# --- finished, with the rating link -----------------------------------------------------


def test_finishing_sends_the_rating_link_once(whatsapp, db, make):
    add_template(
        db,
        name="carebox_tiket_selesai",
        params=("nomor_tiket", "tautan_rating"),
        use=WhatsAppTemplateUse.TICKET_FINISHED,
        language="en",
    )
    customer = consenting(make, db, locale="en")
    ticket = make.ticket("responded", customer=customer)
    staff = make.user(perm.CUSTOMER_SERVICE)
    tickets.finish(ticket, staff)
    db.session.commit()
    notifications.ticket_finished(ticket, staff)  # reported twice: still once
    db.session.commit()
    (row,) = rows()
    assert row.send_key.startswith(f"finished:{ticket.id}:")
    assert send_pending().sent == 1
    (sent,) = whatsapp.sends()
    number, link = sent_params(sent)
    assert number == ticket.number and "/email/rate/" in link
    assert sent["template"]["language"] == {"code": "en"}
    # The link really rates this ticket.
    token = link.rsplit("/", 1)[1]
    outcome, found, _score = notifications.check_rating_token(token)
    assert outcome is notifications.RatingOutcome.RATEABLE and found.id == ticket.id


def test_a_customer_closing_their_own_ticket_is_not_told(whatsapp, db, make):
    add_template(db, name="carebox_tiket_selesai", use=WhatsAppTemplateUse.TICKET_FINISHED)
    customer = consenting(make, db)
    ticket = make.ticket("responded", customer=customer)
    tickets.finish(ticket, customer)
    db.session.commit()
    assert rows() == []


# --- the parcel out for delivery --------------------------------------------------------


def test_out_for_delivery_is_sent_once_per_event(whatsapp, db, make):
    add_template(
        db,
        name="carebox_paket_diantar",
        params=("nama_pelanggan", "resi", "status_kiriman", "tautan_tiket"),
        use=WhatsAppTemplateUse.OUT_FOR_DELIVERY,
    )
    customer = consenting(make, db)
    order = make.order(customer=customer)
    db.session.commit()
    at = utcnow().replace(microsecond=0) - timedelta(hours=1)
    event = shipments.EventIn(order.resi, "out_for_delivery", at, "Bandung")
    for _ in range(2):  # the same event imported twice
        shipments.record_events([event], source=TrackingSource.IMPORT)
        db.session.commit()
    earlier = shipments.EventIn(order.resi, "in_transit", at - timedelta(hours=3), "Jakarta")
    shipments.record_events([earlier], source=TrackingSource.IMPORT)
    db.session.commit()
    (row,) = rows()
    assert send_pending().sent == 1
    (sent,) = whatsapp.sends()
    assert sent["template"]["name"] == "carebox_paket_diantar"
    name, resi, status, link = sent_params(sent)
    assert (name, resi) == ("Rina", order.resi)
    assert "Bandung" in status and link.endswith(f"/track/{order.resi}")


def test_old_or_other_events_and_unwilling_customers_get_nothing(whatsapp, db, make):
    add_template(db, name="carebox_paket_diantar", use=WhatsAppTemplateUse.OUT_FOR_DELIVERY)
    willing = consenting(make, db)
    unwilling = make.user(phone="081299990000")
    mine, theirs = make.order(customer=willing), make.order(customer=unwilling)
    db.session.commit()
    now = utcnow().replace(microsecond=0)
    shipments.record_events(
        [
            shipments.EventIn(mine.resi, "out_for_delivery", now - timedelta(days=5)),  # old
            shipments.EventIn(mine.resi, "delivered", now - timedelta(minutes=5)),
            shipments.EventIn(theirs.resi, "out_for_delivery", now - timedelta(minutes=5)),
        ],
        source=TrackingSource.IMPORT,
    )
    db.session.commit()
    assert rows() == []
    assert shipments.warrants_customer_notification(TrackingEventKind.DELIVERED)


def test_the_send_keys_are_unique_in_the_database(whatsapp, db, make):
    """Two writers that both missed the other's row: the database keeps one."""
    import pytest
    from sqlalchemy.exc import IntegrityError

    from backoffice.models import WhatsAppSendKind

    for _ in range(2):
        db.session.add(
            OutboxWhatsApp(
                recipient="+6281234567890",
                kind=WhatsAppSendKind.TEMPLATE,
                template_name="x",
                template_params=json.dumps([]),
                send_key="finished:1:20260101000000",
                body="",
            )
        )
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()
    assert db.session.scalars(select(OutboxWhatsApp)).all() == []


@pytest.mark.parametrize("parcels", [3, 30])
def test_an_import_costs_the_same_statements_for_3_or_30_parcels(whatsapp, db, make, parcels):
    """The WhatsApp side of a tracking import is set-based, as its email side is: the
    statements it adds do not grow with the batch."""
    from .admin_support import counting_queries

    add_template(
        db,
        name="carebox_paket_diantar",
        params=("nama_pelanggan", "resi"),
        use=WhatsAppTemplateUse.OUT_FOR_DELIVERY,
    )
    orders = []
    for n in range(parcels):
        customer = make.user(phone=f"08129999{n:04d}", whatsapp_consent=True)
        orders.append(make.order(customer=customer))
    db.session.commit()
    at = utcnow().replace(microsecond=0) - timedelta(minutes=30)
    events = [shipments.EventIn(o.resi, "out_for_delivery", at) for o in orders]
    from backoffice.domain.shipment_notices import Notice

    notices = [Notice(o.id, TrackingEventKind.OUT_FOR_DELIVERY, at, 420, "") for o in orders]
    with counting_queries(db.engine) as statements:
        assert notifications.parcel_events(notices) == parcels
        db.session.flush()
    db.session.rollback()
    reads = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(reads) == 4  # is there a template; the customers; the keys; the template (id)
    shipments.record_events(events, source=TrackingSource.IMPORT)
    db.session.commit()
    assert len(rows()) == parcels


# --- merged tickets ---------------------------------------------------------------------


def _two_whatsapp_tickets(client, db, hours_ago=0):
    from backoffice.models import MessageChannel, TicketKind

    from .test_whatsapp_outbound import customer_writes

    first = customer_writes(client, db, hours_ago=hours_ago)
    again = tickets.file_ticket(
        first.customer,
        TicketKind.QUESTION,
        "Paket belum sampai",
        "Halo lagi, paketnya belum sampai.",
        channel=MessageChannel.WHATSAPP,
        now=utcnow() - timedelta(hours=hours_ago),
    )
    db.session.commit()
    return first, again


def test_a_whatsapp_only_contact_is_told_of_a_merge_on_whatsapp_once(whatsapp, client, db, make):
    first, again = _two_whatsapp_tickets(client, db)
    assert notifications._customer(first) is None  # no address to email
    emails = count(OutboxEmail)
    tickets.merge(again, first, make.user(perm.MASTER_ADMIN))
    db.session.commit()
    notifications.ticket_merged(again, first)  # the merge reported again
    db.session.commit()
    (row,) = rows()
    assert row.send_key == f"ticket_merged:{again.id}" and row.ticket_id == first.id
    assert count(OutboxEmail) == emails  # and not by email as well
    assert send_pending().sent == 1
    (sent,) = whatsapp.sends()
    assert sent["to"] == "6281234567890" and sent["type"] == "text"
    body = sent["text"]["body"]
    assert again.number in body and first.number in body
    assert body.rstrip().endswith(f"/tickets/{first.number}")


def test_outside_the_window_the_merge_notice_goes_as_the_reply_template(whatsapp, client, db, make):
    first, again = _two_whatsapp_tickets(client, db, hours_ago=25)
    tickets.merge(again, first, make.user(perm.MASTER_ADMIN))
    db.session.commit()
    assert send_pending().sent == 1
    (sent,) = whatsapp.sends()
    assert sent["type"] == "template" and sent["template"]["name"] == "carebox_balasan_tiket"
    number, text = sent_params(sent)
    assert number == first.number and again.number in text and first.number in text


def test_a_customer_who_writes_on_the_portal_hears_of_a_merge_by_email_only(whatsapp, db, make):
    customer = consenting(make, db, email="rina3@example.com")
    first, again = make.ticket(customer=customer), make.ticket(customer=customer)
    db.session.commit()
    emails = count(OutboxEmail)
    tickets.merge(again, first, make.user(perm.MASTER_ADMIN))
    db.session.commit()
    assert count(OutboxEmail) == emails + 1
    assert rows() == []

"""The inbound entry point: a customer's message arriving on a channel (domain/inbound.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from backoffice.domain import DomainError, inbound
from backoffice.domain import permissions as perm
from backoffice.domain.inbound import Incoming, IncomingFile, Outcome
from backoffice.models import (
    EventAction,
    MessageChannel,
    OutboxEmail,
    Ticket,
    TicketEvent,
    TicketKind,
    TicketMessage,
    TicketStatus,
    User,
)
from backoffice.models.base import utcnow

from .portal_support import PDF, png_bytes

EMAIL = MessageChannel.EMAIL


def mail(**fields) -> Incoming:
    fields.setdefault("body", "Paket saya belum sampai.")
    return Incoming(channel=EMAIL, **fields)


def outbox_to(db, address: str) -> list[OutboxEmail]:
    return list(
        db.session.scalars(select(OutboxEmail).where(OutboxEmail.recipient.contains(address)))
    )


def test_an_unknown_sender_becomes_a_contact_only_customer_with_a_question_ticket(db):
    got = inbound.receive(
        mail(
            email="Budi@Example.COM",
            name="Budi Santoso",
            subject="Paket hilang",
            external_id="<a@x>",
        )
    )
    db.session.commit()
    assert got.outcome is Outcome.FILED and got.new_customer
    customer = db.session.get(User, got.customer.id)
    assert customer.email == "budi@example.com"
    assert customer.contact_only and customer.password is None and customer.name == "Budi Santoso"
    assert perm.has(customer, perm.PORTAL)
    ticket = db.session.get(Ticket, got.ticket.id)
    assert ticket.kind is TicketKind.QUESTION and ticket.subject == "Paket hilang"
    assert ticket.status is TicketStatus.TEAM  # routed by the seed's rule for questions
    message = db.session.get(TicketMessage, got.message.id)
    assert message.channel is EMAIL and message.external_id == "<a@x>"
    assert message.body == "Paket saya belum sampai." and not message.from_staff
    # The contact hears the ticket number, by email, like any customer.
    assert len(outbox_to(db, "budi@example.com")) == 1


def test_a_registered_customer_is_found_by_address_in_any_case(db, make):
    customer = make.user(email="siti@example.com")
    got = inbound.receive(mail(email="SITI@example.com"))
    assert got.customer.id == customer.id and not got.new_customer
    assert got.outcome is Outcome.FILED
    assert not db.session.get(User, customer.id).contact_only


def test_without_a_named_ticket_email_opens_a_new_one_and_whatsapp_continues_the_open_one(db, make):
    customer = make.user()
    first = make.ticket(customer=customer, status=TicketStatus.RESPONDED)
    by_mail = inbound.receive(mail(email=customer.email))
    assert by_mail.outcome is Outcome.FILED and by_mail.ticket.id != first.id
    by_phone = inbound.receive(
        Incoming(
            channel=MessageChannel.WHATSAPP,
            body="Halo?",
            email=customer.email,
            continue_open=True,
        )
    )
    # The latest open ticket (the one just filed by mail) gets it.
    assert by_phone.outcome is Outcome.POSTED and by_phone.ticket.id == by_mail.ticket.id
    assert by_phone.message.channel is MessageChannel.WHATSAPP


def test_a_reply_to_a_named_ticket_goes_through_the_lifecycle(db, make):
    ticket = make.ticket(status=TicketStatus.RESPONDED)
    got = inbound.receive(
        mail(email=ticket.customer.email, ticket=ticket, body="Sudah, terima kasih")
    )
    db.session.commit()
    assert got.outcome is Outcome.POSTED and got.ticket.id == ticket.id
    ticket = db.session.get(Ticket, ticket.id)
    assert ticket.status is TicketStatus.TEAM  # a customer reply sends it back to the team
    actions = db.session.scalars(
        select(TicketEvent.action).where(TicketEvent.ticket_id == ticket.id)
    ).all()
    assert actions[-1] is EventAction.CUSTOMER_REPLIED


def test_a_finished_ticket_reopens_within_seven_days(db, make):
    ticket = make.ticket(status=TicketStatus.FINISHED)
    got = inbound.receive(
        mail(email=ticket.customer.email, ticket=ticket), now=ticket.finished_at + timedelta(days=6)
    )
    assert got.outcome is Outcome.REOPENED and got.ticket.id == ticket.id
    assert ticket.status is TicketStatus.TEAM and ticket.finished_at is None
    assert ticket.reopen_count == 1


def test_after_seven_days_a_new_ticket_follows_up_the_old_one(db, make):
    customer = make.user()
    order = make.order(customer=customer)
    old = make.ticket(status=TicketStatus.FINISHED, customer=customer, order=order)
    got = inbound.receive(
        mail(email=customer.email, ticket=old, subject="Re: [CX] masih rusak"),
        now=old.finished_at + timedelta(days=8),
    )
    db.session.commit()
    assert got.outcome is Outcome.FOLLOW_UP and got.ticket.id != old.id
    new = db.session.get(Ticket, got.ticket.id)
    assert new.follow_up_of_id == old.id and new.kind is old.kind and new.order_id == order.id
    assert db.session.get(Ticket, old.id).status is TicketStatus.FINISHED


def test_the_same_message_twice_is_one_message(db, make):
    customer = make.user()
    first = inbound.receive(mail(email=customer.email, external_id="<same@x>"))
    db.session.commit()
    again = inbound.receive(mail(email=customer.email, external_id="<same@x>"))
    assert again.outcome is Outcome.DUPLICATE and again.message.id == first.message.id
    count = db.session.scalar(
        select(func.count())
        .select_from(TicketMessage)
        .where(TicketMessage.external_id == "<same@x>")
    )
    assert count == 1


def test_the_unique_index_settles_a_race_between_two_deliveries(db, make):
    ticket = make.ticket()
    db.session.commit()
    inbound.receive(mail(email=ticket.customer.email, ticket=ticket, external_id="<race@x>"))
    db.session.commit()
    # A second worker that did not see the first one's row yet inserts it again.
    db.session.add(
        TicketMessage(
            ticket_id=ticket.id,
            body="again",
            channel=EMAIL,
            external_id="<race@x>",
            created_at=utcnow(),
        )
    )
    with pytest.raises(IntegrityError):
        db.session.flush()
    db.session.rollback()


def test_files_go_through_the_upload_checks_and_refused_ones_are_named(db, make):
    customer = make.user(locale="en")
    got = inbound.receive(
        mail(
            email=customer.email,
            body="See attached",
            files=[
                IncomingFile("photo.png", png_bytes()),
                IncomingFile("resi.pdf", PDF),
                IncomingFile("invoice.pdf.exe", b"MZ\x90\x00 not a pdf"),
                IncomingFile("big.pdf", b"%PDF-" + b"0" * (5 * 1024 * 1024)),
            ],
        )
    )
    assert sorted(a.content_type for a in got.message.attachments) == [
        "application/pdf",
        "image/png",
    ]
    assert [name for name, _ in got.refused_files] == ["invoice.pdf.exe", "big.pdf"]
    body = got.message.body
    assert body.startswith("See attached")
    assert "[Not attached: invoice.pdf.exe — Only JPEG, PNG and PDF files can be attached.]" in body
    assert "[Not attached: big.pdf — The attached file is larger than 5 MB.]" in body


def test_files_without_text_still_make_a_message(db, make):
    customer = make.user(locale="en")
    got = inbound.receive(
        mail(email=customer.email, body="  ", files=[IncomingFile("a.png", png_bytes())])
    )
    assert got.message.body == "(files only, no text)" and len(got.message.attachments) == 1


def test_an_empty_message_is_refused(db, make):
    with pytest.raises(DomainError):
        inbound.receive(mail(email=make.user().email, body=" \n "))


def test_a_very_long_message_is_shortened_not_refused(db, make):
    got = inbound.receive(mail(email=make.user(locale="en").email, body="x" * 50_000))
    assert len(got.message.body) <= 10_000 and got.message.body.endswith("than 10000 characters]")


def test_staff_are_not_customers(db, make):
    staff = make.user(perm.CUSTOMER_SERVICE)
    with pytest.raises(inbound.NotACustomer):
        inbound.receive(mail(email=staff.email))


def test_a_ticket_of_another_customer_is_refused(db, make):
    ticket = make.ticket()
    with pytest.raises(inbound.WrongSender):
        inbound.receive(mail(email=make.user().email, ticket=ticket))


def test_a_phone_only_contact_gets_no_email(db):
    got = inbound.receive(
        Incoming(channel=MessageChannel.WHATSAPP, body="Halo", phone="+6281234567890", name="Ani")
    )
    db.session.commit()
    assert got.customer.contact_only and got.customer.phone == "+6281234567890"
    assert got.customer.email.endswith("@contact.invalid")
    assert db.session.scalar(select(func.count()).select_from(OutboxEmail)) == 0
    again = inbound.receive(
        Incoming(channel=MessageChannel.WHATSAPP, body="Halo lagi", phone="+6281234567890")
    )
    assert again.customer.id == got.customer.id


def _badges(html: str) -> list[str]:
    """The channel badges of a page, as a screen reader hears them."""
    import re

    found = re.findall(
        r'<span class="channel-badge channel-(\w+)">(.*?)</span>\s*(?:·|</div>)', html, re.S
    )
    return [(kind, re.sub(r"<[^>]+>", "", label).split()) for kind, label in found]


def test_the_desk_and_the_portal_show_each_messages_channel(db, make, login_as):
    from .portal_support import customer as portal_customer

    b, customer = portal_customer(login_as)
    ticket = make.ticket(customer=customer)
    inbound.receive(mail(email=customer.email, ticket=ticket, body="by mail"))
    db.session.commit()

    page = b.get(f"/tickets/{ticket.number}").get_data(as_text=True)
    assert _badges(page) == [
        ("portal", ["Channel:", "Portal"]),
        ("email", ["Channel:", "Email"]),
    ]
    assert 'aria-hidden="true"' in page.split('channel-email">', 1)[1].split("</span>", 2)[1]
    live = b.get(f"/tickets/{ticket.number}/messages", headers={"Accept": "application/json"}).json
    assert [m["channel"] for m in live["messages"]] == ["portal", "email"]
    assert "Email" in live["messages"][1]["channel_html"]

    staff, _ = login_as(perm.MASTER_ADMIN, locale="id")
    desk = staff.get(f"/admin/tickets/desk/{ticket.number}/").get_data(as_text=True)
    assert [kind for kind, _ in _badges(desk)] == ["portal", "email"]
    assert "Saluran:" in desk  # "Channel:" in the staff member's language

"""A registered customer claims the contact-only record WhatsApp made for their phone.

Someone who wrote on WhatsApp before having an account is a contact-only customer
(domain/contacts.py) known by phone. When an account gets that phone — at
registration, or later on the account page — the tickets of that contact follow it,
but only once the phone is proven, the way carebox proves an email address: a signed
link sent *to the phone* (on WhatsApp), which works once, for that account, while
signed in to it.

Guarantees:
- Typing a phone proves nothing: nothing moves until the link's page is submitted by
  the account it was sent for. Opening the link changes nothing (link scanners).
- The link is bound to the contact's `fs_uniquifier` and phone and to the account; a
  claim rotates the contact's uniquifier, so it works once.
- The link goes as a WhatsApp text while the contact's 24-hour window is open, else as
  the `verify_phone` template; with neither, nothing is sent (and the caller says so).
  Once per account, contact and uniquifier (the outbox `send_key`).
- Claiming moves the contact's tickets, messages, ticket and order events and orders
  to the account, and retires the contact (inactive, no phone), in one transaction.

Nothing here reads the request or commits.
"""

from __future__ import annotations

import uuid

from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import select, update

from ..extensions import db
from ..models import (
    Order,
    OrderEvent,
    OutboxWhatsApp,
    Ticket,
    TicketEvent,
    TicketMessage,
    User,
    WhatsAppSendKind,
    WhatsAppTemplateUse,
)
from ..models.base import utcnow
from . import DomainError
from .links import TokenState, absolute_url, sign, verify

PURPOSE = "claim_phone"


def phone_contact(user: User) -> User | None:
    """The contact-only record made for `user`'s phone, if there is one to claim."""
    if user.contact_only or not user.phone_key or not user.active:
        return None
    stmt = select(User).where(
        User.contact_phone_key == user.phone_key,
        User.contact_only,
        User.active,
        User.id != user.id,
    )
    return db.session.scalars(stmt).first()


def token_for(user: User, contact: User) -> str:
    return sign(
        PURPOSE,
        {"u": user.id, "c": contact.id, "f": contact.fs_uniquifier, "k": contact.contact_phone_key},
    )


def check(token: str, user: User) -> tuple[TokenState, User | None]:
    """The contact a claim link names, if `user` (signed in) may claim it now."""
    hours = current_app.config["CAREBOX_CLAIM_LINK_HOURS"]
    checked = verify(PURPOSE, token, hours / 24)
    if checked.state is not TokenState.VALID:
        return checked.state, None
    try:
        payload = checked.payload
        user_id, contact_id = int(payload["u"]), int(payload["c"])
        uniquifier, key = str(payload["f"]), str(payload["k"])
    except (KeyError, TypeError, ValueError):
        return TokenState.INVALID, None
    contact = db.session.get(User, contact_id)
    if (
        user_id != user.id
        or contact is None
        or not contact.contact_only
        or not contact.active
        or contact.fs_uniquifier != uniquifier
        or contact.contact_phone_key != key
        or user.phone_key != key
    ):
        return TokenState.INVALID, None
    return TokenState.VALID, contact


def offer(user: User, now=None) -> bool:
    """Send the claim link to the phone of the contact `user`'s phone names; whether sent.

    False when there is nothing to claim, the WhatsApp channel is off, or the link
    cannot go (the window closed and no `verify_phone` template is set up).
    """
    from ..channels.whatsapp import enabled
    from . import whatsapp_templates as templates
    from .notifications import whatsapp_window_ends
    from .whatsapp_outbox import enqueue_notification

    contact = phone_contact(user)
    if contact is None or not enabled():
        return False
    url = absolute_url(f"/account/phone/{token_for(user, contact)}")
    key = f"claim_phone:{user.id}:{contact.id}:{contact.fs_uniquifier}"
    if db.session.scalar(select(OutboxWhatsApp.id).where(OutboxWhatsApp.send_key == key)):
        return True  # sent already
    ends = whatsapp_window_ends(contact)
    if ends is not None and (now or utcnow()) < ends:
        with force_locale(user.locale or current_app.config["BABEL_DEFAULT_LOCALE"]):
            body = _(
                "carebox: to add your WhatsApp conversations to your account %(email)s, "
                "open this link while signed in: %(url)s",
                email=user.email,
                url=url,
            )
        db.session.add(
            OutboxWhatsApp(
                recipient=contact.contact_phone_key,
                kind=WhatsAppSendKind.TEXT,
                send_key=key,
                body=body,
                next_attempt_at=utcnow(),
            )
        )
        return True
    if templates.for_use(WhatsAppTemplateUse.VERIFY_PHONE, user.locale) is None:
        return False
    # The template goes to the phone itself; consent is asking for this link.
    proxy = _Recipient(contact.contact_phone_key, user.locale)
    row = enqueue_notification(
        proxy, WhatsAppTemplateUse.VERIFY_PHONE, key, {"tautan_klaim": url, "email": user.email}
    )
    return row is not None


class _Recipient:
    """Who a verification link goes to: the phone being proven (nobody's consent needed:
    its owner asked for the link by typing the phone)."""

    def __init__(self, phone_key: str, locale: str):
        self.phone_key, self.locale = phone_key, locale
        self.active = self.whatsapp_consent = True


def claim(contact: User, user: User, now=None) -> int:
    """Move `contact`'s tickets (and their messages and events) and orders to `user` and
    retire the contact; returns how many tickets moved. Flushes, never commits."""
    if not contact.contact_only or contact.id == user.id:
        raise DomainError(_("This WhatsApp number was already added to an account."))
    now = now or utcnow()
    moved = db.session.execute(
        update(Ticket).where(Ticket.customer_id == contact.id).values(customer_id=user.id)
    ).rowcount
    for model, column in (
        (TicketMessage, TicketMessage.author_id),
        (TicketEvent, TicketEvent.actor_id),
        (OrderEvent, OrderEvent.actor_id),
    ):
        db.session.execute(update(model).where(column == contact.id).values({column: user.id}))
    db.session.execute(
        update(Order).where(Order.customer_id == contact.id).values(customer_id=user.id)
    )
    contact.active = False
    contact.phone = None
    contact.contact_phone_key = None
    contact.fs_uniquifier = uuid.uuid4().hex
    contact.name = (contact.name or "")[:100]
    db.session.flush()
    db.session.expire_all()
    return moved

"""What the desk shows around a ticket: its messages, its timeline, its customer."""

from __future__ import annotations

from flask import g, get_template_attribute
from flask_babel import gettext as _
from flask_babel import ngettext
from markupsafe import Markup
from sqlalchemy import case, func, select
from sqlalchemy.orm import joinedload, load_only

from ..domain import permissions as perm
from ..extensions import db
from ..i18n import current_locale
from ..models import (
    Order,
    OutboxWhatsApp,
    Ticket,
    TicketAttachment,
    TicketEvent,
    TicketMessage,
    User,
)
from ..models.enums import OPEN_STATUSES

SHOWN_MESSAGES = 300  # a longer conversation shows its latest messages
SHOWN_EVENTS = 200


def _name_of(relationship):
    """Join the person a row names, reading only what the desk prints of them (their
    name or address); a row already in the session (the customer, the user) is reused."""
    return joinedload(relationship).load_only(User.id, User.name, User.email)


def channel_badge(channel) -> Markup:
    """_channel.html's badge of `channel`, drawn once per channel, language and request:
    the desk and its poll show one per message (the macro is ~60 % of a message's time)."""
    cache = g.setdefault("_channel_badges", {})
    key = (channel, current_locale())
    if key not in cache:
        cache[key] = get_template_attribute("_channel.html", "channel_badge")(channel)
    return cache[key]


def state_key(ticket: Ticket) -> str:
    """What the action buttons depend on; new messages alone do not change it."""
    parts = (ticket.status.value, ticket.priority.value, ticket.department_id, ticket.assignee_id)
    return "|".join(str(p) for p in parts)


def _delivery_of(relationship):
    """Join a WhatsApp send, reading only what the ticks print (its state and error)."""
    return joinedload(relationship).load_only(
        OutboxWhatsApp.status,
        OutboxWhatsApp.last_error,
        OutboxWhatsApp.delivery,
        OutboxWhatsApp.delivery_at,
        OutboxWhatsApp.delivery_error,
    )


# The loader options of the timeline's and the conversation's statements: the columns they
# print (the driver describes every column it is sent, ~40 Python calls each, and reads
# every cell), built once (options are immutable; building them is ~1,000 calls).
EVENT_OPTIONS = (
    load_only(
        TicketEvent.actor_id,
        TicketEvent.action,
        TicketEvent.from_status,
        TicketEvent.to_status,
        TicketEvent.note,
        TicketEvent.created_at,
    ),
    _name_of(TicketEvent.actor),
)
MESSAGE_OPTIONS = (
    load_only(
        TicketMessage.author_id,
        TicketMessage.from_staff,
        TicketMessage.by_system,
        TicketMessage.internal,
        TicketMessage.body,
        TicketMessage.channel,
        TicketMessage.created_at,
    ),
    _name_of(TicketMessage.author),
    joinedload(TicketMessage.attachments)
    .load_only(TicketAttachment.filename, TicketAttachment.content_type, TicketAttachment.size)
    .options(_delivery_of(TicketAttachment.whatsapp_send)),
    _delivery_of(TicketMessage.whatsapp_send),
)


def load_events(ticket: Ticket, limit: int = SHOWN_EVENTS) -> list[TicketEvent]:
    """The latest `limit` events, oldest first, with their actors."""
    rows = db.session.scalars(
        select(TicketEvent)
        .where(TicketEvent.ticket_id == ticket.id)
        .options(*EVENT_OPTIONS)
        .order_by(TicketEvent.id.desc())
        .limit(limit)
    )
    return list(reversed(list(rows)))


def load_messages(ticket: Ticket, after: int = 0, limit: int = SHOWN_MESSAGES) -> list:
    """Messages after `after` (oldest first), or the latest `limit` of the conversation.

    One statement whatever their number: the authors' names, the attachments and the
    WhatsApp delivery state come in the same join (the page of messages is a subquery)."""
    stmt = (
        select(TicketMessage)
        .where(TicketMessage.ticket_id == ticket.id, TicketMessage.id > after)
        .options(*MESSAGE_OPTIONS)
    )
    if after:
        return list(db.session.scalars(stmt.order_by(TicketMessage.id).limit(limit)).unique())
    rows = db.session.scalars(stmt.order_by(TicketMessage.id.desc()).limit(limit)).unique()
    return list(reversed(list(rows)))


def last_customer_message(messages: list, limit: int = SHOWN_MESSAGES):
    """The customer's latest message among the desk's loaded `messages` (the latest
    `limit`); `...` when it may be older than them (the caller then asks the database)."""
    for message in reversed(messages):
        if not message.from_staff:
            return message
    return ... if len(messages) >= limit else None


def customer_summary(ticket: Ticket, user) -> dict:
    """The customer beside the conversation: contact, loyalty segment, orders (for
    roles that read orders or customers) and earlier tickets inside the user's scope."""
    customer = ticket.customer
    summary = {"customer": customer, "segment": None, "orders": None, "order_count": None}
    if customer.profile is not None:
        summary["segment"] = customer.profile.segment
    ticket_count = (
        select(func.count())
        .select_from(Ticket)
        .where(
            perm.ticket_scope(user),
            Ticket.customer_id == customer.id,
            Ticket.id != ticket.id,
        )
        .scalar_subquery()
    )
    order_count = (
        select(func.count())
        .select_from(Order)
        .where(Order.customer_id == customer.id)
        .scalar_subquery()
    )
    reads_orders = perm.has(user, perm.ORDERS_READ) or perm.has(user, perm.CUSTOMERS_READ)
    # Both counts in one statement (each its own index range).
    counts = db.session.execute(
        select(ticket_count, order_count) if reads_orders else select(ticket_count)
    ).one()
    summary["ticket_count"] = counts[0]
    if reads_orders:
        summary["order_count"] = counts[1]
        summary["orders"] = list(
            db.session.scalars(
                select(Order)
                .where(Order.customer_id == customer.id)
                .order_by(Order.created_at.desc(), Order.id.desc())
                .limit(5)
            )
        )
    # Earlier tickets: only those this user may open anyway.
    summary["tickets"] = list(
        db.session.scalars(
            perm.visible_tickets(user)
            .where(Ticket.customer_id == customer.id, Ticket.id != ticket.id)
            .order_by(Ticket.created_at.desc(), Ticket.id.desc())
            .limit(5)
        )
    )
    return summary


def merge_candidates(ticket: Ticket, user, limit: int = 20) -> list[Ticket]:
    """The open tickets of the same customer `user` may see, that `ticket` could be merged
    into: those about the same parcel first, then the oldest (the usual survivor)."""
    same_parcel = Ticket.order_id == ticket.order_id if ticket.order_id else None
    stmt = perm.visible_tickets(user).where(
        Ticket.customer_id == ticket.customer_id,
        Ticket.id != ticket.id,
        Ticket.status.in_(OPEN_STATUSES),
    )
    # Oldest first in the order of ix_ticket_customer_created: ORDER BY id alone had
    # MariaDB walk the primary key past every other customer's tickets (1.7 s at 1M).
    order = [Ticket.created_at, Ticket.id]
    if same_parcel is not None:
        order.insert(0, case((same_parcel, 0), else_=1))
    return list(db.session.scalars(stmt.order_by(*order).limit(limit)))


def presence_text(people) -> str:
    """One line for the desk: who is replying, who else is viewing ("" when nobody)."""
    typing = [p.name for p in people if p.typing]
    viewing = [p.name for p in people if not p.typing]
    parts = []
    if typing:
        names = ", ".join(typing)
        parts.append(
            ngettext("%(names)s is replying…", "%(names)s are replying…", len(typing), names=names)
        )
    if viewing:
        parts.append(_("Also viewing: %(names)s", names=", ".join(viewing)))
    return " · ".join(parts)

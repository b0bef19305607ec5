"""A customer's message arrived on a channel: the one entry point every channel calls.

Email (`backoffice.channels.email_in`) and WhatsApp hand `receive` what they
understood of a message (who sent it, its text and files, the ticket a reply
token or a quoted message named); `receive` decides where it lands and posts it
through the lifecycle (`domain.tickets`), like a message typed on the portal.

Guarantees:
- Idempotent per (channel, external id): the same message delivered twice is
  one message. A message already stored is reported as DUPLICATE; two
  deliveries racing each other meet the unique index, and the loser's flush
  raises IntegrityError (its caller rolls back and finds the first).
- The sender is found by address or phone, or becomes a contact-only customer
  (`domain.contacts`). Staff are not customers: `NotACustomer` is raised and the
  channel decides (email holds it for review).
- Where it lands: the ticket the channel named; else, with `continue_open`, the
  customer's latest open ticket; else a new ticket of kind `question` (about the
  customer's own order when the text names its resi, `shipments.find_resis`). A
  finished ticket reopens within the lifecycle's 7-day window; after it, a new
  ticket opens that follows up the old one (same kind and order).
- Files go through the same content checks and size limit as portal uploads
  (`domain.attachments.store`). A refused file never loses the message: its
  name and the reason are added to the text, so staff and the customer see what
  did not come through. `Received.stored` lists the files written, for the
  caller to remove if it rolls back.
- Nothing here reads a request or commits.
"""

from __future__ import annotations

import enum
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import select

from ..extensions import db
from ..models import MessageChannel, Ticket, TicketAttachment, TicketKind, TicketMessage, User
from ..models.base import utcnow
from ..models.enums import OPEN_STATUSES
from . import DomainError, attachments, contacts, shipments
from . import permissions as perm
from . import tickets as lifecycle

MAX_FILES = 10  # files taken from one message; the rest are listed as refused


class NotACustomer(DomainError):
    """The sender is a staff account: a customer's channel cannot post as them."""


class WrongSender(DomainError):
    """The named ticket belongs to another customer."""


class Outcome(enum.StrEnum):
    POSTED = "posted"  # a new message in an open ticket
    REOPENED = "reopened"  # a finished ticket reopened with it
    FILED = "filed"  # a new ticket
    FOLLOW_UP = "follow_up"  # a new ticket following up a ticket finished too long ago
    DUPLICATE = "duplicate"  # this message was stored before


@dataclass
class IncomingFile:
    filename: str
    data: bytes


@dataclass
class Incoming:
    """What a channel understood of one message."""

    channel: MessageChannel
    body: str
    email: str | None = None
    phone: str | None = None
    name: str = ""  # the sender's display name, for a new contact
    subject: str = ""  # for a new ticket; default: the first line of the body
    external_id: str | None = None  # the channel's id of the message (Message-ID, wamid)
    files: Sequence[IncomingFile] = ()
    ticket: Ticket | None = None  # the ticket the channel identified (a reply token)
    continue_open: bool = False  # no ticket named: continue the latest open one
    locale: str = ""  # a new contact's language, when the channel knows it


@dataclass
class Received:
    outcome: Outcome
    ticket: Ticket
    message: TicketMessage
    customer: User
    new_customer: bool = False
    refused_files: list[tuple[str, str]] = field(default_factory=list)
    stored: list[TicketAttachment] = field(default_factory=list)


def find_message(channel: MessageChannel, external_id: str | None) -> TicketMessage | None:
    """The message a channel already stored under this id, if any."""
    if not external_id:
        return None
    stmt = select(TicketMessage).where(
        TicketMessage.channel == channel, TicketMessage.external_id == external_id
    )
    return db.session.scalars(stmt.limit(1)).first()


def _latest_open(customer: User) -> Ticket | None:
    stmt = (
        select(Ticket)
        .where(Ticket.customer_id == customer.id, Ticket.status.in_(OPEN_STATUSES))
        .order_by(Ticket.last_message_at.desc(), Ticket.id.desc())
        .limit(1)
    )
    return db.session.scalars(stmt).first()


def _store_files(files: Sequence[IncomingFile]):
    stored, refused = [], []
    for index, item in enumerate(files):
        name = item.filename or "attachment"
        if index >= MAX_FILES:
            refused.append((name, _("At most %(n)d files per message.", n=MAX_FILES)))
            continue
        try:
            stored.append(attachments.store(io.BytesIO(item.data), name))
        except DomainError as exc:
            refused.append((name, str(exc)))
    return stored, refused


def _text(body: str, refused: list[tuple[str, str]], has_files: bool) -> str:
    """The message as stored: the sender's words, then what did not come through."""
    body = (body or "").replace("\x00", "").strip()
    lines = [_("[Not attached: %(name)s — %(reason)s]", name=n, reason=r) for n, r in refused]
    if not body:
        body = _("(files only, no text)") if has_files or refused else ""
    text = "\n\n".join(part for part in (body, "\n".join(lines)) if part)
    if len(text) > lifecycle.MAX_BODY:
        cut = _("[… shortened: the message was longer than %(n)d characters]", n=lifecycle.MAX_BODY)
        text = text[: lifecycle.MAX_BODY - len(cut) - 2].rstrip() + "\n\n" + cut
    return text


def _subject(incoming: Incoming, body: str) -> str:
    subject = " ".join((incoming.subject or "").split())
    if not subject:
        subject = " ".join(body.split("\n", 1)[0].split())
    if not subject:
        subject = _("Message via %(channel)s", channel=incoming.channel.label)
    return subject[: lifecycle.MAX_SUBJECT]


def _customer(incoming: Incoming, author: User | None) -> tuple[User, bool]:
    if author is not None:
        return author, False
    customer, created = contacts.find_or_create_contact(
        email=incoming.email, phone=incoming.phone, name=incoming.name, locale=incoming.locale
    )
    if not perm.has(customer, perm.PORTAL):
        raise NotACustomer(_("Messages from staff accounts are not posted as a customer's."))
    return customer, created


def receive(incoming: Incoming, *, author: User | None = None, now: datetime | None = None):
    """Post a customer's message that arrived on `incoming.channel`; see the module's guarantees.

    `author` skips the sender lookup (a held message that staff accepted is posted
    as the ticket's customer). Raises DomainError when the message cannot be
    posted at all (empty, staff sender, another customer's ticket).
    """
    now = now or utcnow()
    existing = find_message(incoming.channel, incoming.external_id)
    if existing is not None:
        ticket = existing.ticket
        return Received(Outcome.DUPLICATE, ticket, existing, ticket.customer)
    customer, created = _customer(incoming, author)
    ticket = incoming.ticket
    for _hop in range(5):  # a reply to a merged ticket lands in the one it was merged into
        if ticket is None or ticket.merged_into_id is None:
            break
        ticket = ticket.merged_into
    if ticket is not None and ticket.customer_id != customer.id:
        raise WrongSender(_("This ticket belongs to another customer."))
    if ticket is None and incoming.continue_open:
        ticket = _latest_open(customer)

    with force_locale(customer.locale or None):
        stored, refused = _store_files(incoming.files)
        text = _text(incoming.body, refused, bool(stored))
        subject = _subject(incoming, text)
    common = {
        "attachments": stored,
        "channel": incoming.channel,
        "external_id": incoming.external_id,
        "now": now,
    }
    outcome = Outcome.POSTED
    follow_up_of = None
    if ticket is not None and ticket.finished_at is not None:
        if _may_reopen(ticket, customer, now):
            lifecycle.reopen(ticket, customer, note=incoming.channel.value, now=now)
            outcome = Outcome.REOPENED
        else:
            follow_up_of, ticket = ticket, None
    if ticket is None:
        order = follow_up_of.order if follow_up_of is not None else _order_by_resi(text, customer)
        ticket = lifecycle.file_ticket(
            customer,
            follow_up_of.kind if follow_up_of is not None else TicketKind.QUESTION,
            subject,
            text,
            order=order if order is not None and order.customer_id == customer.id else None,
            follow_up_of=follow_up_of,
            **common,
        )
        message = db.session.scalars(
            select(TicketMessage).where(TicketMessage.ticket_id == ticket.id).limit(1)
        ).one()
        outcome = Outcome.FOLLOW_UP if follow_up_of is not None else Outcome.FILED
    else:
        message = lifecycle.post_message(ticket, customer, text, **common)
    return Received(outcome, ticket, message, customer, created, refused, stored)


def _order_by_resi(text: str, customer: User):
    """The customer's own order whose resi the text names first (a resi of someone else's
    parcel links nothing: the ticket would show a stranger's shipment)."""
    for resi in shipments.find_resis(text)[:5]:
        order, _problem = shipments.customer_parcel(resi, customer)
        if order is not None:
            return order
    return None


def _may_reopen(ticket: Ticket, customer: User, now: datetime) -> bool:
    """Whether the customer may still reopen `ticket` (the lifecycle's 7-day window)."""
    return lifecycle.Action.REOPEN in lifecycle.allowed_actions(ticket, customer, now)

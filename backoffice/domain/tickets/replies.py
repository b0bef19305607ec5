"""The conversation: replies and internal notes, and the system's warning before it
finishes a waiting ticket."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from flask_babel import gettext as _

from ...extensions import db
from ...models import EventAction, MessageChannel, Ticket, TicketAttachment, TicketMessage, User
from ...models.base import utcnow
from .. import DomainError, clean_text, notifications, situations
from .. import permissions as perm
from .filing import MAX_BODY
from .routing import route_by_situation
from .transitions import SYSTEM, Action, F, R, _check, _flush, _move, _operation


@_operation
def post_message(
    ticket: Ticket,
    author: User,
    body: str,
    *,
    internal: bool = False,
    expected_version: int | None = None,
    attachments: Sequence[TicketAttachment] = (),
    channel: MessageChannel = MessageChannel.PORTAL,
    external_id: str | None = None,
    now: datetime | None = None,
    whatsapp_template=None,
) -> TicketMessage:
    """Add a public reply or an internal note, moving the status as docs/architecture.md §2 says.

    A staff reply moves progress/team to responded and sets the first response
    time; a customer reply moves responded back to team (progress without a
    department). Internal notes never change the status and are staff-only.
    `whatsapp_template` (domain.whatsapp_outbox.Chosen): a staff reply sent as that
    WhatsApp template (notifications.message_posted).
    """
    now = now or utcnow()
    is_customer = perm.owns_ticket(author, ticket) and not internal
    if internal:
        action, event = Action.NOTE, EventAction.NOTE
    elif is_customer:
        action, event = Action.CUSTOMER_REPLY, EventAction.CUSTOMER_REPLIED
    else:
        action, event = Action.STAFF_REPLY, EventAction.REPLIED
    _check(ticket, author, action, expected_version, now)
    if ticket.status is F and action is not Action.NOTE:
        raise DomainError(_("This ticket is finished. Reopen it to continue the conversation."))
    body = clean_text(body, MAX_BODY, _("Message"))
    msg = TicketMessage(
        ticket=ticket,
        author=author,
        body=body,
        internal=internal,
        from_staff=not is_customer,
        created_at=now,
        attachments=list(attachments),
        channel=channel,
        external_id=external_id,
    )
    db.session.add(msg)
    _move(ticket, author, action, event, now=now)
    # Notes bump the ticket's version too: a stale desk must not miss one.
    ticket.updated_at = now
    if action is not Action.NOTE:
        ticket.last_message_at = now
        ticket.last_from_staff = not is_customer
        ticket.auto_finish_warned_at = None  # the wait for the customer starts anew
        if action is Action.STAFF_REPLY and ticket.first_response_at is None:
            ticket.first_response_at = now
    before = ticket.situation
    if is_customer and any(situations.is_photo(a) for a in attachments):
        situations.photo_added(ticket, now)
    _flush(ticket, now)
    notifications.message_posted(msg, whatsapp_template=whatsapp_template)
    if ticket.situation != before:
        route_by_situation([ticket.id], now)  # e.g. now damaged: the rule on it applies
    return msg


@_operation
def warn_before_finish(ticket: Ticket, body: str, *, now: datetime | None = None) -> TicketMessage:
    """SYSTEM tells the customer of a waiting ticket that it will be finished soon:
    `body` (in their language) becomes a public message of the conversation, sent on
    their channel like any reply (notifications.message_posted), with a FINISH_WARNED
    event. It keeps the status and the time the wait started (last_message_at)."""
    now = now or utcnow()
    _check(ticket, SYSTEM, Action.FINISH_WARNING, None, now)
    if ticket.status is not R:
        raise DomainError(_("Only a ticket waiting for the customer can be warned."))
    msg = TicketMessage(
        ticket=ticket,
        author=None,
        by_system=True,
        from_staff=True,
        body=clean_text(body, MAX_BODY, _("Message")),
        created_at=now,
        channel=MessageChannel.PORTAL,
    )
    db.session.add(msg)
    _move(ticket, SYSTEM, Action.FINISH_WARNING, EventAction.FINISH_WARNED, now=now)
    ticket.auto_finish_warned_at = now
    ticket.updated_at = now
    _flush(ticket, now)
    notifications.message_posted(msg)
    return msg

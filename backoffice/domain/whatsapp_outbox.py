"""Queueing a staff reply for WhatsApp: a row in `outbox_whatsapp`, in the reply's transaction.

Like `domain.outbox` for email, nothing here talks to the network:
`channels/whatsapp_out.py` sends the rows. `enqueue_reply` only adds to the
session, so the WhatsApp message exists exactly when the reply is committed,
and there is one row per ticket message (a unique index), so it is never
queued twice.
"""

from __future__ import annotations

import json

from ..extensions import db
from ..models import MessageChannel, OutboxWhatsApp, TicketMessage, WhatsAppSendKind
from ..models.base import utcnow

MAX_TEXT = 4096  # the Cloud API's limit for a text message's body
MAX_PARAM = 900  # a template parameter: one line, well under the API's limit


def one_line(text: str, limit: int = MAX_PARAM) -> str:
    """A template parameter: the API refuses newlines, tabs and runs of spaces in one."""
    flat = " ".join(str(text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def _text(body: str) -> str:
    return body if len(body) <= MAX_TEXT else body[: MAX_TEXT - 1].rstrip() + "…"


def template_fields(message: TicketMessage, template: str) -> dict:
    """The template, its language (the customer's) and body parameters for a staff reply."""
    ticket = message.ticket
    customer = ticket.customer
    return {
        "template_name": template,
        "template_language": (customer.locale if customer is not None else None) or "id",
        "template_params": json.dumps([ticket.number or "", one_line(message.body)]),
    }


def enqueue_reply(message: TicketMessage, route) -> OutboxWhatsApp:
    """Queue `message` for the ticket's customer on WhatsApp as `route` (notifications) says.

    The message is recorded as written on WhatsApp, so the desk shows where it went.
    """
    ticket = message.ticket
    row = OutboxWhatsApp(
        message=message,
        ticket=ticket,
        recipient=ticket.customer.phone_key,
        kind=route.kind,
        body=_text(message.body),
        next_attempt_at=utcnow(),
    )
    if route.kind is WhatsAppSendKind.TEMPLATE:
        for key, value in template_fields(message, route.template).items():
            setattr(row, key, value)
    message.channel = MessageChannel.WHATSAPP
    db.session.add(row)
    return row

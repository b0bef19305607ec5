"""Queueing for WhatsApp: rows in `outbox_whatsapp`, in the transaction of what they report.

Like `domain.outbox` for email, nothing here talks to the network:
`channels/whatsapp_out.py` sends the rows. Every function only adds to the
session, so a WhatsApp message exists exactly when its cause is committed, and
each row has a unique key, so nothing is queued twice:
- a staff reply: one row per ticket message (`message_id`);
- each attachment of a staff reply inside the window: one media row per
  attachment (`attachment_id`), uploaded to the Graph API when sent;
- a notification sent as a template: `send_key` (`enqueue_notification`); a
  second call with the same key adds nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from flask_babel import gettext as _
from sqlalchemy import select

from ..extensions import db
from ..models import (
    MessageChannel,
    OutboxWhatsApp,
    Ticket,
    TicketMessage,
    User,
    WhatsAppMediaKind,
    WhatsAppSendKind,
    WhatsAppTemplateUse,
)
from ..models.base import utcnow
from . import DomainError
from . import whatsapp_templates as templates
from .whatsapp_templates import Template, one_line

MAX_TEXT = 4096  # the Cloud API's limit for a text message's body
MAX_PARAM = templates.MAX_PARAM


@dataclass
class Chosen:
    """A template staff chose at the desk, with the parameters they filled."""

    template: Template
    params: list[str]


def _text(body: str) -> str:
    return body if len(body) <= MAX_TEXT else body[: MAX_TEXT - 1].rstrip() + "…"


def _language(ticket: Ticket) -> str:
    customer = ticket.customer
    return (customer.locale if customer is not None else None) or "id"


def reply_template(ticket: Ticket) -> Template | None:
    """The template a staff reply on `ticket` goes out as outside the window, if any."""
    return templates.for_use(WhatsAppTemplateUse.REPLY, _language(ticket))


def template_fields(message: TicketMessage, template: Template | str | None = None) -> dict:
    """The outbox columns of `message` sent as `template` (default: the reply template).

    Its parameters come from the ticket's known fields, `balasan` being the reply.
    A bare name (the old setting) takes the reply template's parameters.
    """
    ticket = message.ticket
    if isinstance(template, str):
        template = Template(template, _language(ticket), list(templates.REPLY_PARAMS))
    template = template or reply_template(ticket)
    if template is None:
        raise DomainError(_("No WhatsApp template is set up for replies."))
    values = templates.known_values(ticket, message.author, balasan=message.body)
    return _columns(template, templates.fill(template, values))


def _columns(template: Template, params: list[str]) -> dict:
    return {
        "template_name": template.name,
        "template_language": template.language or "id",
        "template_params": json.dumps([one_line(p) for p in params], ensure_ascii=False),
    }


def enqueue_reply(message: TicketMessage, route, chosen: Chosen | None = None) -> OutboxWhatsApp:
    """Queue `message` for the ticket's customer on WhatsApp as `route` (notifications) says.

    `chosen`: the template and parameters staff picked at the desk (sent as they are).
    Inside the window the reply's attachments follow as media messages. The message
    is recorded as written on WhatsApp, so the desk shows where it went.
    """
    ticket = message.ticket
    kind = WhatsAppSendKind.TEMPLATE if chosen is not None else route.kind
    row = OutboxWhatsApp(
        message=message,
        ticket=ticket,
        recipient=ticket.customer.phone_key,
        kind=kind,
        body=_text(message.body),
        next_attempt_at=utcnow(),
    )
    if chosen is not None:
        fields = _columns(chosen.template, chosen.params)
    elif kind is WhatsAppSendKind.TEMPLATE:
        fields = template_fields(message, getattr(route, "spec", None) or route.template)
    else:
        fields = {}
    for key, value in fields.items():
        setattr(row, key, value)
    message.channel = MessageChannel.WHATSAPP
    db.session.add(row)
    if kind is WhatsAppSendKind.TEXT:
        for attachment in message.attachments:  # after the text: the rows go out in id order
            db.session.add(
                OutboxWhatsApp(
                    ticket=ticket,
                    attachment=attachment,
                    recipient=ticket.customer.phone_key,
                    kind=WhatsAppSendKind.TEXT,
                    media_kind=media_kind(attachment.content_type),
                    body=attachment.filename,
                    next_attempt_at=utcnow(),
                )
            )
    return row


def media_kind(content_type: str) -> WhatsAppMediaKind:
    """How WhatsApp shows an attachment: photos as images, PDFs as documents."""
    if content_type.startswith("image/"):
        return WhatsAppMediaKind.IMAGE
    return WhatsAppMediaKind.DOCUMENT


def enqueue_notification(
    customer: User,
    use: WhatsAppTemplateUse,
    key: str,
    values: dict[str, str | None],
    ticket: Ticket | None = None,
) -> OutboxWhatsApp | None:
    """Queue the `use` template for `customer`, once per `key`; None when not sent.

    Not sent: no template for that use, no phone, no consent, or `key` already queued
    (in the database or earlier in this transaction).
    """
    if not (customer.active and customer.whatsapp_consent and customer.phone_key):
        return None
    template = templates.for_use(use, customer.locale)
    if template is None:
        return None
    key = key[:255]
    if _queued(key):
        return None
    params = templates.fill(template, values)
    row = OutboxWhatsApp(
        ticket=ticket,
        recipient=customer.phone_key,
        kind=WhatsAppSendKind.TEMPLATE,
        send_key=key,
        body=templates.render(template, params),
        next_attempt_at=utcnow(),
        **_columns(template, params),
    )
    db.session.add(row)
    return row


def _queued(key: str) -> bool:
    """Whether a row with this send key is queued (in the database or this transaction)."""
    pending = any(isinstance(obj, OutboxWhatsApp) and obj.send_key == key for obj in db.session.new)
    queued = select(OutboxWhatsApp.id).where(OutboxWhatsApp.send_key == key)
    return pending or db.session.scalar(queued) is not None


def enqueue_notice(ticket: Ticket, route, key: str, text: str) -> OutboxWhatsApp | None:
    """Queue carebox's own notice `text` about `ticket` for its customer on WhatsApp, the
    way `route` (notifications.reply_route, channel WhatsApp) says, once per `key`:
    free text inside the 24-hour window, else the reply template with `text` as the
    reply. None when `key` was queued already.

    Like a staff reply (and the auto-finish warning), it answers the customer where
    they write, so it needs no notification choice in the profile."""
    key = key[:255]
    if _queued(key):
        return None
    row = OutboxWhatsApp(
        ticket=ticket,
        recipient=ticket.customer.phone_key,
        kind=route.kind,
        send_key=key,
        body=_text(text),
        next_attempt_at=utcnow(),
    )
    if route.kind is WhatsAppSendKind.TEMPLATE:
        template = getattr(route, "spec", None) or reply_template(ticket)
        if template is None:
            raise DomainError(_("No WhatsApp template is set up for replies."))
        values = templates.known_values(ticket, None, balasan=text)
        for name, value in _columns(template, templates.fill(template, values)).items():
            setattr(row, name, value)
    db.session.add(row)
    return row


def enqueue_notifications(
    use: WhatsAppTemplateUse,
    items: list[tuple[User, str, dict[str, str | None]]],
) -> int:
    """`enqueue_notification` for many (customer, key, values) at once, for a batch
    (a tracking import): the template looked up once per language, the keys already
    queued found in one query per 500; how many were queued."""
    items = [
        (c, key[:255], v) for c, key, v in items if c.active and c.whatsapp_consent and c.phone_key
    ]
    by_language: dict[str | None, Template | None] = {}
    keys = [key for _c, key, _v in items]
    taken: set[str] = set()
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        taken |= set(
            db.session.scalars(
                select(OutboxWhatsApp.send_key).where(OutboxWhatsApp.send_key.in_(chunk))
            )
        )
    queued = 0
    for customer, key, values in items:
        if key in taken:
            continue
        if customer.locale not in by_language:
            by_language[customer.locale] = templates.for_use(use, customer.locale)
        template = by_language[customer.locale]
        if template is None:
            continue
        taken.add(key)
        params = templates.fill(template, values)
        db.session.add(
            OutboxWhatsApp(
                recipient=customer.phone_key,
                kind=WhatsAppSendKind.TEMPLATE,
                send_key=key,
                body=templates.render(template, params),
                next_attempt_at=utcnow(),
                **_columns(template, params),
            )
        )
        queued += 1
    return queued


def chosen_template(template_id, given: list[str]) -> Chosen:
    """The desk's choice: an active template and its filled parameters (DomainError if not)."""
    row = templates.get_active(template_id)
    if row is None:
        raise DomainError(_("Choose one of the approved templates."))
    template = templates.as_template(row)
    return Chosen(template, templates.checked_params(template, given))

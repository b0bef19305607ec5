"""WhatsApp: the raw webhook deliveries, the queue of their items, and the outgoing messages."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, backref, mapped_column, relationship

from ..extensions import db
from .base import enum_column, utcnow
from .enums import (
    InboxStatus,
    OutboxStatus,
    WhatsAppDelivery,
    WhatsAppItemKind,
    WhatsAppMediaKind,
    WhatsAppSendKind,
    WhatsAppTemplateUse,
)
from .ticket import Ticket, TicketAttachment, TicketMessage

# MEDIUMTEXT on MariaDB (a delivery can batch many items; TEXT stops at 64 KB).
LONG_TEXT = Text(16_777_215)


class WhatsAppWebhook(db.Model):
    """One webhook delivery, stored as received (the raw body) before anything reads it.

    A delivery Meta repeats byte for byte is stored once (`body_sha256`).
    `problem` says why nothing could be taken out of a signed body.
    """

    __tablename__ = "whatsapp_webhook"

    id: Mapped[int] = mapped_column(primary_key=True)
    body_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    body: Mapped[str] = mapped_column(LONG_TEXT)
    problem: Mapped[str | None] = mapped_column(String(255))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class WhatsAppInbox(db.Model):
    """One item of a delivery (a message or a status), queued for `carebox whatsapp process`.

    `item_key` makes the queue idempotent: `message:<wamid>` or
    `status:<wamid>:<status>`. Claimed like the outbox: `processing` with a
    `claim_token`, and `next_attempt_at` the claim's deadline.
    """

    __tablename__ = "whatsapp_inbox"
    __table_args__ = (
        Index("ix_whatsapp_inbox_due", "status", "next_attempt_at"),
        CheckConstraint(
            "status <> 'processing' OR claim_token IS NOT NULL", name="processing_claimed"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    webhook_id: Mapped[int | None] = mapped_column(
        ForeignKey("whatsapp_webhook.id", ondelete="SET NULL"), index=True
    )
    item_key: Mapped[str] = mapped_column(String(255), unique=True)
    kind: Mapped[WhatsAppItemKind] = mapped_column(enum_column(WhatsAppItemKind, "wa_item_kind"))
    payload: Mapped[str] = mapped_column(LONG_TEXT)  # JSON: the item, its contact and metadata
    status: Mapped[InboxStatus] = mapped_column(
        enum_column(InboxStatus, "wa_inbox_status"), default=InboxStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    claim_token: Mapped[str | None] = mapped_column(String(32))
    claimed_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    processed_at: Mapped[datetime | None]


class WhatsAppTemplate(db.Model):
    """An approved message template (approved by Meta, entered here by the master admin).

    `parameters` is the JSON list of the body's parameters in order ({{1}}, {{2}}, …),
    each a label; a label that names a known field (domain/whatsapp_templates.py
    FIELDS) is filled from the ticket. `body` is the approved text, kept so the
    desk and the portal show what the customer read.
    """

    __tablename__ = "whatsapp_template"
    __table_args__ = (UniqueConstraint("name", "language", name="uq_whatsapp_template_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(512))
    language: Mapped[str] = mapped_column(String(16))
    use: Mapped[WhatsAppTemplateUse] = mapped_column(
        enum_column(WhatsAppTemplateUse, "wa_template_use"), default=WhatsAppTemplateUse.DESK
    )
    parameters: Mapped[str] = mapped_column(Text, default="[]")
    body: Mapped[str] = mapped_column(Text, default="")
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    def __str__(self) -> str:
        return f"{self.name} ({self.language})"


class OutboxWhatsApp(db.Model):
    """Something to send on WhatsApp, queued once.

    A staff reply is one row per ticket message (`message_id`, unique). A staff
    attachment is one row per attachment (`attachment_id`, unique; `media_kind`
    says image or document, `media_id` the id the upload got). A notification
    sent as a template has no message: `send_key` (unique) names it, e.g.
    `finished:<ticket>:<time>`, so it is never queued twice.

    Sent by `carebox whatsapp process` (backoffice/channels/whatsapp_out.py).
    `wa_message_id` is the id the Cloud API gave it; the status webhooks move
    `delivery` forward (sent → delivered → read, or failed).
    """

    __tablename__ = "outbox_whatsapp"
    __table_args__ = (
        Index("ix_outbox_whatsapp_due", "status", "next_attempt_at"),
        CheckConstraint("status <> 'sent' OR sent_at IS NOT NULL", name="sent_has_time"),
        CheckConstraint("status <> 'sending' OR claim_token IS NOT NULL", name="sending_claimed"),
        CheckConstraint("kind <> 'template' OR template_name IS NOT NULL", name="template_named"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int | None] = mapped_column(
        ForeignKey("ticket_message.id", ondelete="CASCADE"), unique=True
    )
    ticket_id: Mapped[int | None] = mapped_column(
        ForeignKey("ticket.id", ondelete="CASCADE"), index=True
    )
    attachment_id: Mapped[int | None] = mapped_column(
        ForeignKey("ticket_attachment.id", ondelete="CASCADE"), unique=True
    )
    send_key: Mapped[str | None] = mapped_column(String(255), unique=True)
    media_kind: Mapped[WhatsAppMediaKind | None] = mapped_column(
        enum_column(WhatsAppMediaKind, "wa_media_kind")
    )
    media_id: Mapped[str | None] = mapped_column(String(255))
    recipient: Mapped[str] = mapped_column(String(20))  # E.164
    kind: Mapped[WhatsAppSendKind] = mapped_column(enum_column(WhatsAppSendKind, "wa_send_kind"))
    body: Mapped[str] = mapped_column(Text)
    template_name: Mapped[str | None] = mapped_column(String(512))
    template_language: Mapped[str | None] = mapped_column(String(16))
    template_params: Mapped[str | None] = mapped_column(Text)  # JSON list of body parameters
    status: Mapped[OutboxStatus] = mapped_column(
        enum_column(OutboxStatus, "wa_outbox_status"), default=OutboxStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    claim_token: Mapped[str | None] = mapped_column(String(32))
    claimed_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
    wa_message_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    delivery: Mapped[WhatsAppDelivery | None] = mapped_column(
        enum_column(WhatsAppDelivery, "wa_delivery")
    )
    delivery_at: Mapped[datetime | None]
    delivery_error: Mapped[str | None] = mapped_column(Text)

    # `TicketMessage.whatsapp_send`: the desk shows each reply's ticks without a query per message.
    message: Mapped[TicketMessage | None] = relationship(
        backref=backref("whatsapp_send", uselist=False, lazy="selectin", viewonly=True)
    )
    ticket: Mapped[Ticket | None] = relationship()
    attachment: Mapped[TicketAttachment | None] = relationship(
        backref=backref("whatsapp_send", uselist=False, lazy="selectin", viewonly=True)
    )

"""The email outbox: every email is a row written with the change that caused it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .base import enum_column, utcnow
from .enums import OutboxStatus


class OutboxEmail(db.Model):
    """One email to deliver. `backoffice.channels.mailer` claims, sends and records it.

    While a worker holds a row it is `sending` with a `claim_token`, and
    `next_attempt_at` is the claim's deadline: a row whose worker died becomes
    due again then, so one index serves both "pending and due" and "stale claim".
    """

    __tablename__ = "outbox_email"
    __table_args__ = (
        Index("ix_outbox_status_due", "status", "next_attempt_at"),
        CheckConstraint("status <> 'sent' OR sent_at IS NOT NULL", name="sent_has_time"),
        CheckConstraint("status <> 'sending' OR claim_token IS NOT NULL", name="sending_claimed"),
        CheckConstraint("body_text IS NOT NULL OR template IS NOT NULL", name="body_or_template"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    recipient: Mapped[str] = mapped_column(String(255))
    subject: Mapped[str] = mapped_column(String(255))
    # None until the worker renders `template` (then the text and HTML it sent).
    body_text: Mapped[str | None] = mapped_column(Text)
    body_html: Mapped[str | None] = mapped_column(Text)
    category: Mapped[str] = mapped_column(String(40), default="transactional")
    status: Mapped[OutboxStatus] = mapped_column(
        enum_column(OutboxStatus, "outbox_status"), default=OutboxStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
    # Added by the outbox worker (issue 5):
    sender: Mapped[str | None] = mapped_column(String(255))
    message_id: Mapped[str | None] = mapped_column(String(255))
    headers: Mapped[str | None] = mapped_column(Text)  # JSON object of extra headers
    claim_token: Mapped[str | None] = mapped_column(String(32), index=True)
    claimed_at: Mapped[datetime | None]
    announcement_send_id: Mapped[int | None] = mapped_column(
        ForeignKey("announcement_send.id", ondelete="SET NULL"), index=True
    )
    # What the email is about, once: a second row with the same key is never queued
    # (e.g. `shipment:<order id>:<event>:<occurred_at>`, one email per tracking event).
    dedupe_key: Mapped[str | None] = mapped_column(String(80), unique=True)
    # Queued unrendered (domain/outbox.py enqueue_template): `email/<template>.txt/.html`
    # in `lang` with `context` (JSON), rendered by the worker that sends it.
    template: Mapped[str | None] = mapped_column(String(60))
    lang: Mapped[str | None] = mapped_column(String(8))
    context: Mapped[str | None] = mapped_column(Text)

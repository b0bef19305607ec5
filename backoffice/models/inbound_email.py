"""Inbound email: every message the mail server handed over, stored raw before anything else."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, LargeBinary, String, Text
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .base import enum_column, utcnow
from .enums import InboundReason, InboundStatus
from .ticket import Ticket, TicketMessage
from .user import User

# MariaDB's BLOB holds 64 KB; a mail with attachments needs LONGBLOB.
RawMail = LargeBinary().with_variant(mysql.LONGBLOB(), "mysql", "mariadb")


class InboundEmail(db.Model):
    """One delivered email. `backoffice.channels.email_in` stores it, then processes it.

    `dedup_key` (SHA-256 of the Message-ID, or of the raw bytes when there is none)
    is unique: the same message delivered twice is one row, processed once.
    """

    __tablename__ = "inbound_email"
    __table_args__ = (
        Index("ix_inbound_status_received", "status", "received_at"),
        Index("ix_inbound_sender_received", "sender", "received_at"),
        CheckConstraint(
            "status = 'received' OR processed_at IS NOT NULL", name="processed_has_time"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    dedup_key: Mapped[str] = mapped_column(String(64), unique=True)
    message_id: Mapped[str | None] = mapped_column(String(255))
    mail_from: Mapped[str] = mapped_column(String(255), default="")  # the envelope's
    recipients: Mapped[str] = mapped_column(Text, default="")  # the envelope's, one a line
    sender: Mapped[str | None] = mapped_column(String(255))  # From:, lower case
    subject: Mapped[str] = mapped_column(String(255), default="")
    size: Mapped[int] = mapped_column(default=0)
    raw = mapped_column(RawMail, nullable=False)
    status: Mapped[InboundStatus] = mapped_column(
        enum_column(InboundStatus, "inbound_status"), default=InboundStatus.RECEIVED
    )
    reason: Mapped[InboundReason | None] = mapped_column(
        enum_column(InboundReason, "inbound_reason")
    )
    ticket_id: Mapped[int | None] = mapped_column(
        ForeignKey("ticket.id", ondelete="SET NULL"), index=True
    )
    ticket_message_id: Mapped[int | None] = mapped_column(
        ForeignKey("ticket_message.id", ondelete="SET NULL")
    )
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    processed_at: Mapped[datetime | None]
    reviewed_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    reviewed_at: Mapped[datetime | None]

    ticket: Mapped[Ticket | None] = relationship()
    ticket_message: Mapped[TicketMessage | None] = relationship()
    reviewed_by: Mapped[User | None] = relationship()

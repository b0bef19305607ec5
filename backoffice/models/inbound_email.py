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

# MariaDB's BLOB holds 64 KB; MEDIUMBLOB (16 MB) holds a chunk.
RawChunk = LargeBinary().with_variant(mysql.MEDIUMBLOB(), "mysql", "mariadb")
# The raw message is stored in chunks of this size: PyMySQL sends bytes as hex, so one
# statement carries twice the data, and MariaDB refuses statements over its
# max_allowed_packet (16 MB by default). 4 MB chunks fit any default server.
CHUNK_BYTES = 4 * 1024 * 1024


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
    chunks: Mapped[list[InboundEmailChunk]] = relationship(
        cascade="all, delete-orphan", order_by="InboundEmailChunk.seq", lazy="select"
    )

    @property
    def raw(self) -> bytes:
        """The message exactly as delivered."""
        return b"".join(chunk.data for chunk in self.chunks)

    @raw.setter
    def raw(self, data: bytes) -> None:
        self.chunks = [
            InboundEmailChunk(seq=n, data=data[start : start + CHUNK_BYTES])
            for n, start in enumerate(range(0, max(len(data), 1), CHUNK_BYTES))
        ]
        self.size = len(data)


class InboundEmailChunk(db.Model):
    """A piece of a raw inbound message (see CHUNK_BYTES)."""

    __tablename__ = "inbound_email_chunk"

    inbound_email_id: Mapped[int] = mapped_column(
        ForeignKey("inbound_email.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    data = mapped_column(RawChunk, nullable=False)

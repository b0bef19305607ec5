"""Agent notifications (docs/architecture.md §9): a customer replied on a ticket assigned
to me; a ticket reached my department. Counted on the home page and in the menu, read
when the agent opens the ticket, optionally mailed in a digest (domain/staff_notices.py)."""

from __future__ import annotations

from datetime import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import ForeignKey, Index
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .base import enum_column, utcnow
from .enums import LabelledEnum


class NoticeKind(LabelledEnum):
    CUSTOMER_REPLY = "customer_reply"  # on a ticket assigned to the recipient
    DEPARTMENT = "department"  # a ticket reached the recipient's department

    @classmethod
    def _labels(cls):
        return {
            cls.CUSTOMER_REPLY: _l("The customer replied"),
            cls.DEPARTMENT: _l("New ticket for your department"),
        }


class StaffNotice(db.Model):
    """One thing one staff member should look at; at most one unread per (user, ticket,
    kind): a second customer reply refreshes the unread one instead of adding a row."""

    __tablename__ = "staff_notice"
    __table_args__ = (
        # The menu's count and the desk's "mark read": the user's unread ones.
        Index("ix_staff_notice_user_read", "user_id", "read_at", "ticket_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"))
    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id", ondelete="CASCADE"), index=True)
    kind: Mapped[NoticeKind] = mapped_column(enum_column(NoticeKind, "notice_kind"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    read_at: Mapped[datetime | None]
    # Set when a digest email carrying it was queued (in the same transaction): never twice.
    emailed_at: Mapped[datetime | None]

    user = relationship("User")
    ticket = relationship("Ticket")

"""The send log of announcements: who was targeted, and what became of the emails."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .announcement import Announcement
from .base import utcnow
from .user import User


class AnnouncementSend(db.Model):
    """One emailing of an announcement to an audience.

    `targeted` is fixed when the emails are queued; the outbox worker counts
    `sent` and `failed` (given up) as it goes, and the unsubscribe link counts
    `unsubscribed` — each in the same transaction as the change it counts.
    """

    __tablename__ = "announcement_send"
    __table_args__ = (Index("ix_announcement_send_ann_created", "announcement_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    announcement_id: Mapped[int] = mapped_column(ForeignKey("announcement.id", ondelete="CASCADE"))
    audience_kind: Mapped[str] = mapped_column(String(20))  # see domain.announcements.AudienceKind
    audience_value: Mapped[str | None] = mapped_column(String(40))
    audience_label: Mapped[str] = mapped_column(String(255), default="")
    targeted: Mapped[int] = mapped_column(default=0)
    sent: Mapped[int] = mapped_column(default=0)
    failed: Mapped[int] = mapped_column(default=0)
    unsubscribed: Mapped[int] = mapped_column(default=0)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    announcement: Mapped[Announcement] = relationship()
    actor: Mapped[User | None] = relationship()

    @property
    def pending(self) -> int:
        """Queued emails not yet sent nor given up."""
        return max(0, self.targeted - self.sent - self.failed)

    def __str__(self) -> str:
        return f"{self.announcement} → {self.audience_label}"

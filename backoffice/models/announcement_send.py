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

    `targeted` is the audience the admin confirmed. The outbox worker then
    queues the emails a chunk at a time in recipient-id order (`queued`, up to
    user id `queued_through`; `queued_at` once the audience is exhausted), counts
    `sent` and `failed` (given up) as it delivers them, and the unsubscribe link
    counts `unsubscribed` — each in the same transaction as the change it counts.
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
    queued: Mapped[int] = mapped_column(default=0, server_default="0")
    queued_through: Mapped[int] = mapped_column(default=0, server_default="0")
    queued_at: Mapped[datetime | None]
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    announcement: Mapped[Announcement] = relationship()
    actor: Mapped[User | None] = relationship()

    @property
    def queueing(self) -> bool:
        """The worker has not yet queued every recipient."""
        return self.queued_at is None

    @property
    def pending(self) -> int:
        """Emails not yet sent nor given up (while queueing, counted against the audience)."""
        expected = max(self.targeted, self.queued) if self.queueing else self.queued
        return max(0, expected - self.sent - self.failed)

    def __str__(self) -> str:
        return f"{self.announcement} → {self.audience_label}"

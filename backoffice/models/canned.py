"""Canned replies: texts an agent inserts into the reply box (docs/architecture.md §9)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, false, true
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .base import utcnow
from .department import Department
from .user import User


class CannedReply(db.Model):
    """Shared with everyone (no owner, no department), with one department, or
    personal (an owner). Who may use and manage which: domain/canned.py."""

    __tablename__ = "canned_reply"
    __table_args__ = (
        CheckConstraint(
            "owner_id IS NULL OR department_id IS NULL", name="personal_has_no_department"
        ),
        # The desk's picker: a user's personal ones, then the shared ones.
        Index("ix_canned_owner_shortcut", "owner_id", "shortcut"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(120))
    # What follows "/" in the reply box: lower-case letters, digits and "-".
    shortcut: Mapped[str] = mapped_column(String(40))
    body_id: Mapped[str] = mapped_column(Text)
    body_en: Mapped[str | None] = mapped_column(Text)
    owner_id: Mapped[int | None] = mapped_column(
        ForeignKey("user.id", ondelete="CASCADE"), index=True
    )
    department_id: Mapped[int | None] = mapped_column(
        ForeignKey("department.id", ondelete="CASCADE"), index=True
    )
    active: Mapped[bool] = mapped_column(default=True, server_default=true())
    usage_count: Mapped[int] = mapped_column(default=0, server_default="0")
    seeded: Mapped[bool] = mapped_column(default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    owner: Mapped[User | None] = relationship()
    department: Mapped[Department | None] = relationship()

    def __str__(self) -> str:
        return f"/{self.shortcut} — {self.title}"

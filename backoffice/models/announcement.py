"""Announcements shown on the portal home and (later) sent to an audience."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .base import enum_column, utcnow
from .catalog import Product
from .enums import AnnouncementKind


class Announcement(db.Model):
    __tablename__ = "announcement"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[AnnouncementKind] = mapped_column(
        enum_column(AnnouncementKind, "announcement_kind"), default=AnnouncementKind.NEWS
    )
    title_id: Mapped[str] = mapped_column(String(200))
    body_id: Mapped[str] = mapped_column(Text)
    title_en: Mapped[str] = mapped_column(String(200), default="")
    body_en: Mapped[str] = mapped_column(Text, default="")
    product_id: Mapped[int | None] = mapped_column(ForeignKey("product.id", ondelete="SET NULL"))
    published: Mapped[bool] = mapped_column(default=False, index=True)
    published_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Confirmed sends: every confirmation increments it, so two confirmations racing on
    # two Galera nodes write the same row and certification lets one through (a lock
    # would bind one node only). domain.announcements.previous_sends(lock=True).
    send_count: Mapped[int] = mapped_column(default=0, server_default="0")

    product: Mapped[Product | None] = relationship()

    def localized(self, field: str, lang: str) -> str:
        if lang == "en" and getattr(self, f"{field}_en"):
            return getattr(self, f"{field}_en")
        return getattr(self, f"{field}_id")

    def __str__(self) -> str:
        return self.title_id

"""A parcel's tracking events: appended, never edited (domain/shipments/recording.py
writes them)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    Integer,
    SmallInteger,
    String,
    UniqueConstraint,
    event,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .base import enum_column, utcnow
from .enums import TrackingEventKind, TrackingSource


class TrackingEvent(db.Model):
    __tablename__ = "tracking_event"
    __table_args__ = (
        # One event per (parcel, moment, kind): what makes imports and the API idempotent.
        # Its leading columns are also the index of a resi's timeline (order_id, occurred_at).
        UniqueConstraint("order_id", "occurred_at", "event", name="uq_tracking_event_key"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("customer_order.id", ondelete="CASCADE"))
    event: Mapped[TrackingEventKind] = mapped_column(
        enum_column(TrackingEventKind, "tracking_event_kind")
    )
    # UTC; the offset it was reported with is kept beside it (minutes east of UTC).
    occurred_at: Mapped[datetime]
    utc_offset: Mapped[int] = mapped_column(SmallInteger, default=0)
    location: Mapped[str] = mapped_column(String(120), default="")
    note: Mapped[str] = mapped_column(String(500), default="")
    source: Mapped[TrackingSource] = mapped_column(enum_column(TrackingSource, "tracking_source"))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)

    order = relationship("Order")
    actor = relationship("User")


@event.listens_for(TrackingEvent, "before_update")
def _never_edited(mapper, connection, target):
    raise RuntimeError("tracking events are appended, never edited")

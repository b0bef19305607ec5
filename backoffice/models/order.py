"""A customer's order of a service, and its status history."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, ForeignKey, Index, Numeric, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .base import enum_column, utcnow
from .catalog import Product
from .enums import OrderStatus, TrackingEventKind
from .user import User


class Order(db.Model):
    __tablename__ = "customer_order"
    __table_args__ = (
        CheckConstraint("weight_kg > 0", name="weight_positive"),
        CheckConstraint("price >= 0", name="price_not_negative"),
        Index("ix_order_customer_created", "customer_id", "created_at"),
        Index("ix_order_status_created", "status", "created_at"),
        # "Shipments with no event for N days" (the stuck situation): a range per status.
        Index("ix_order_status_last_event", "status", "last_event_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str | None] = mapped_column(String(20), unique=True)
    # The parcel's air waybill number (UPU S10, random serial): domain/shipments/resi.py.
    resi: Mapped[str] = mapped_column(String(13), unique=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"))
    product_id: Mapped[int] = mapped_column(ForeignKey("product.id"), index=True)
    origin: Mapped[str] = mapped_column(String(200))
    destination: Mapped[str] = mapped_column(String(200))
    weight_kg: Mapped[Decimal] = mapped_column(Numeric(8, 2))
    receiver_name: Mapped[str] = mapped_column(String(120), default="")
    receiver_phone: Mapped[str] = mapped_column(String(32), default="")
    notes: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[OrderStatus] = mapped_column(
        enum_column(OrderStatus, "order_status"), default=OrderStatus.PLACED
    )
    price: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    # The latest tracking event (by occurred_at), kept here by domain/shipments/recording.py.
    last_event: Mapped[TrackingEventKind | None] = mapped_column(
        enum_column(TrackingEventKind, "order_last_event")
    )
    last_event_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    customer: Mapped[User] = relationship()
    product: Mapped[Product] = relationship()
    events: Mapped[list[OrderEvent]] = relationship(
        back_populates="order", order_by="OrderEvent.id", cascade="all, delete-orphan"
    )

    def __str__(self) -> str:
        return self.number or f"#{self.id}"


class OrderEvent(db.Model):
    __tablename__ = "order_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(
        ForeignKey("customer_order.id", ondelete="CASCADE"), index=True
    )
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    from_status: Mapped[OrderStatus | None] = mapped_column(
        enum_column(OrderStatus, "order_event_from")
    )
    to_status: Mapped[OrderStatus] = mapped_column(enum_column(OrderStatus, "order_event_to"))
    note: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    order: Mapped[Order] = relationship(back_populates="events")
    actor: Mapped[User | None] = relationship()

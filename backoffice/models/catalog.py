"""Products and services of the catalogue, with their tariffs."""

import math
from decimal import Decimal

from sqlalchemy import CheckConstraint, Numeric, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .base import enum_column
from .enums import Badge, ProductKind


class Product(db.Model):
    __tablename__ = "product"
    __table_args__ = (
        CheckConstraint("base_price >= 0 AND price_per_kg >= 0", name="prices_not_negative"),
        CheckConstraint("min_weight_kg >= 0 AND max_weight_kg >= min_weight_kg", name="weights"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(20), unique=True)
    kind: Mapped[ProductKind] = mapped_column(enum_column(ProductKind, "product_kind"))
    name_id: Mapped[str] = mapped_column(String(120))
    name_en: Mapped[str] = mapped_column(String(120))
    description_id: Mapped[str] = mapped_column(Text, default="")
    description_en: Mapped[str] = mapped_column(Text, default="")
    base_price: Mapped[Decimal] = mapped_column(Numeric(12, 2), default=0)
    price_per_kg: Mapped[Decimal] = mapped_column(Numeric(12, 2), default=0)
    min_weight_kg: Mapped[Decimal] = mapped_column(Numeric(8, 2), default=1)
    max_weight_kg: Mapped[Decimal] = mapped_column(Numeric(8, 2), default=30)
    eta_days: Mapped[str] = mapped_column(String(20), default="")
    badge: Mapped[Badge] = mapped_column(enum_column(Badge, "product_badge"), default=Badge.NONE)
    badge_note_id: Mapped[str] = mapped_column(String(255), default="")
    badge_note_en: Mapped[str] = mapped_column(String(255), default="")
    position: Mapped[int] = mapped_column(default=100)
    active: Mapped[bool] = mapped_column(default=True)

    def localized(self, field: str, lang: str) -> str:
        return getattr(self, f"{field}_{'en' if lang == 'en' else 'id'}")

    def price_for(self, weight_kg: Decimal) -> Decimal:
        """Tariff: base price plus the per-kg price for every started kilogram."""
        kilos = max(1, math.ceil(Decimal(weight_kg)))
        return (self.base_price + self.price_per_kg * kilos).quantize(Decimal("0.01"))

    def __str__(self) -> str:
        return f"{self.code} — {self.name_id}"

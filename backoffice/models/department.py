"""Departments and the routing rules that send new tickets to them."""

from __future__ import annotations

from sqlalchemy import DDL, ForeignKey, String, event, false, true
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .base import enum_column
from .enums import ShipmentSituation, TicketKind


class Department(db.Model):
    __tablename__ = "department"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(20), unique=True)
    name_id: Mapped[str] = mapped_column(String(120))
    name_en: Mapped[str] = mapped_column(String(120))
    email: Mapped[str | None]
    active: Mapped[bool] = mapped_column(default=True)
    # New tickets reaching the department go to its agents in turn (domain/assignment.py).
    round_robin: Mapped[bool] = mapped_column(default=False, server_default=false())
    # The working calendar (domain/worktime.py): the zone its hours are in, and whether
    # public holidays and company days off stop its clock (an on-call desk: no).
    timezone: Mapped[str] = mapped_column(
        String(40), default="Asia/Jakarta", server_default="Asia/Jakarta"
    )
    observes_holidays: Mapped[bool] = mapped_column(default=True, server_default=true())

    def __str__(self) -> str:
        from ..i18n import current_locale

        loc = current_locale()
        return self.name_en if loc and loc.language == "en" else self.name_id


class RoutingRule(db.Model):
    """A department is the default for a parcel situation, a ticket kind, a product, or
    a combination; a rule with none of them is the catch-all.

    The most specific active rule wins (domain/tickets/routing.py `find_route`): each
    condition it names must match, the situation counts most, then the product, then the
    kind; the catch-all only when nothing else matches. Ties go to the lower `position`.
    """

    __tablename__ = "routing_rule"

    id: Mapped[int] = mapped_column(primary_key=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("department.id", ondelete="CASCADE"))
    kind: Mapped[TicketKind | None] = mapped_column(enum_column(TicketKind, "routing_kind"))
    product_id: Mapped[int | None] = mapped_column(ForeignKey("product.id", ondelete="CASCADE"))
    situation: Mapped[ShipmentSituation | None] = mapped_column(
        enum_column(ShipmentSituation, "routing_situation")
    )
    position: Mapped[int] = mapped_column(default=100)
    active: Mapped[bool] = mapped_column(default=True)

    department: Mapped[Department] = relationship()
    product: Mapped[Product | None] = relationship()  # noqa: F821

    def __str__(self) -> str:
        parts = [
            p
            for p in (
                self.situation and self.situation.value,
                self.kind and self.kind.value,
                self.product and self.product.code,
            )
            if p
        ]
        return f"{' + '.join(parts) or '*'} → {self.department.code}"


class SetupVersion(db.Model):
    """One row whose token changes with every change of the desk's setup (departments,
    their hours, company days, routing rules, products), in the same transaction:
    processes keep copies of the setup only under the token (domain/setup_cache.py)."""

    __tablename__ = "setup_version"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    token: Mapped[str] = mapped_column(String(32))


# A database made from the models (the tests') has its row as a migrated one does.
event.listen(
    SetupVersion.__table__,
    "after_create",
    DDL("INSERT INTO setup_version (id, token) VALUES (1, 'created')"),
)

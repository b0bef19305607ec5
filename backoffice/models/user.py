"""Users and roles (Flask-Security-Too) and the customer profile."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from flask_security import AsaList, RoleMixin, UserMixin
from sqlalchemy import Column, ForeignKey, Index, Numeric, String, Table, event, false
from sqlalchemy.ext.mutable import MutableList
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .base import utcnow

roles_users = Table(
    "roles_users",
    db.metadata,
    Column("user_id", ForeignKey("user.id", ondelete="CASCADE"), primary_key=True),
    Column("role_id", ForeignKey("role.id", ondelete="CASCADE"), primary_key=True),
)


class PermissionList(AsaList):
    """Flask-Security's comma-separated list type, declared safe to cache: it keeps no
    state, so statements that select the column (backoffice/idle_polls.py) are compiled
    once, not on every request (SQLAlchemy warns about an undeclared type)."""

    cache_ok = True


class Role(db.Model, RoleMixin):
    __tablename__ = "role"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    description: Mapped[str | None]
    # Flask-Security reads `permissions` as a list; stored comma-separated.
    permissions = mapped_column(MutableList.as_mutable(PermissionList()), nullable=True)
    update_datetime: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    def __str__(self) -> str:
        return self.name


class User(db.Model, UserMixin):
    __tablename__ = "user"
    __table_args__ = (
        # The lists' search by a word of the customer's name (views/ticket_search.py):
        # MATCH ... AGAINST on MySQL/MariaDB; SQLite reads ix_user_name instead.
        Index("ix_user_name_fulltext", "name", mysql_prefix="FULLTEXT").ddl_if(
            dialect=("mysql", "mariadb")
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(255), unique=True)
    password: Mapped[str | None]
    active: Mapped[bool] = mapped_column(default=True)
    fs_uniquifier: Mapped[str] = mapped_column(String(64), unique=True)
    confirmed_at: Mapped[datetime | None]
    last_login_at: Mapped[datetime | None]
    current_login_at: Mapped[datetime | None]
    last_login_ip: Mapped[str | None] = mapped_column(String(64))
    current_login_ip: Mapped[str | None] = mapped_column(String(64))
    login_count: Mapped[int | None]

    # Indexed for the ticket lists' search by customer name (views/ticket_search.py).
    name: Mapped[str] = mapped_column(String(120), default="", index=True)
    phone: Mapped[str | None] = mapped_column(String(32))
    # The phone in E.164 (+62…), kept by the `set` listener below whatever form was
    # typed, so WhatsApp's sender finds its customer in one indexed lookup.
    phone_key: Mapped[str | None] = mapped_column(String(20), index=True)
    locale: Mapped[str] = mapped_column(String(5), default="id")
    department_id: Mapped[int | None] = mapped_column(
        ForeignKey("department.id", ondelete="SET NULL"), index=True
    )
    # A customer record made from an inbound message (email, WhatsApp): no password,
    # cannot sign in, until the owner of the address claims it (domain/contacts.py).
    contact_only: Mapped[bool] = mapped_column(default=False, server_default=false())
    # Round-robin (domain/assignment.py): an agent marked away gets no new tickets;
    # the one with the lowest turn (the longest since their last one) gets the next.
    # A counter, not a time: DATETIME keeps whole seconds on MariaDB, and tickets
    # arrive faster than that.
    away: Mapped[bool] = mapped_column(default=False, server_default=false())
    round_robin_turn: Mapped[int] = mapped_column(default=0, server_default="0")
    # Agent notifications (domain/staff_notices.py): also mailed as a digest, if asked.
    notice_digest: Mapped[bool] = mapped_column(default=False, server_default=false())
    marketing_consent: Mapped[bool] = mapped_column(default=False)
    # Email when a parcel is out for delivery, delivered or its delivery failed
    # (domain/shipment_notices.py); asked for on the account page.
    shipment_updates: Mapped[bool] = mapped_column(default=False, server_default=false())
    consent_changed_at: Mapped[datetime | None]
    # Ticket notifications (staff replied, finished, out for delivery) as WhatsApp
    # templates too: off until the customer turns it on in their profile.
    whatsapp_consent: Mapped[bool] = mapped_column(default=False, server_default=false())
    whatsapp_consent_at: Mapped[datetime | None]
    # The phone a contact-only customer was made for (E.164). Unique: two first
    # messages from one new phone make one contact (domain/contacts.py).
    contact_phone_key: Mapped[str | None] = mapped_column(String(20), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    update_datetime: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    # Plain lazy loading: a selectin over many users makes MariaDB scan roles_users by
    # role (every customer shares one), measured at 55 ms for a 50-row ticket page.
    roles: Mapped[list[Role]] = relationship(secondary=roles_users)
    department: Mapped[Department | None] = relationship()  # noqa: F821
    profile: Mapped[CustomerProfile | None] = relationship(
        back_populates="user", uselist=False, cascade="all, delete-orphan"
    )

    @property
    def display_name(self) -> str:
        return self.name or self.email

    def has_permission(self, permission: str) -> bool:
        return permission in self.permission_set()

    def permission_set(self) -> frozenset[str]:
        """The permissions of the user's roles, worked out once per loaded role list (a
        back-office page asks some sixty times, once per menu entry and check). A change
        of the roles or of a role's permissions, or a role read again, makes it anew."""
        roles = self.roles
        memo = self.__dict__.get("_permission_memo")
        if memo is not None and memo[0] is roles and memo[1] == _ROLE_CHANGES[0]:
            return memo[2]
        perms = frozenset(p for role in roles for p in role.get_permissions())
        self.__dict__["_permission_memo"] = (roles, _ROLE_CHANGES[0], perms)
        return perms

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>" if self.name else self.email


_ROLE_CHANGES = [0]  # bumped by every change that may change a permission_set()


@event.listens_for(User.roles, "append")
@event.listens_for(User.roles, "remove")
@event.listens_for(User.roles, "bulk_replace")
@event.listens_for(User.roles, "modified")
@event.listens_for(Role.permissions, "set")
@event.listens_for(Role.permissions, "modified")
@event.listens_for(Role, "refresh")
def _roles_changed(*_args, **_kwargs) -> None:
    _ROLE_CHANGES[0] += 1


@event.listens_for(User.phone, "set")
def _phone_key(target: User, value, oldvalue, initiator) -> None:
    from ..domain.phones import normalise_phone  # domain imports models, not the reverse

    target.phone_key = normalise_phone(value)


class CustomerProfile(db.Model):
    """Loyalty figures of one customer, recomputed by `carebox loyalty refresh`."""

    __tablename__ = "customer_profile"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("user.id", ondelete="CASCADE"), primary_key=True
    )
    segment: Mapped[str] = mapped_column(String(20), default="new", index=True)
    recency_days: Mapped[int | None]
    frequency: Mapped[int] = mapped_column(default=0)
    monetary: Mapped[Decimal] = mapped_column(Numeric(14, 2), default=0)
    complaint_rate: Mapped[Decimal] = mapped_column(Numeric(5, 4), default=0)
    avg_rating: Mapped[Decimal | None] = mapped_column(Numeric(3, 2))
    refreshed_at: Mapped[datetime | None]

    user: Mapped[User] = relationship(back_populates="profile")

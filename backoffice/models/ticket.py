"""Tickets, their messages, attachments and audit events."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    Text,
    and_,
    case,
    false,
    or_,
)
from sqlalchemy.ext.hybrid import hybrid_method, hybrid_property
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .base import enum_column, utcnow
from .department import Department
from .enums import (
    EventAction,
    MessageChannel,
    Priority,
    ShipmentSituation,
    TicketKind,
    TicketStatus,
)
from .order import Order
from .user import User

if TYPE_CHECKING:
    from .desk import TicketViewer


class Ticket(db.Model):
    __tablename__ = "ticket"
    __table_args__ = (
        CheckConstraint(
            "(status = 'finished') = (finished_at IS NOT NULL)", name="finished_has_time"
        ),
        CheckConstraint("rating IS NULL OR (rating BETWEEN 1 AND 5)", name="rating_range"),
        CheckConstraint(
            "status <> 'team' OR department_id IS NOT NULL", name="team_has_department"
        ),
        # The list pages: one status (and maybe a department), newest first. For a
        # department admin's list, id and subject serve the order and the search
        # like ix_ticket_status_created below.
        Index(
            "ix_ticket_status_dept_created",
            "status",
            "department_id",
            "created_at",
            "id",
            "subject",
        ),
        # (status, created_at, id) gives the lists' order (created_at DESC, id DESC);
        # subject after id keeps that order and lets the search's "subject contains"
        # scan of a recent window read the index alone (views/ticket_search.py).
        Index("ix_ticket_status_created", "status", "created_at", "id", "subject"),
        # Search: subject starts with the term, per list (views/ticket_search.py).
        Index("ix_ticket_status_subject", "status", "subject", "created_at"),
        Index("ix_ticket_customer_created", "customer_id", "created_at"),
        # Date ranges (reports, filters) and, covering, the dashboard's last 30 days:
        # per day by status, kind and department, ratings and both medians are
        # read from the index alone (views/dashboard.py).
        Index(
            "ix_ticket_created_cover",
            "created_at",
            "status",
            "kind",
            "department_id",
            "rating",
            "first_response_at",
            "finished_at",
            "first_response_work",
            "resolution_work",
        ),
        # SLA breaches of the open lists on the home page, counted from the index
        # alone in resolution_due order, overdue first (views/dashboard.py): every
        # column `sla_breached` reads; department_id for a department admin's count.
        Index(
            "ix_ticket_status_due",
            "status",
            "resolution_due",
            "first_response_due",
            "first_response_at",
            "finished_at",
            "sla_paused_at",
            "department_id",
        ),
        # The desk's default order, most urgent first, within one status (and a
        # department, and an assignee): next_due_at is NULL for a whole list or for
        # none of it (NULL exactly when the clock is stopped: responded, finished).
        Index("ix_ticket_status_next_due", "status", "next_due_at", "id"),
        Index("ix_ticket_status_dept_next_due", "status", "department_id", "next_due_at", "id"),
        Index("ix_ticket_assignee_next_due", "assignee_id", "status", "next_due_at", "id"),
        # Responded's default order (resolution due first) and its department and
        # assignee twins: without them each view sorted the whole list (ix_ticket_status_due
        # has other columns between resolution_due and id). And "who spoke last" in the
        # running lists' order (migration 0033; bench/ticket_lists.py has the plans).
        Index("ix_ticket_status_resolution", "status", "resolution_due", "id"),
        Index(
            "ix_ticket_status_dept_resolution", "status", "department_id", "resolution_due", "id"
        ),
        Index("ix_ticket_assignee_resolution", "assignee_id", "status", "resolution_due", "id"),
        Index("ix_ticket_status_spoke_next_due", "status", "last_from_staff", "next_due_at", "id"),
        # The 80 % warnings' worker and the "breaching soon" filter, per status.
        Index("ix_ticket_status_warn", "status", "sla_warn_at", "id"),
        # The situations' worker: open tickets whose parcel may turn stuck or late by
        # time alone, when that moment has come (domain/situations.py).
        Index("ix_ticket_status_situation_due", "status", "situation_due_at", "id"),
        # The auto-finish worker: responded tickets by the start of their wait.
        Index("ix_ticket_status_last_message", "status", "last_message_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # Set right after the insert from the id (see domain.tickets.file_ticket).
    number: Mapped[str | None] = mapped_column(String(20), unique=True)
    kind: Mapped[TicketKind] = mapped_column(enum_column(TicketKind, "ticket_kind"))
    status: Mapped[TicketStatus] = mapped_column(
        enum_column(TicketStatus, "ticket_status"), default=TicketStatus.PROGRESS
    )
    priority: Mapped[Priority] = mapped_column(
        enum_column(Priority, "ticket_priority"), default=Priority.NORMAL
    )
    subject: Mapped[str] = mapped_column(String(200))
    customer_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"))
    order_id: Mapped[int | None] = mapped_column(
        ForeignKey("customer_order.id", ondelete="SET NULL"), index=True
    )
    # RESTRICT: departments are deactivated, never deleted under their tickets
    # (and MariaDB refuses a CHECK on a column with ON DELETE SET NULL).
    department_id: Mapped[int | None] = mapped_column(ForeignKey("department.id"))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    last_message_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Who wrote the last public message (the desk's "who spoke last" column);
    # kept by domain.tickets.post_message, like last_message_at.
    last_from_staff: Mapped[bool] = mapped_column(default=False, server_default=false())
    first_response_due: Mapped[datetime]
    resolution_due: Mapped[datetime]
    # The due time that matters now (domain.sla keeps it): the first response's
    # until answered, then the resolution's; NULL while the clock is stopped.
    next_due_at: Mapped[datetime | None]
    # The working-time clocks (domain/sla.py): from `sla_since`, this many working
    # seconds were left on each; `sla_paused_at` while waiting for the customer or
    # finished. NULL `sla_since`: a ticket from before working time, due times as stored.
    sla_since: Mapped[datetime | None]
    first_response_left: Mapped[int | None]
    resolution_left: Mapped[int | None]
    sla_paused_at: Mapped[datetime | None]
    # When the running clock reaches 80 % of its allowance (domain/sla.py), and when
    # that warning went out (once per clock).
    sla_warn_at: Mapped[datetime | None]
    sla_warned_at: Mapped[datetime | None]
    # Working seconds the first-response clock had used when staff first answered, and the
    # resolution clock when the ticket was (last) finished: the medians' figures
    # (domain/sla.py); NULL for tickets from before working time.
    first_response_work: Mapped[int | None]
    resolution_work: Mapped[int | None]
    # When the customer was told the waiting ticket will be finished (auto-finish).
    auto_finish_warned_at: Mapped[datetime | None]
    first_response_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    reopen_count: Mapped[int] = mapped_column(default=0)
    rating: Mapped[int | None]
    rating_comment: Mapped[str | None] = mapped_column(Text)
    rated_at: Mapped[datetime | None]
    # A customer who writes on a ticket finished more than REOPEN_WINDOW ago gets a
    # new ticket pointing back at it (domain/inbound.py).
    follow_up_of_id: Mapped[int | None] = mapped_column(
        ForeignKey("ticket.id", ondelete="SET NULL"), index=True
    )
    # A duplicate merged into another ticket (domain.tickets.merge): finished, its
    # messages and events moved to this one, its URLs lead there.
    merged_into_id: Mapped[int | None] = mapped_column(
        ForeignKey("ticket.id", ondelete="SET NULL"), index=True
    )
    # The parcel's situation (late, stuck, ...), stored so that lists show and filter it
    # without deriving it per row; kept by domain/situations.py when the ticket is
    # filed or written to, when its parcel's events arrive, and by its worker at
    # `situation_due_at`, the next moment time alone may change it.
    situation: Mapped[ShipmentSituation | None] = mapped_column(
        enum_column(ShipmentSituation, "ticket_situation")
    )
    situation_due_at: Mapped[datetime | None]
    version_id: Mapped[int] = mapped_column(default=1)
    # The one-time token of the portal form that filed it: a retried submission (lost
    # answer, double click, refresh) finds this ticket instead of filing a second one.
    submission: Mapped[str | None] = mapped_column(String(32), unique=True)

    __mapper_args__ = {"version_id_col": version_id}

    customer: Mapped[User] = relationship(foreign_keys=[customer_id])
    assignee: Mapped[User | None] = relationship(foreign_keys=[assignee_id])
    department: Mapped[Department | None] = relationship()
    order: Mapped[Order | None] = relationship()
    # Read-only, the writers set the ids: a relationship of the table to itself that the
    # unit of work may write makes it sort every flush of tickets state by state (issue 16
    # item 3: some 560 Python calls of each filing's flush).
    follow_up_of: Mapped[Ticket | None] = relationship(
        remote_side=[id], foreign_keys=[follow_up_of_id], viewonly=True
    )
    merged_into: Mapped[Ticket | None] = relationship(
        remote_side=[id], foreign_keys=[merged_into_id], viewonly=True
    )
    messages: Mapped[list[TicketMessage]] = relationship(
        back_populates="ticket",
        order_by="TicketMessage.id",
        cascade="all, delete-orphan",
        lazy="raise_on_sql",
    )
    events: Mapped[list[TicketEvent]] = relationship(
        back_populates="ticket",
        order_by="TicketEvent.id",
        cascade="all, delete-orphan",
        lazy="raise_on_sql",
    )
    # Read only through a filtered eager load (domain.presence.viewing): who is here now.
    viewers: Mapped[list[TicketViewer]] = relationship(viewonly=True, lazy="raise_on_sql")

    @hybrid_method
    def sla_breached(self, now: datetime) -> bool:
        """First response or resolution came (or is still missing) after its due time.
        A paused resolution clock (waiting for the customer) is judged at the pause."""
        first = (self.first_response_at or now) > self.first_response_due
        resolved = (self.finished_at or self.sla_paused_at or now) > self.resolution_due
        return first or resolved

    @sla_breached.expression
    def sla_breached(cls, now: datetime):
        return or_(
            and_(cls.first_response_at.is_(None), cls.first_response_due < now),
            cls.first_response_at > cls.first_response_due,
            and_(
                cls.finished_at.is_(None),
                cls.sla_paused_at.is_(None),
                cls.resolution_due < now,
            ),
            and_(cls.finished_at.is_(None), cls.sla_paused_at > cls.resolution_due),
            cls.finished_at > cls.resolution_due,
        )

    @classmethod
    def first_response_breached(cls, now: datetime):
        """SQL: the first-response half of `sla_breached` (answered late, or unanswered
        past due)."""
        return or_(
            and_(cls.first_response_at.is_(None), cls.first_response_due < now),
            cls.first_response_at > cls.first_response_due,
        )

    @classmethod
    def resolution_breached(cls, now: datetime):
        """SQL: the resolution half of `sla_breached` (finished late, open past due, or
        paused — waiting for the customer — after its due time)."""
        return or_(
            and_(
                cls.finished_at.is_(None),
                cls.sla_paused_at.is_(None),
                cls.resolution_due < now,
            ),
            and_(cls.finished_at.is_(None), cls.sla_paused_at > cls.resolution_due),
            cls.finished_at > cls.resolution_due,
        )

    @classmethod
    def sla_kept(cls, now: datetime):
        """SQL: the exact complement of `sla_breached`, spelled out term by term, since
        NOT(sla_breached) would drop rows where a comparison with a missing time is NULL."""
        first_ok = or_(
            and_(cls.first_response_at.is_(None), cls.first_response_due >= now),
            cls.first_response_at <= cls.first_response_due,
        )
        resolution_ok = or_(
            and_(
                cls.finished_at.is_(None),
                cls.sla_paused_at.is_(None),
                cls.resolution_due >= now,
            ),
            and_(cls.finished_at.is_(None), cls.sla_paused_at <= cls.resolution_due),
            cls.finished_at <= cls.resolution_due,
        )
        return and_(first_ok, resolution_ok)

    @hybrid_property
    def current_due(self) -> datetime:
        """The due time that matters now: first response until answered, then resolution."""
        if self.first_response_at is None and self.status is not TicketStatus.FINISHED:
            return self.first_response_due
        return self.resolution_due

    @current_due.inplace.expression
    @classmethod
    def _current_due_expression(cls):
        return case(
            (
                and_(cls.first_response_at.is_(None), cls.status != TicketStatus.FINISHED),
                cls.first_response_due,
            ),
            else_=cls.resolution_due,
        )

    def __str__(self) -> str:
        return self.number or f"#{self.id}"


class TicketMessage(db.Model):
    __tablename__ = "ticket_message"
    __table_args__ = (
        Index("ix_message_ticket_id", "ticket_id", "id"),
        CheckConstraint("NOT internal OR from_staff", name="notes_are_staff"),
        # A channel's own id of the message (an email's Message-ID, a WhatsApp
        # message id): the same message delivered twice is stored once.
        Index("uq_message_channel_ref", "channel", "external_id", unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id", ondelete="CASCADE"))
    author_id: Mapped[int | None] = mapped_column(
        ForeignKey("user.id", ondelete="SET NULL"), index=True
    )
    from_staff: Mapped[bool] = mapped_column(default=False)
    # Written by carebox itself (domain.tickets.SYSTEM: the auto-finish warning), not a
    # person: no author, shown as such.
    by_system: Mapped[bool] = mapped_column(default=False, server_default=false())
    internal: Mapped[bool] = mapped_column(default=False)
    body: Mapped[str] = mapped_column(Text)
    channel: Mapped[MessageChannel] = mapped_column(
        enum_column(MessageChannel, "message_channel"),
        default=MessageChannel.PORTAL,
        server_default=MessageChannel.PORTAL.value,
    )
    external_id: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    ticket: Mapped[Ticket] = relationship(back_populates="messages")
    author: Mapped[User | None] = relationship()
    attachments: Mapped[list[TicketAttachment]] = relationship(
        back_populates="message", cascade="all, delete-orphan", lazy="selectin"
    )


class TicketAttachment(db.Model):
    """A file stored outside the static folder, served only after an authorization check."""

    __tablename__ = "ticket_attachment"

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(
        ForeignKey("ticket_message.id", ondelete="CASCADE"), index=True
    )
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(50))
    size: Mapped[int] = mapped_column(BigInteger)
    storage_key: Mapped[str] = mapped_column(String(100), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    message: Mapped[TicketMessage] = relationship(back_populates="attachments")


class TicketEvent(db.Model):
    """Audit row: who did what to a ticket and when, written with the change itself."""

    __tablename__ = "ticket_event"
    __table_args__ = (Index("ix_event_ticket_id", "ticket_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id", ondelete="CASCADE"))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    action: Mapped[EventAction] = mapped_column(enum_column(EventAction, "event_action"))
    from_status: Mapped[TicketStatus | None] = mapped_column(
        enum_column(TicketStatus, "event_from_status")
    )
    to_status: Mapped[TicketStatus | None] = mapped_column(
        enum_column(TicketStatus, "event_to_status")
    )
    rule_id: Mapped[int | None] = mapped_column(ForeignKey("routing_rule.id", ondelete="SET NULL"))
    note: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    ticket: Mapped[Ticket] = relationship(back_populates="events")
    actor: Mapped[User | None] = relationship()

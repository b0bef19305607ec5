"""Working calendars: each department's business hours, and the company's own days."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .base import utcnow
from .department import Department
from .user import User


class BusinessHours(db.Model):
    """One shift of a department on one weekday (Monday = 0), in the department's zone,
    as minutes after local midnight. Two rows on a day make a split shift; 00:00–24:00
    on all seven days is 24/7 (domain/worktime.py)."""

    __tablename__ = "business_hours"
    __table_args__ = (
        CheckConstraint("weekday BETWEEN 0 AND 6", name="weekday_range"),
        CheckConstraint("start_minute >= 0 AND end_minute <= 1440", name="within_day"),
        CheckConstraint("start_minute < end_minute", name="starts_before_end"),
        Index("ix_business_hours_department", "department_id", "weekday"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("department.id", ondelete="CASCADE"))
    weekday: Mapped[int]
    start_minute: Mapped[int]
    end_minute: Mapped[int]

    department: Mapped[Department] = relationship()


class CompanyDay(db.Model):
    """A day the master admin sets for the whole company: closed (a company holiday),
    or open although it is a public holiday or cuti bersama."""

    __tablename__ = "company_day"

    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[date] = mapped_column(unique=True)
    closed: Mapped[bool] = mapped_column(default=True)
    name: Mapped[str] = mapped_column(String(120))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    created_by: Mapped[User | None] = relationship()

    def __str__(self) -> str:
        return f"{self.day.isoformat()} {self.name}"


class SlaWorkInterval(db.Model):
    """Scratch rows of one bulk recomputation of due times (domain/sla_bulk.py), in epoch
    seconds, so that working-time arithmetic becomes an equality lookup in SQL (MariaDB
    uses no range from an outer row in a dependent subquery; an equality it does):
    kind 't' — the calendar's whole timeline in pieces within one UTC day (`bucket`: the
    day), each working or not, with the working seconds before it (`cum_s`); kind 'w' —
    each working piece once per 86,400 working seconds it touches (`bucket`: cum_s // 86400).
    Written and deleted by the run that owns them (`run`)."""

    __tablename__ = "sla_work_interval"

    run: Mapped[str] = mapped_column(String(32), primary_key=True)
    calendar_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(String(1), primary_key=True)
    bucket: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    start_s: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    len_s: Mapped[int]
    work: Mapped[int]
    cum_s: Mapped[int] = mapped_column(BigInteger)


class SlaWorkDue(db.Model):
    """Scratch rows of one bulk recomputation: each running ticket's new due times."""

    __tablename__ = "sla_work_due"

    run: Mapped[str] = mapped_column(String(32), primary_key=True)
    ticket_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    calendar_id: Mapped[int]
    since_s: Mapped[int] = mapped_column(BigInteger)
    since_cum: Mapped[int | None] = mapped_column(BigInteger)
    first_response_due: Mapped[datetime | None]
    resolution_due: Mapped[datetime | None]
    sla_warn_at: Mapped[datetime | None]

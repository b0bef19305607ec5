"""A report export that a worker writes to a file (docs/architecture.md, "Exports as jobs")."""

from __future__ import annotations

from datetime import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .base import enum_column, utcnow
from .enums import LabelledEnum


class ExportStatus(LabelledEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    EXPIRED = "expired"

    @classmethod
    def _labels(cls):
        return {
            cls.QUEUED: _l("Waiting for the worker"),
            cls.RUNNING: _l("Being written"),
            cls.DONE: _l("Ready"),
            cls.FAILED: _l("Failed"),
            cls.EXPIRED: _l("Deleted after its retention time"),
        }


class ExportJob(db.Model):
    """One export asked for on the report page.

    A worker claims it by writing `claim_token` and a lease (`lease_until`) with a
    compare-and-set UPDATE; a worker that dies leaves the lease to run out, and the
    next worker starts the file again. The file exists under its final name only once
    it is complete (written aside, then renamed), and `status = done` records its
    row count and size, which the download checks.
    """

    __tablename__ = "export_job"
    __table_args__ = (
        Index("ix_export_job_status_lease", "status", "lease_until"),
        Index("ix_export_job_requester", "requested_by_id", "created_at"),
        CheckConstraint("status <> 'done' OR size_bytes IS NOT NULL", name="done_has_file"),
        CheckConstraint("status <> 'running' OR claim_token IS NOT NULL", name="running_claimed"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))  # a registered writer: "tickets_csv", …
    params: Mapped[str] = mapped_column(Text)  # the report form's query string
    locale: Mapped[str] = mapped_column(String(10))
    requested_by_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"))
    status: Mapped[ExportStatus] = mapped_column(
        enum_column(ExportStatus, "export_status"), default=ExportStatus.QUEUED
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    claim_token: Mapped[str | None] = mapped_column(String(32))
    lease_until: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(default=0)
    rows_expected: Mapped[int | None]
    rows_written: Mapped[int] = mapped_column(default=0)
    filename: Mapped[str | None] = mapped_column(String(120))  # what the browser saves
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    error: Mapped[str | None] = mapped_column(Text)

"""Large exports as jobs: asked for on a page, written by a worker, downloaded when whole.

A 1M-row CSV streamed from a request outlived gunicorn's worker timeout: the worker was
killed part-way and the browser kept a file that simply stopped. Here no request writes a
large file. The report page records an `ExportJob`; `carebox exports run` claims it,
writes the file aside and renames it only when complete; the page then offers it with its
row count and exact size. A worker that dies leaves its lease to run out and the next
worker starts the file again; a file that is not complete is never offered.

Claims are compare-and-set UPDATEs on the job row (no lock held across the work), so two
workers — on one server or on two Galera nodes — never write one job at once for long:
a worker whose lease was taken over learns it at its next progress write and stops.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import BinaryIO

from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import and_, func, or_, select, update

from ..extensions import db
from ..models import ExportJob, ExportStatus, User
from ..models.base import utcnow
from ..transactions import retrying

log = logging.getLogger("carebox.exports")

MAX_ATTEMPTS = 3  # a job whose worker died this many times is marked failed
MAX_OPEN_PER_USER = 3  # queued or running jobs one person may have


class ExportRefused(Exception):
    """The request cannot become a job; the message says why, for the person asking."""


class LostClaim(Exception):
    """Another worker took this job over (our lease ran out): stop writing it."""


@dataclass(frozen=True)
class Written:
    rows: int
    filename: str  # what the browser saves


@dataclass(frozen=True)
class Writer:
    """How one kind of export is written. `write(job, out, progress)` writes the whole
    file to `out`, calls `progress(rows_so_far)` every batch (which, every second or so,
    renews the lease and raises LostClaim when the job was taken over) and returns what it
    wrote."""

    ext: str
    mimetype: str
    write: Callable[[ExportJob, BinaryIO, Callable[[int], None]], Written]
    # The rows the job will hold, counted when it starts (shown as progress).
    count: Callable[[ExportJob], int | None] = lambda job: None


WRITERS: dict[str, Writer] = {}


def register(kind: str, writer: Writer) -> None:
    WRITERS[kind] = writer


def _setting(name: str, default: float) -> float:
    return float(current_app.config.get(name, default))


def lease() -> timedelta:
    """How long a claim holds without a progress write. Progress is written every batch
    (a few seconds at most), so a short lease is safe and a dead worker's job restarts soon."""
    return timedelta(seconds=_setting("CAREBOX_EXPORT_LEASE_SECONDS", 60))


def export_dir() -> Path:
    configured = current_app.config.get("CAREBOX_EXPORT_DIR")
    path = Path(configured) if configured else Path(current_app.instance_path) / "exports"
    path.mkdir(parents=True, exist_ok=True)
    return path


def file_path(job: ExportJob) -> Path:
    return export_dir() / f"{job.id}.{WRITERS[job.kind].ext}"


def _partial_path(job_id: int, token: str, ext: str) -> Path:
    return export_dir() / f".{job_id}-{token}.{ext}.partial"


# --- asking -----------------------------------------------------------------------------


def request_export(user: User, kind: str, params: str, locale: str) -> ExportJob:
    """Queue an export for `user`; refused when they already have several waiting."""
    if kind not in WRITERS:
        raise ExportRefused(f"unknown export {kind!r}")
    open_jobs = db.session.scalar(
        select(func.count())
        .select_from(ExportJob)
        .where(
            ExportJob.requested_by_id == user.id,
            ExportJob.status.in_([ExportStatus.QUEUED, ExportStatus.RUNNING]),
        )
    )
    if open_jobs >= MAX_OPEN_PER_USER:
        raise ExportRefused(
            _(
                "You already have %(n)d exports being prepared: wait for one to finish.",
                n=open_jobs,
            )
        )
    job = ExportJob(kind=kind, params=params, locale=locale, requested_by_id=user.id)
    db.session.add(job)
    db.session.commit()
    return job


def jobs_of(user: User, limit: int = 10) -> list[ExportJob]:
    return list(
        db.session.scalars(
            select(ExportJob)
            .where(ExportJob.requested_by_id == user.id)
            .order_by(ExportJob.created_at.desc(), ExportJob.id.desc())
            .limit(limit)
        )
    )


def downloadable(job: ExportJob) -> Path | None:
    """The finished file, only if it is there whole (its recorded size)."""
    if job.status is not ExportStatus.DONE:
        return None
    path = file_path(job)
    try:
        if path.stat().st_size == job.size_bytes:
            return path
    except FileNotFoundError:
        pass
    log.error("export %s: the file is missing or not its recorded size", job.id)
    return None


# --- working ----------------------------------------------------------------------------


def _write(statement) -> int:
    """One short transaction of its own on the primary; returns the rows it changed."""

    def work() -> int:
        with db.engine.begin() as conn:
            return conn.execute(statement).rowcount

    return retrying(work, commit=False, what="export job")


def claim_next(now: datetime | None = None) -> tuple[ExportJob, str] | None:
    """Claim the oldest job that is waiting or whose worker's lease ran out."""
    now = now or utcnow()
    candidates = db.session.execute(
        select(ExportJob.id, ExportJob.status, ExportJob.claim_token, ExportJob.attempts)
        .where(
            or_(
                ExportJob.status == ExportStatus.QUEUED,
                and_(ExportJob.status == ExportStatus.RUNNING, ExportJob.lease_until < now),
            )
        )
        .order_by(ExportJob.id)
        .limit(5)
    ).all()
    db.session.rollback()  # end the read; claims are their own transactions
    for job_id, status, seen_token, attempts in candidates:
        same = and_(
            ExportJob.id == job_id,
            ExportJob.status == status,
            ExportJob.claim_token.is_(None)
            if seen_token is None
            else ExportJob.claim_token == seen_token,
        )
        if attempts >= MAX_ATTEMPTS:
            _write(
                update(ExportJob)
                .where(same)
                .values(
                    status=ExportStatus.FAILED,
                    claim_token=None,
                    lease_until=None,
                    finished_at=now,
                    error=f"stopped {attempts} times before finishing",
                )
            )
            log.error("export %s: given up after %d attempts", job_id, attempts)
            continue
        token = secrets.token_hex(16)
        claimed = _write(
            update(ExportJob)
            .where(same)
            .values(
                status=ExportStatus.RUNNING,
                claim_token=token,
                lease_until=now + lease(),
                attempts=ExportJob.attempts + 1,
                started_at=now,
                rows_written=0,
                error=None,
            )
        )
        if claimed == 1:
            return db.session.get(ExportJob, job_id, populate_existing=True), token
    return None


def _progress(job_id: int, token: str) -> Callable[[int], None]:
    """Writes the progress (and renews the lease) at most every `CAREBOX_EXPORT_PROGRESS_SECONDS`
    (and a quarter lease): a commit per 2,000-row batch was 500 fsyncs, ~8 s of a 1M-row job
    on a loaded server. The first call always writes; the job's end writes its own row."""
    every = min(_setting("CAREBOX_EXPORT_PROGRESS_SECONDS", 1), lease().total_seconds() / 4)
    due = 0.0

    def progress(rows: int) -> None:
        nonlocal due
        if time.monotonic() < due:
            return
        due = time.monotonic() + every
        renewed = _write(
            update(ExportJob)
            .where(ExportJob.id == job_id, ExportJob.claim_token == token)
            .values(rows_written=rows, lease_until=utcnow() + lease())
        )
        if renewed != 1:
            raise LostClaim(job_id)

    return progress


def run(job: ExportJob, token: str) -> ExportStatus:
    """Write a claimed job's file; the job ends done, back in the queue, or failed."""
    writer = WRITERS[job.kind]
    job_id, attempts = job.id, job.attempts
    partial = _partial_path(job_id, token, writer.ext)
    for stale in export_dir().glob(f".{job_id}-*.partial"):
        stale.unlink(missing_ok=True)  # a dead worker's part of this job's file
    progress = _progress(job_id, token)
    try:
        with current_app.test_request_context(), force_locale(job.locale):
            expected = writer.count(job)
            if expected is not None:
                _write(
                    update(ExportJob)
                    .where(ExportJob.id == job_id, ExportJob.claim_token == token)
                    .values(rows_expected=expected)
                )
            with open(partial, "wb") as out:
                written = writer.write(job, out, progress)
                out.flush()
                os.fsync(out.fileno())
        db.session.rollback()  # the writer's reads
        size = partial.stat().st_size
        final = file_path(job)
        # Rename first: the row says "done" only about a file that is there whole.
        os.replace(partial, final)
        finished = _write(
            update(ExportJob)
            .where(ExportJob.id == job_id, ExportJob.claim_token == token)
            .values(
                status=ExportStatus.DONE,
                rows_written=written.rows,
                size_bytes=size,
                filename=written.filename[:120],
                finished_at=utcnow(),
                claim_token=None,
                lease_until=None,
            )
        )
        if finished != 1:
            raise LostClaim(job_id)
        log.info("export %s: %d rows, %d bytes", job_id, written.rows, size)
        return ExportStatus.DONE
    except LostClaim:
        log.warning("export %s: taken over by another worker; stopping this copy", job_id)
        return ExportStatus.RUNNING
    except Exception as exc:
        db.session.rollback()
        log.exception("export %s failed", job_id)
        again = attempts < MAX_ATTEMPTS
        _write(
            update(ExportJob)
            .where(ExportJob.id == job_id, ExportJob.claim_token == token)
            .values(
                status=ExportStatus.QUEUED if again else ExportStatus.FAILED,
                claim_token=None,
                lease_until=None,
                finished_at=None if again else utcnow(),
                error=f"{type(exc).__name__}: {exc}"[:2000],
            )
        )
        return ExportStatus.QUEUED if again else ExportStatus.FAILED
    finally:
        partial.unlink(missing_ok=True)


def expire(now: datetime | None = None) -> int:
    """Delete finished files past their retention time (CAREBOX_EXPORT_KEEP_HOURS)."""
    now = now or utcnow()
    keep = timedelta(hours=_setting("CAREBOX_EXPORT_KEEP_HOURS", 72))
    old = db.session.scalars(
        select(ExportJob).where(
            ExportJob.status == ExportStatus.DONE, ExportJob.finished_at < now - keep
        )
    ).all()
    for job in old:
        file_path(job).unlink(missing_ok=True)
        job.status = ExportStatus.EXPIRED
    db.session.commit()
    return len(old)


def work(stop: threading.Event | None = None, interval: float = 2.0, once: bool = False) -> int:
    """The worker's loop: run jobs until none is waiting (`once`) or until `stop` is set."""
    done = 0
    stop = stop or threading.Event()
    while not stop.is_set():
        claimed = claim_next()
        if claimed is None:
            expire()
            if once:
                break
            stop.wait(interval)
            continue
        if run(*claimed) is ExportStatus.DONE:
            done += 1
    return done

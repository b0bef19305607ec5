"""Auto-finish: a ticket that waited too long for the customer is finished by carebox.

Guarantees (docs/architecture.md §10):
- A responded ticket's wait starts at its last public staff message (`last_message_at`:
  in `responded` no other message sets it). Working days are counted on the ticket's
  department calendar (domain/worktime.py): a local date with working time, so weekends
  without hours, public holidays, cuti bersama and the company's days off do not count.
- When CAREBOX_AUTO_FINISH_DAYS − 1 working days have passed (same local time of day),
  the customer gets a warning message in their language, on their channel: a public
  message of the conversation by carebox itself (`tickets.SYSTEM`), sent like any
  reply (email through the outbox, WhatsApp through its outbox and 24-hour rule:
  notifications.message_posted), with a FINISH_WARNED event on the timeline.
- When the N working days have passed, and at least one working day after the warning
  (a worker that was down never warns and finishes at once), SYSTEM finishes the
  ticket through the lifecycle; the customer gets the finish email with its rating
  links, as for any finish.
- Any public message (the customer's answer, a staff follow-up) or a move out of
  `responded` voids the warning (domain.tickets clears `auto_finish_warned_at`): the
  wait starts again.
- Safe with several workers: the warning is claimed by one conditional UPDATE
  (`auto_finish_warned_at IS NULL`), so it goes out once; the finish re-reads its ticket
  under a row lock (SELECT … FOR UPDATE) and checks again; the lifecycle's version check
  backs both. Each ticket is its own transaction: unlike the rest of domain/, this
  worker commits (as export_jobs does).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import DBAPIError

from ..extensions import db
from ..models import Ticket, TicketStatus
from ..models.base import utcnow
from . import DomainError, event_notes, notifications, tickets, worktime

log = logging.getLogger(__name__)
R = TicketStatus.RESPONDED
PAGE = 500


def days() -> int:
    """CAREBOX_AUTO_FINISH_DAYS: working days of waiting before the finish (0: off)."""
    return max(int(current_app.config.get("CAREBOX_AUTO_FINISH_DAYS", 5) or 0), 0)


def after_working_days(cal: worktime.Calendar, start: datetime, n: int) -> datetime:
    """The same local time of day as `start`, on the `n`th local date after it that has
    working time on `cal` (naive UTC, like every stored time)."""
    if n <= 0:
        return start
    local = cal.to_local(start)
    day = local.date()
    for _day in range(worktime.MAX_DAYS):
        day += timedelta(days=1)
        if cal.shifts(day):
            n -= 1
            if n == 0:
                return cal.to_utc(datetime.combine(day, local.time()))
    raise ValueError(f"no working day within {worktime.MAX_DAYS} days")


def schedule(cal, start: datetime, warned_at: datetime | None, n: int):
    """(when to warn, when to finish) a ticket whose wait began at `start`."""
    warn_at = after_working_days(cal, start, n - 1)
    finish_at = after_working_days(cal, start, n)
    if warned_at is not None:
        finish_at = max(finish_at, after_working_days(cal, warned_at, 1))
    return warn_at, finish_at


@dataclass
class Report:
    warned: int = 0
    finished: int = 0

    def __str__(self) -> str:
        return f"auto-finish: {self.warned} warned, {self.finished} finished"


def _candidates(now: datetime, n: int):
    """Responded tickets waiting at least n − 1 calendar days (working days are no
    fewer), page by page in the order of their wait (ix_ticket_status_last_message)."""
    cutoff = now - timedelta(days=n - 1)
    after = None
    while True:
        stmt = select(
            Ticket.id, Ticket.department_id, Ticket.last_message_at, Ticket.auto_finish_warned_at
        ).where(Ticket.status == R, Ticket.last_message_at <= cutoff)
        if after is not None:
            stmt = stmt.where(
                or_(
                    Ticket.last_message_at > after[0],
                    and_(Ticket.last_message_at == after[0], Ticket.id > after[1]),
                )
            )
        rows = db.session.execute(
            stmt.order_by(Ticket.last_message_at, Ticket.id).limit(PAGE)
        ).all()
        db.session.commit()  # end the read: each ticket is its own transaction
        if not rows:
            return
        yield rows
        after = (rows[-1].last_message_at, rows[-1].id)


def _warn(ticket_id: int, start: datetime, finish_at: datetime, cal, now: datetime) -> bool:
    claimed = db.session.execute(
        update(Ticket)
        .where(
            Ticket.id == ticket_id,
            Ticket.status == R,
            Ticket.last_message_at == start,
            Ticket.auto_finish_warned_at.is_(None),
        )
        .values(auto_finish_warned_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not claimed:  # another worker warned it, or the customer answered meanwhile
        db.session.rollback()
        return False
    ticket = db.session.get(Ticket, ticket_id, populate_existing=True)
    body = notifications.finish_warning_text(ticket, cal, finish_at)
    tickets.warn_before_finish(ticket, body, now=now)
    db.session.commit()
    return True


def _finish(ticket_id: int, cal, n: int, now: datetime) -> bool:
    ticket = db.session.scalars(
        select(Ticket)
        .where(Ticket.id == ticket_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()
    if ticket is None or ticket.status is not R or ticket.auto_finish_warned_at is None:
        db.session.rollback()
        return False
    finish_at = schedule(cal, ticket.last_message_at, ticket.auto_finish_warned_at, n)[1]
    if now < finish_at:
        db.session.rollback()
        return False
    coded = event_notes.encode(event_notes.AUTO_FINISHED, n=n)  # translated when shown
    tickets.finish(ticket, tickets.SYSTEM, coded=coded, now=now)
    db.session.commit()
    return True


def run(now: datetime | None = None) -> Report:
    """One pass: warn the tickets due a warning, finish those due a finish. Commits
    each ticket on its own; returns what it did."""
    report = Report()
    n = days()
    if n <= 0:
        return report
    now = now or utcnow()
    for rows in _candidates(now, n):
        calendars = worktime.load_many({r.department_id for r in rows})
        db.session.commit()
        for row in rows:
            cal = calendars[row.department_id]
            warn_at, finish_at = schedule(cal, row.last_message_at, row.auto_finish_warned_at, n)
            try:
                if row.auto_finish_warned_at is None and now >= warn_at:
                    report.warned += _warn(row.id, row.last_message_at, finish_at, cal, now)
                elif row.auto_finish_warned_at is not None and now >= finish_at:
                    report.finished += _finish(row.id, cal, n, now)
            except DomainError as exc:  # includes a conflict with a concurrent change
                db.session.rollback()
                log.info("auto-finish: ticket %s left alone: %s", row.id, exc)
    return report


def run_loop(
    interval: float,
    stop: threading.Event,
    on_report: Callable[[Report], None] | None = None,
) -> None:
    """Passes every `interval` seconds until `stop` is set (between tickets' passes)."""
    while not stop.is_set():
        try:
            report = run()
        except DBAPIError:
            db.session.rollback()
            log.exception("auto-finish: database error; retrying in %s s", interval)
        else:
            if on_report and (report.warned or report.finished):
                on_report(report)
        stop.wait(interval)

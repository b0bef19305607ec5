"""Service levels on working time: the due times a ticket's clocks give, and which matters now.

Guarantees:
- Each ticket has two clocks, first response and resolution, whose allowances are
  *working* hours per priority (CAREBOX_SLA_HOURS) counted on the calendar of the
  ticket's department — the default calendar (Customer Service's) while it has none —
  by domain/worktime.py, the only place that knows what working time is.
- A ticket stores, from `sla_since`, the working seconds left on each clock; its due
  times are `calendar.add(sla_since, left)`, so any recomputation (a holiday added, new
  hours) gives the same answer from the same facts.
- The clocks pause while the ticket waits for the customer (responded) and once it is
  finished, and resume when the customer answers (or it is reopened) with the time that
  was left; an escalation spends the time used so far on the old calendar and goes on
  with the rest on the new one; a priority change adds or takes away the difference.
- Whenever a stored due time moves for one of those reasons a DUE_MOVED event on the
  ticket's timeline says why, from what, to what (in the calendar's zone).
- The lifecycle (domain.tickets) calls `refresh` before every flush of a ticket, so the
  stored `Ticket.next_due_at` is kept in this one place.

Tickets from before working time (`sla_since` NULL) keep their stored due times until
they are touched or `carebox sla recompute --all` runs: then their clocks start from
filing on today's calendar (past pauses are not known and not given back).
"""

from __future__ import annotations

from datetime import datetime

from flask import current_app
from sqlalchemy import and_, case, select, update
from sqlalchemy.orm.attributes import set_committed_value

from ..extensions import db
from ..models import EventAction, Priority, Ticket, TicketEvent, TicketStatus
from ..models.base import utcnow
from . import event_notes, worktime

# The clock does not run while the ticket waits for the customer, nor once it is done.
STOPPED = (TicketStatus.RESPONDED, TicketStatus.FINISHED)
# (first response, resolution) in working hours; overridden by CAREBOX_SLA_HOURS.
DEFAULT_SLA_HOURS = {
    "urgent": (1, 8),
    "high": (4, 24),
    "normal": (8, 72),
    "low": (24, 120),
}
# A move smaller than this is rounding, not news for the timeline.
NOTEWORTHY_SECONDS = 60
# The share of a clock's allowance after which its warning goes out.
WARN_SHARE = 0.8


def sla_hours(priority: Priority) -> tuple[int, int]:
    """(first response, resolution) working hours allowed for `priority`."""
    table = {**DEFAULT_SLA_HOURS, **current_app.config.get("CAREBOX_SLA_HOURS", {})}
    first, resolve = table[Priority(priority).value]
    return int(first), int(resolve)


def _allowance(priority: Priority) -> tuple[int, int]:
    first, resolve = sla_hours(priority)
    return first * 3600, resolve * 3600


def next_due(ticket) -> datetime | None:
    """The due time that matters now: the first response's until answered, then the
    resolution's; None while the clock is stopped (responded, finished). `ticket` is a
    Ticket or anything with its attributes (a bulk loader's row)."""
    if ticket.status in STOPPED:
        return None
    if ticket.first_response_at is None:
        return ticket.first_response_due
    return ticket.resolution_due


def next_due_sql(t=Ticket):
    """`next_due` as SQL over the ticket table (or its Core table), for set-based updates."""
    return case(
        (t.status.in_(STOPPED), None),
        (t.first_response_at.is_(None), t.first_response_due),
        else_=t.resolution_due,
    )


def calendar(ticket: Ticket) -> worktime.Calendar:
    """The working calendar `ticket`'s clocks run on now: its department's (the one just
    assigned, else the stored id: no lazy load), or the default calendar."""
    department = ticket.__dict__.get("department")
    department_id = department.id if department is not None else ticket.department_id
    return worktime.load_many([department_id])[department_id]


def _current(ticket: Ticket) -> datetime | None:
    """The due time a reader looks at: first response until answered, then resolution."""
    if ticket.first_response_at is None:
        return ticket.first_response_due
    return ticket.resolution_due


def start(ticket: Ticket, now: datetime, cal: worktime.Calendar | None = None) -> None:
    """Start both clocks of a new ticket at `now` with its priority's allowances."""
    ticket.first_response_left, ticket.resolution_left = _allowance(ticket.priority)
    ticket.sla_since = now
    ticket.sla_paused_at = None
    _place(ticket, cal or calendar(ticket))


def _adopt(ticket: Ticket, now: datetime, cal: worktime.Calendar) -> None:
    """Put a ticket from before working time on it: clocks from filing, used until now."""
    ticket.first_response_left, ticket.resolution_left = _allowance(ticket.priority)
    ticket.sla_since = ticket.created_at
    ticket.sla_paused_at = None
    checkpoint(ticket, now, cal)


def checkpoint(ticket: Ticket, now: datetime, cal: worktime.Calendar | None = None) -> None:
    """Spend the working time since `sla_since` (on the calendar that applied to it) and
    restart the count at `now`. Call before the department, and so the calendar, changes.
    Nothing to do while paused: no time is being spent."""
    if ticket.sla_since is None:
        _adopt(ticket, now, cal or calendar(ticket))
        return
    if ticket.sla_paused_at is not None or now <= ticket.sla_since:
        return
    used = (cal or calendar(ticket)).between(ticket.sla_since, now)
    ticket.first_response_left -= used
    ticket.resolution_left -= used
    ticket.sla_since = now


def _place(ticket: Ticket, cal: worktime.Calendar) -> None:
    """Due times from what is left. A clock with nothing left is breached: its due time
    stays where it was (the moment it ran out), or at `sla_since` when a shorter
    allowance (a priority raised late) ran out before anyone knew."""
    for clock in ("first_response", "resolution"):
        left = getattr(ticket, f"{clock}_left")
        old = getattr(ticket, f"{clock}_due")
        if left > 0:
            due = cal.add(ticket.sla_since, left)
        elif old is not None and old <= ticket.sla_since:
            due = old
        else:
            due = ticket.sla_since
        setattr(ticket, f"{clock}_due", due)
    # The warning of the clock that matters: when 80 % of its allowance is used.
    clock = "first_response" if ticket.first_response_at is None else "resolution"
    allowance = _allowance(ticket.priority)[0 if clock == "first_response" else 1]
    left = getattr(ticket, f"{clock}_left")
    rest = left - (1 - WARN_SHARE) * allowance
    ticket.sla_warn_at = (
        cal.add(ticket.sla_since, rest) if rest > 0 else min(ticket.sla_since, _current(ticket))
    )


def move_note(first_clock: bool, before, after, cal, why: str) -> str:
    """The DUE_MOVED event's note: which clock, from when to when in the calendar's zone,
    and why (`why`: event_notes.encode'd, or plain text); stored neutral."""

    def local(t):
        return cal.to_local(t).strftime("%d-%m-%Y %H:%M")

    return event_notes.encode(  # translated when shown, in the viewer's language
        event_notes.DUE_MOVED,
        first=first_clock,
        old=local(before),
        new=local(after),
        zone=cal.abbr,
        calendar=cal.name or cal.zone,
        why=why,
    )


def _note_move(ticket, before, cal, now, why) -> None:
    after = _current(ticket)
    if (
        before is None
        or after is None
        or abs((after - before).total_seconds()) < (NOTEWORTHY_SECONDS)
    ):
        return
    note = move_note(ticket.first_response_at is None, before, after, cal, why)
    db.session.add(
        TicketEvent(ticket=ticket, action=EventAction.DUE_MOVED, note=note[:500], created_at=now)
    )


def replan(ticket: Ticket, now: datetime, why: str, cal: worktime.Calendar | None = None) -> None:
    """Recompute the due times from what is left on today's calendar (after an
    escalation, a priority change, a calendar edit) and say why on the timeline when
    they moved. While paused the due times wait for the resume."""
    if ticket.sla_since is None or ticket.sla_paused_at is not None:
        return
    cal = cal or calendar(ticket)
    before = _current(ticket)
    _place(ticket, cal)
    _note_move(ticket, before, cal, now, why)


def priority_changed(ticket: Ticket, old: Priority, now: datetime) -> None:
    """The allowances follow a new priority: the time used so far still counts."""
    cal = calendar(ticket)
    checkpoint(ticket, now, cal)
    old_first, old_resolve = _allowance(old)
    new_first, new_resolve = _allowance(ticket.priority)
    ticket.first_response_left += new_first - old_first
    ticket.resolution_left += new_resolve - old_resolve
    replan(
        ticket,
        now,
        event_notes.encode(event_notes.PRIORITY, old=old.value, new=ticket.priority.value),
        cal,
    )


def refresh(ticket: Ticket, now: datetime | None = None) -> None:
    """Pause or resume the clocks as the status says, then store `next_due(ticket)`
    (called by the lifecycle before it flushes)."""
    now = now or utcnow()
    stopped = ticket.status in STOPPED
    if ticket.sla_since is None and ticket.first_response_due is not None:
        cal = calendar(ticket)
        before = _current(ticket)
        _adopt(ticket, now, cal)
        if stopped:
            ticket.sla_paused_at = now
        else:
            _place(ticket, cal)
            _note_move(ticket, before, cal, now, event_notes.encode(event_notes.WORKING_TIME))
    elif stopped and ticket.sla_paused_at is None:
        cal = calendar(ticket)
        checkpoint(ticket, now, cal)
        ticket.sla_paused_at = now
    elif not stopped and ticket.sla_paused_at is not None:
        cal = calendar(ticket)
        waited = cal.between(ticket.sla_paused_at, now)
        before = _current(ticket)
        ticket.sla_paused_at = None
        ticket.sla_since = now
        first = ticket.first_response_at
        if ticket.sla_warned_at and first and ticket.sla_warned_at < first:
            ticket.sla_warned_at = None  # that was the first response's warning
        _place(ticket, cal)
        why = event_notes.encode(event_notes.RESUMED, hours=_hours(waited))
        _note_move(ticket, before, cal, now, why)
    _record_work(ticket)
    ticket.next_due_at = next_due(ticket)


def _record_work(ticket: Ticket) -> None:
    """The working time each clock had used when it was met: at the first response, and
    at (each) finish — waiting for the customer not counted, like the SLA itself. The
    dashboard's and reports' medians read these (None for tickets from before working
    time, which are measured on the wall clock: views/sqlhelpers.py)."""
    if ticket.sla_since is None or ticket.first_response_left is None:
        return
    first, resolve = _allowance(ticket.priority)
    if ticket.first_response_at is not None and ticket.first_response_work is None:
        ticket.first_response_work = max(first - ticket.first_response_left, 0)
    if ticket.status is TicketStatus.FINISHED:
        ticket.resolution_work = max(resolve - ticket.resolution_left, 0)


def _hours(seconds: int) -> str:
    return f"{seconds / 3600:.1f}".rstrip("0").rstrip(".")


RUNNING = (TicketStatus.PROGRESS, TicketStatus.TEAM)


def breaching_soon(now: datetime, t=Ticket):
    """SQL: running tickets past 80 % of the clock that matters, not yet breached."""
    return and_(t.status.in_(RUNNING), t.sla_warn_at <= now, t.next_due_at > now)


def send_warnings(now: datetime | None = None, limit: int = 500) -> int:
    """Warn about the tickets whose running clock passed 80 % of its allowance: each
    ticket is claimed by one conditional UPDATE (two workers never both warn it), then
    its assignee — or, unassigned, its department's admins — is emailed when
    CAREBOX_SLA_WARNING_EMAIL is on (the email is queued in the same transaction as the
    claim, so it goes out exactly once). The home page counts them either way.
    Returns how many were warned; the caller commits."""
    from . import notifications

    now = now or utcnow()
    ids = db.session.scalars(
        select(Ticket.id)
        .where(
            Ticket.status.in_(RUNNING),
            Ticket.sla_warn_at <= now,
            Ticket.sla_warned_at.is_(None),
        )
        .order_by(Ticket.sla_warn_at, Ticket.id)
        .limit(limit)
    ).all()
    warned = 0
    for ticket_id in ids:
        claimed = db.session.execute(
            update(Ticket)
            .where(Ticket.id == ticket_id, Ticket.sla_warned_at.is_(None))
            .values(sla_warned_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount
        if not claimed:
            continue
        warned += 1
        ticket = db.session.get(Ticket, ticket_id)
        set_committed_value(ticket, "sla_warned_at", now)  # what the UPDATE wrote
        not_breached = ticket.next_due_at is not None and ticket.next_due_at > now
        if not_breached and current_app.config.get("CAREBOX_SLA_WARNING_EMAIL"):
            notifications.sla_warning(ticket)
    db.session.flush()
    return warned


def calendar_changed(
    why: str,
    *,
    department_ids=None,
    days=None,
    now: datetime | None = None,
) -> int:
    """A calendar changed (hours or zone of `department_ids`, or company days `days`):
    recompute the due times of the running tickets it can move and say why on each
    one's timeline. Only tickets whose clocks span a changed day are read (a day off
    far from a ticket's window cannot move it); with neither argument, every running
    ticket. Set-based, in the database (domain/sla_bulk.py), not a loop over rows.
    Returns how many tickets' due times moved. Flushes, never commits."""
    from datetime import timedelta

    from sqlalchemy import or_

    from ..models import Department
    from . import sla_bulk

    now = now or utcnow()
    stmt = select(Ticket.id).where(
        Ticket.status.in_(RUNNING), Ticket.sla_since.is_not(None), Ticket.sla_paused_at.is_(None)
    )
    if department_ids is not None:
        ids = set(department_ids)
        default = db.session.scalar(
            select(Department.id).where(
                Department.code == current_app.config.get("CAREBOX_DEFAULT_CALENDAR", "CS")
            )
        )
        dept = Ticket.department_id.in_(ids)
        stmt = stmt.where(or_(dept, Ticket.department_id.is_(None)) if default in ids else dept)
    if days:
        # a local day is within a day of its UTC span in every Indonesian zone
        first = datetime.combine(min(days), datetime.min.time()) - timedelta(days=1)
        last = datetime.combine(max(days), datetime.min.time()) + timedelta(days=2)
        stmt = stmt.where(
            Ticket.sla_since < last,
            or_(Ticket.first_response_due >= first, Ticket.resolution_due >= first),
        )
    db.session.flush()  # the set-based statements read what the session holds
    return sla_bulk.recompute(and_(*stmt.whereclause.clauses), why, now.replace(microsecond=0))


def adopt_all(now: datetime | None = None) -> int:
    """Put every open ticket from before working time on it (see the module's last
    paragraph), as `refresh` does one ticket, set-based in the database
    (`sla_bulk.adopt`): at a million tickets most open ones can be from before. Returns
    how many; the caller commits."""
    from . import sla_bulk

    db.session.flush()  # the set-based statements read what the session holds
    return sla_bulk.adopt(
        and_(Ticket.status != TicketStatus.FINISHED, Ticket.sla_since.is_(None)),
        (now or utcnow()).replace(microsecond=0),
    )


def explain(ticket: Ticket) -> list[str]:
    """What a supervisor asks when a customer disputes a breach, as text lines: the
    calendar used, the due times, whether the clock runs, each move of the due time
    with its reason, and the holidays and company days off that fell in the window."""
    cal = calendar(ticket)

    def local(t):
        return f"{cal.to_local(t):%a %d-%m-%Y %H:%M} {cal.abbr}" if t else "—"

    def hours(seconds):
        return "—" if seconds is None else _hours(seconds)

    dept = ticket.department.code if ticket.department else "—"
    lines = [
        f"{ticket.number} · {ticket.status.value} · {ticket.priority.value}",
        f"calendar: {cal.name or 'wall clock'} (department {dept}), {cal.zone} ({cal.abbr})"
        + ("" if cal.observes_holidays else ", holidays not observed"),
        *("  " + line for line in cal.describe()),
        f"filed: {local(ticket.created_at)}",
        f"first response due: {local(ticket.first_response_due)}; "
        f"answered: {local(ticket.first_response_at)}",
        f"resolution due: {local(ticket.resolution_due)}; finished: {local(ticket.finished_at)}",
        f"working hours left from {local(ticket.sla_since)}: first response "
        f"{hours(ticket.first_response_left)}, resolution {hours(ticket.resolution_left)}",
        "clock: "
        + (
            f"paused since {local(ticket.sla_paused_at)}"
            if ticket.sla_paused_at
            else "running"
            if ticket.sla_since
            else "wall clock (before working time)"
        ),
        f"breached now: {'yes' if ticket.sla_breached(utcnow()) else 'no'}",
        "moves:",
    ]
    events = db.session.scalars(
        select(TicketEvent)
        .where(TicketEvent.ticket_id == ticket.id)
        .order_by(TicketEvent.created_at, TicketEvent.id)
    )
    for ev in events:
        if ev.action in (
            EventAction.DUE_MOVED,
            EventAction.REPLIED,
            EventAction.CUSTOMER_REPLIED,
            EventAction.ESCALATED,
            EventAction.DISPATCHED,
            EventAction.PRIORITY,
            EventAction.FINISHED,
            EventAction.REOPENED,
        ):
            note = event_notes.text(ev.note)
            lines.append(f"  {local(ev.created_at)} {ev.action.value}: {note}".rstrip(": "))
    last = max(t for t in (ticket.first_response_due, ticket.resolution_due, utcnow()) if t)
    off = cal.days_off(ticket.created_at, min(last, ticket.resolution_due))
    lines.append("days off in the window:" + ("" if off else " none"))
    lines.extend(f"  {d:%a %d-%m-%Y} {name}" for d, name in off)
    return lines

"""Recomputing the due times of many running tickets in the database, not row by row.

`sla.calendar_changed` (a holiday or hours edited, the nightly `carebox sla recompute`)
may touch every running ticket — about 150,000 at a million tickets. Reading them as
ORM rows and calling `Calendar.add` per ticket took minutes; here the work is set-based:

1. Each calendar involved is written out once over the span the tickets need
   (`sla_work_interval`, from domain/worktime.py, the only code that knows what working
   time is): its timeline in pieces within one UTC day, working or not, each with the
   working seconds before it (`cum_s`), in epoch seconds — some tens of thousands of rows.
2. With C(t) = working seconds up to instant t, a due time is C⁻¹(C(sla_since) + left).
   Both are equality lookups (the UTC day of t; the 86,400-working-second bucket of the
   target) that read a handful of rows: MariaDB uses no range bound taken from an outer
   row, so a range lookup read thousands per ticket. One INSERT … SELECT and one UPDATE
   store C(sla_since) per ticket, one UPDATE computes the three instants (first
   response, resolution, the 80 % warning) exactly as `sla._place` does — including its
   rules for a clock that ran out.
3. One UPDATE … JOIN writes the changed due times to `ticket`, one more `next_due_at`.
   Only the tickets whose due time moved get their DUE_MOVED event, written from
   Python (its note is text in the calendar's zone) in one multi-row INSERT.

A ticket the intervals cannot answer (a clock reaching past the span) falls back to
`sla.replan`. Times are whole seconds (the column's resolution on MariaDB).
Flushes, never commits; the scratch rows of the run are deleted before it returns.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import (
    BigInteger,
    DateTime,
    and_,
    case,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from ..extensions import db
from ..models import EventAction, Priority, SlaWorkDue, SlaWorkInterval, Ticket, TicketEvent
from . import worktime

EPOCH = datetime(1970, 1, 1)
DAY = 86_400
HORIZON = timedelta(days=400)  # after now: past any allowance on any real calendar
BACK = timedelta(days=2 * 366)  # before now: a clock running longer falls back to Python


class epoch_s(FunctionElement):  # noqa: N801
    """Whole seconds since 1970 of a naive-UTC DATETIME column."""

    type = BigInteger()
    name = "epoch_s"
    inherit_cache = True


@compiles(epoch_s, "sqlite")
def _epoch_sqlite(element, compiler, **kw):
    return f"CAST(strftime('%s', {compiler.process(element.clauses, **kw)}) AS INTEGER)"


@compiles(epoch_s, "mysql")
@compiles(epoch_s, "mariadb")
def _epoch_mysql(element, compiler, **kw):
    col = compiler.process(element.clauses, **kw)
    return f"TIMESTAMPDIFF(SECOND, '1970-01-01 00:00:00', {col})"


class from_epoch(FunctionElement):  # noqa: N801
    """The naive-UTC DATETIME of whole epoch seconds."""

    type = DateTime()
    name = "from_epoch"
    inherit_cache = True


@compiles(from_epoch, "sqlite")
def _from_epoch_sqlite(element, compiler, **kw):
    # stored like SQLAlchemy stores datetimes on SQLite, so comparisons stay textual-safe
    return f"(datetime({compiler.process(element.clauses, **kw)}, 'unixepoch') || '.000000')"


@compiles(from_epoch, "mysql")
@compiles(from_epoch, "mariadb")
def _from_epoch_mysql(element, compiler, **kw):
    x = compiler.process(element.clauses, **kw)
    return f"DATE_ADD('1970-01-01 00:00:00', INTERVAL ({x}) SECOND)"


class idiv(FunctionElement):  # noqa: N801
    """Integer division of two non-negative integers."""

    type = BigInteger()
    name = "idiv"
    inherit_cache = True


@compiles(idiv, "sqlite")
def _idiv_sqlite(element, compiler, **kw):
    a, b = (compiler.process(c, **kw) for c in element.clauses)
    return f"(({a}) / ({b}))"


@compiles(idiv, "mysql")
@compiles(idiv, "mariadb")
def _idiv_mysql(element, compiler, **kw):
    a, b = (compiler.process(c, **kw) for c in element.clauses)
    return f"(({a}) DIV ({b}))"


def _seconds(column):
    return func.coalesce(epoch_s(column), -1)


def _s(moment: datetime) -> int:
    return int((moment - EPOCH).total_seconds())


def _intervals(run: str, key: int, cal: worktime.Calendar, first: datetime, last: datetime):
    """The rows of one calendar from `first` to `last`: the timeline's pieces ('t') and
    the working pieces by working-second bucket ('w'), see SlaWorkInterval."""
    work = []
    day, end = cal.local_date(first) - timedelta(days=1), cal.local_date(last) + timedelta(days=1)
    while day <= end:
        work.extend((_s(a), _s(b)) for a, b in cal.shifts(day))
        day += timedelta(days=1)
    t0 = (_s(first) // DAY - 1) * DAY
    t1 = (_s(last) // DAY + 2) * DAY
    pieces, cursor = [], t0
    for a, b in work:
        if a >= t1 or b <= t0:
            continue
        if a > cursor:
            pieces.append((cursor, a, 0))
        pieces.append((max(a, cursor), b, 1))
        cursor = b
    if cursor < t1:
        pieces.append((cursor, t1, 0))
    rows, cum = [], 0
    for a, b, working in pieces:
        while a < b:  # split at UTC midnights: a piece lies within its bucket's day
            cut = min(b, (a // DAY + 1) * DAY)
            length = cut - a
            base = {"run": run, "calendar_id": key, "start_s": a, "len_s": length}
            rows.append({**base, "kind": "t", "bucket": a // DAY, "work": working, "cum_s": cum})
            if working:
                for bucket in range(cum // DAY, (cum + length - 1) // DAY + 1):
                    rows.append({**base, "kind": "w", "bucket": bucket, "work": 1, "cum_s": cum})
                cum += length
            a = cut
    return rows


def _fifth_sql(hours: dict, clock: int):
    """20 % of the allowance in seconds (1 h = 720 s: whole) of the ticket's priority for
    clock 0 (first response) or 1 (resolution), as SQL."""
    return case(*[(Ticket.priority == p, int(hours[p][clock]) * 720) for p in Priority], else_=0)


def recompute(condition, why: str, now: datetime) -> int:
    """Recompute the due times of the running tickets `condition` selects (on today's
    calendars), note each move on its ticket's timeline; returns how many moved."""
    from . import sla

    ids = [
        r[0] for r in db.session.execute(select(Ticket.department_id).where(condition).distinct())
    ]
    if not ids:
        return 0
    run = uuid.uuid4().hex
    calendars = worktime.load_many(ids)
    since_min = db.session.scalar(select(func.min(Ticket.sla_since)).where(condition))
    first, last = max(since_min, now - BACK), now + HORIZON
    W, D = SlaWorkInterval.__table__, SlaWorkDue.__table__  # noqa: N806
    for dep in ids:
        rows = _intervals(run, dep or 0, calendars[dep], first, last)
        for i in range(0, len(rows), 5000):
            db.session.execute(insert(W), rows[i : i + 5000])
    try:
        return _compute(run, condition, why, now, calendars, sla)
    finally:
        db.session.execute(delete(W).where(W.c.run == run))
        db.session.execute(delete(D).where(D.c.run == run))


def adopt(condition, now: datetime) -> int:
    """Put the tickets `condition` selects (open, from before working time: `sla_since`
    NULL) on working time as `sla.refresh` does one ticket: both clocks from filing with
    the priority's allowances, less the working time from filing until `now` —
    C(now) − C(created_at) on the ticket's calendar, from the same intervals as
    `recompute` — counted from `now`; paused while it waits for the customer, else its
    due times placed (and their moves noted) by `recompute`; the working time of a first
    response that was met recorded. A ticket the intervals cannot answer (filed before
    BACK, or without due times) goes through `sla.refresh`. Not an edit: no version
    moves. Returns how many tickets; flushes, never commits."""
    from . import event_notes, sla

    W, D, T = SlaWorkInterval.__table__, SlaWorkDue.__table__, Ticket.__table__  # noqa: N806
    deps = [r[0] for r in db.session.execute(select(T.c.department_id).where(condition).distinct())]
    if not deps:
        return 0
    run = uuid.uuid4().hex
    calendars = worktime.load_many(deps)
    oldest = db.session.scalar(select(func.min(T.c.created_at)).where(condition))
    first = max(min(oldest, now), now - BACK)
    now_s, now_cum = _s(now), {}
    for dep in deps:
        rows = _intervals(run, dep or 0, calendars[dep], first, now + timedelta(days=1))
        now_cum[dep or 0] = next(
            r["cum_s"] + r["work"] * (now_s - r["start_s"])
            for r in rows
            if r["kind"] == "t" and r["start_s"] <= now_s < r["start_s"] + r["len_s"]
        )
        for i in range(0, len(rows), 5000):
            db.session.execute(insert(W), rows[i : i + 5000])
    try:
        _start(run, and_(condition, T.c.first_response_due.is_not(None)), T.c.created_at)
        mine = and_(D.c.run == run, D.c.ticket_id == T.c.id, D.c.since_cum.is_not(None))
        used = case(now_cum, value=D.c.calendar_id) - D.c.since_cum
        hours = {p: sla.sla_hours(p) for p in Priority}

        def allowance(clock):
            return case(*[(T.c.priority == p, hours[p][clock] * 3600) for p in Priority], else_=0)

        stopped = T.c.status.in_(sla.STOPPED)
        db.session.execute(
            update(T)
            .where(mine, T.c.created_at < now)
            .values(
                first_response_left=allowance(0) - used,
                resolution_left=allowance(1) - used,
                sla_since=now,
                sla_paused_at=case((stopped, now), else_=None),
            )
        )
        adopted = select(D.c.ticket_id).where(D.c.run == run, D.c.since_cum.is_not(None))
        ours = and_(T.c.id.in_(adopted), T.c.sla_since == now)
        met = allowance(0) - T.c.first_response_left
        db.session.execute(
            update(T)
            .where(ours, T.c.first_response_at.is_not(None), T.c.first_response_work.is_(None))
            .values(first_response_work=case((met > 0, met), else_=0))
        )
        db.session.execute(update(T).where(ours, stopped).values(next_due_at=None))
        placed = and_(ours, T.c.status.in_(sla.RUNNING), T.c.sla_paused_at.is_(None))
        recompute(placed, event_notes.encode(event_notes.WORKING_TIME), now)
        done = db.session.scalar(select(func.count()).select_from(T).where(ours))
    finally:
        db.session.execute(delete(W).where(W.c.run == run))
        db.session.execute(delete(D).where(D.c.run == run))
    for obj in list(db.session.identity_map.values()):  # what the session holds is stale
        if isinstance(obj, Ticket):
            db.session.expire(obj)
    rest = db.session.scalars(select(Ticket).where(condition)).all()
    for ticket in rest:
        sla.refresh(ticket, now)
    db.session.flush()
    return done + len(rest)


def _start(run, condition, since) -> None:
    """The scratch rows of `run` for the tickets `condition` selects, each with C(`since`)
    (its column of ticket): the working seconds of its calendar up to that instant, NULL
    outside the intervals."""
    W, D, T = SlaWorkInterval.__table__, SlaWorkDue.__table__, Ticket.__table__  # noqa: N806
    db.session.execute(
        insert(D).from_select(
            ["run", "ticket_id", "calendar_id", "since_s"],
            select(literal(run), T.c.id, func.coalesce(T.c.department_id, 0), epoch_s(since)).where(
                condition
            ),
        )
    )
    # C(since): the piece of the timeline holding it, by its UTC day
    db.session.execute(
        update(D)
        .where(D.c.run == run)
        .values(
            since_cum=select(W.c.cum_s + W.c.work * (D.c.since_s - W.c.start_s))
            .where(
                W.c.run == run,
                W.c.calendar_id == D.c.calendar_id,
                W.c.kind == "t",
                W.c.bucket == idiv(D.c.since_s, DAY),
                W.c.start_s <= D.c.since_s,
                W.c.start_s + W.c.len_s > D.c.since_s,
            )
            .limit(1)
            .scalar_subquery()
        )
    )


def _compute(run, condition, why, now, calendars, sla) -> int:
    W, D, T = SlaWorkInterval.__table__, SlaWorkDue.__table__, Ticket.__table__  # noqa: N806
    _start(run, condition, T.c.sla_since)

    def inverse(target):
        """C⁻¹(target): the instant the working seconds reach `target` (the end of a shift
        when they end with it, as Calendar.add); NULL past the intervals."""
        return (
            select(from_epoch(W.c.start_s + (target - W.c.cum_s)))
            .where(
                W.c.run == run,
                W.c.calendar_id == D.c.calendar_id,
                W.c.kind == "w",
                W.c.bucket == idiv(target - 1, DAY),
                W.c.cum_s < target,
                W.c.cum_s + W.c.len_s >= target,
            )
            .limit(1)
            .scalar_subquery()
        )

    def placed(left, old):
        # sla._place: time left → its instant; none left → stays where it ran out
        return case(
            (left > 0, inverse(D.c.since_cum + left)),
            (old <= T.c.sla_since, old),
            else_=T.c.sla_since,
        )

    hours = {p: sla.sla_hours(p) for p in Priority}
    answered = T.c.first_response_at.is_not(None)
    left = case((answered, T.c.resolution_left), else_=T.c.first_response_left)
    fifth = case((answered, _fifth_sql(hours, 1)), else_=_fifth_sql(hours, 0))
    old_current = case((answered, T.c.resolution_due), else_=T.c.first_response_due)
    rest = left - fifth  # what is left when 80 % of the allowance is used
    warn = case(
        (rest > 0, inverse(D.c.since_cum + rest)),
        (left > 0, T.c.sla_since),
        (old_current <= T.c.sla_since, old_current),
        else_=T.c.sla_since,
    )
    db.session.execute(
        update(D)
        .where(D.c.run == run, D.c.ticket_id == T.c.id, D.c.since_cum.is_not(None))
        .values(
            first_response_due=placed(T.c.first_response_left, T.c.first_response_due),
            resolution_due=placed(T.c.resolution_left, T.c.resolution_due),
            sla_warn_at=warn,
        )
    )
    # Whatever the intervals could not answer: the per-ticket path, rare by construction.
    lost = or_(D.c.first_response_due.is_(None), D.c.resolution_due.is_(None))
    stragglers = db.session.scalars(select(D.c.ticket_id).where(D.c.run == run, lost)).all()
    db.session.execute(delete(D).where(D.c.run == run, lost))

    differs = or_(
        epoch_s(T.c.first_response_due) != epoch_s(D.c.first_response_due),
        epoch_s(T.c.resolution_due) != epoch_s(D.c.resolution_due),
    )
    mine = and_(D.c.run == run, D.c.ticket_id == T.c.id)
    new_current = case((answered, D.c.resolution_due), else_=D.c.first_response_due)
    notes = db.session.execute(
        select(T.c.id, T.c.department_id, answered, old_current, new_current).where(
            mine,
            func.abs(epoch_s(old_current) - epoch_s(new_current)) >= sla.NOTEWORTHY_SECONDS,
        )
    ).all()
    moved = db.session.scalar(select(func.count()).select_from(T).where(mine, differs))
    db.session.execute(
        update(T)
        .where(mine, or_(differs, _seconds(T.c.sla_warn_at) != _seconds(D.c.sla_warn_at)))
        .values(
            first_response_due=D.c.first_response_due,
            resolution_due=D.c.resolution_due,
            sla_warn_at=D.c.sla_warn_at,
        )
    )
    next_due = sla.next_due_sql(T.c)
    db.session.execute(
        update(T)
        .where(
            T.c.id.in_(select(D.c.ticket_id).where(D.c.run == run)),
            _seconds(T.c.next_due_at) != _seconds(next_due),
        )
        .values(next_due_at=next_due)
    )
    events = [
        {
            "ticket_id": ticket_id,
            "action": EventAction.DUE_MOVED,
            "note": sla.move_note(not is_answered, before, after, calendars[dep], why)[:500],
            "created_at": now,
        }
        for ticket_id, dep, is_answered, before, after in notes
    ]
    for i in range(0, len(events), 5000):
        db.session.execute(insert(TicketEvent), events[i : i + 5000])
    for obj in list(db.session.identity_map.values()):  # what the session holds is stale
        if isinstance(obj, Ticket):
            db.session.expire(obj)
    for ticket_id in stragglers:
        ticket = db.session.get(Ticket, ticket_id)
        before = (ticket.first_response_due, ticket.resolution_due)
        sla.replan(ticket, now, why, calendars[ticket.department_id])
        ticket.next_due_at = sla.next_due(ticket)
        moved += (ticket.first_response_due, ticket.resolution_due) != before
    db.session.flush()
    return moved

"""Portable SQL for the lists, the dashboard and the reports (SQLite and MariaDB alike).

Timestamps are stored as naive UTC. Days and months are the company's local
ones (BABEL_DEFAULT_TIMEZONE, Asia/Jakarta): the database shifts each
timestamp by the zone's current UTC offset before cutting it into days. The
zone has no daylight saving time, so one offset is exact; for a zone with DST
the figures around a switch would be off by an hour.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import (
    Float,
    Integer,
    Select,
    String,
    case,
    func,
    literal,
    null,
    select,
    union_all,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from ..models import Ticket

# --- time zone -------------------------------------------------------------


def local_zone() -> ZoneInfo:
    return ZoneInfo(current_app.config["BABEL_DEFAULT_TIMEZONE"])


def offset_minutes() -> int:
    offset = datetime.now(local_zone()).utcoffset() or timedelta()
    return int(offset.total_seconds() // 60)


def local_today() -> date:
    return datetime.now(local_zone()).date()


# The days a filter may name: MariaDB's DATETIME starts at 1000-01-01, and Python's
# datetime ends at 9999-12-31 (a day later, or a zone shift earlier, overflows).
# Days outside are moved to the nearest end: such a range simply matches no row.
FIRST_DAY = date(1000, 1, 1)
LAST_DAY = date(9998, 12, 31)


def clamp_day(day: date) -> date:
    return min(max(day, FIRST_DAY), LAST_DAY)


def utc_bounds(first: date, last: date) -> tuple[datetime, datetime]:
    """[start, end) in naive UTC covering the local days `first`..`last` inclusive.

    Days before 1000 or after 9998 are clamped (see FIRST_DAY), never an overflow.
    """
    first, last = clamp_day(first), clamp_day(last)
    shift = timedelta(minutes=offset_minutes())
    start = datetime.combine(first, time.min) - shift
    end = datetime.combine(last + timedelta(days=1), time.min) - shift
    return start, end


# --- portable functions ----------------------------------------------------


class seconds_between(FunctionElement):  # noqa: N801 (reads like the SQL function it is)
    """Seconds from the first timestamp to the second."""

    type = Float()
    name = "seconds_between"
    inherit_cache = True


@compiles(seconds_between, "sqlite")
def _seconds_sqlite(element, compiler, **kw):
    start, end = (compiler.process(c, **kw) for c in element.clauses.clauses)
    return f"((julianday({end}) - julianday({start})) * 86400.0)"


@compiles(seconds_between, "mysql")
@compiles(seconds_between, "mariadb")
def _seconds_mysql(element, compiler, **kw):
    start, end = (compiler.process(c, **kw) for c in element.clauses.clauses)
    return f"TIMESTAMPDIFF(SECOND, {start}, {end})"


@compiles(seconds_between)
def _seconds_default(element, compiler, **kw):
    start, end = (compiler.process(c, **kw) for c in element.clauses.clauses)
    return f"EXTRACT(EPOCH FROM ({end} - {start}))"


class local_day(FunctionElement):  # noqa: N801
    """The local calendar day of a UTC timestamp, as 'YYYY-MM-DD' (or a DATE)."""

    type = String()
    name = "local_day"
    inherit_cache = False  # `minutes` is not part of the cache key: compile every time

    def __init__(self, column, minutes: int):
        self.minutes = int(minutes)
        super().__init__(column)


@compiles(local_day, "sqlite")
def _day_sqlite(element, compiler, **kw):
    col = compiler.process(element.clauses.clauses[0], **kw)
    return f"date({col}, '{element.minutes:+d} minutes')"


@compiles(local_day, "mysql")
@compiles(local_day, "mariadb")
def _day_mysql(element, compiler, **kw):
    col = compiler.process(element.clauses.clauses[0], **kw)
    return f"DATE(DATE_ADD({col}, INTERVAL {element.minutes:d} MINUTE))"


class local_time(FunctionElement):  # noqa: N801
    """A UTC timestamp as local 'YYYY-MM-DD HH:MM:SS' text, cut (not rounded) to the second."""

    type = String()
    name = "local_time"
    inherit_cache = False  # `minutes` is not part of the cache key: compile every time

    def __init__(self, column, minutes: int):
        self.minutes = int(minutes)
        super().__init__(column)


@compiles(local_time, "sqlite")
def _time_sqlite(element, compiler, **kw):
    col = compiler.process(element.clauses.clauses[0], **kw)
    # The fraction goes first: strftime would round .9995 up to the next second.
    return f"strftime('%Y-%m-%d %H:%M:%S', substr({col}, 1, 19), '{element.minutes:+d} minutes')"


@compiles(local_time, "mysql")
@compiles(local_time, "mariadb")
def _time_mysql(element, compiler, **kw):
    col = compiler.process(element.clauses.clauses[0], **kw)
    form = compiler.process(literal("%Y-%m-%d %H:%i:%s"), **kw)  # a bind: "%" is the driver's
    return f"DATE_FORMAT(DATE_ADD({col}, INTERVAL {element.minutes:d} MINUTE), {form})"


class microseconds_between(FunctionElement):  # noqa: N801
    """Whole microseconds from the first timestamp to the second (exact, unlike
    `seconds_between` on SQLite, whose julianday() is a float)."""

    type = Integer()
    name = "microseconds_between"
    inherit_cache = True


def _sqlite_us(col: str) -> str:
    # SQLAlchemy stores 'YYYY-MM-DD HH:MM:SS.ffffff' on SQLite (six digits, or none).
    return (
        f"(CAST(strftime('%s', substr({col}, 1, 19)) AS INTEGER) * 1000000"
        f" + CAST(substr({col}, 21, 6) AS INTEGER))"
    )


@compiles(microseconds_between, "sqlite")
def _us_sqlite(element, compiler, **kw):
    start, end = (compiler.process(c, **kw) for c in element.clauses.clauses)
    return f"({_sqlite_us(end)} - {_sqlite_us(start)})"


@compiles(microseconds_between, "mysql")
@compiles(microseconds_between, "mariadb")
def _us_mysql(element, compiler, **kw):
    start, end = (compiler.process(c, **kw) for c in element.clauses.clauses)
    return f"TIMESTAMPDIFF(MICROSECOND, {start}, {end})"


class local_month(FunctionElement):  # noqa: N801
    """The local month of a UTC timestamp as an integer YYYYMM."""

    type = Integer()
    name = "local_month"
    inherit_cache = False  # `minutes` is not part of the cache key: compile every time

    def __init__(self, column, minutes: int):
        self.minutes = int(minutes)
        super().__init__(column)


@compiles(local_month, "sqlite")
def _month_sqlite(element, compiler, **kw):
    col = compiler.process(element.clauses.clauses[0], **kw)
    return f"CAST(strftime('%Y%m', {col}, '{element.minutes:+d} minutes') AS INTEGER)"


@compiles(local_month, "mysql")
@compiles(local_month, "mariadb")
def _month_mysql(element, compiler, **kw):
    col = compiler.process(element.clauses.clauses[0], **kw)
    return f"EXTRACT(YEAR_MONTH FROM DATE_ADD({col}, INTERVAL {element.minutes:d} MINUTE))"


def day_key(value) -> str:
    """'YYYY-MM-DD' whether the driver returned a string or a date."""
    return str(value)[:10]


# --- medians ---------------------------------------------------------------


def first_response_seconds():
    """Working seconds to the first response on the ticket's calendar (domain/sla.py
    stores them); wall-clock seconds for a ticket from before working time."""
    return case(
        (Ticket.first_response_at.is_(None), None),
        else_=func.coalesce(
            Ticket.first_response_work,
            seconds_between(Ticket.created_at, Ticket.first_response_at),
        ),
    )


def resolution_seconds():
    """Working seconds to the finish, waiting for the customer not counted (as the SLA
    counts them); wall-clock seconds for a ticket from before working time. A reopened
    ticket has none until it is finished again."""
    return case(
        (Ticket.finished_at.is_(None), None),
        else_=func.coalesce(
            Ticket.resolution_work, seconds_between(Ticket.created_at, Ticket.finished_at)
        ),
    )


def medians(value, where, groups=()) -> dict[tuple, float]:
    """Median of `value` per group, computed in the database with window functions.

    ROW_NUMBER and COUNT over the same partition find the middle row (odd
    count) or the two middle rows (even count), whose values are averaged.
    `2*rn IN (cnt, cnt+1, cnt+2)` picks exactly those rows without integer
    division, which SQLite and MariaDB spell differently. Returns
    {group tuple: median}; the key is () without groups.
    """
    groups = list(groups)
    partition = groups or None
    inner = (
        select(
            *[g.label(f"g{i}") for i, g in enumerate(groups)],
            value.label("v"),
            func.row_number().over(partition_by=partition, order_by=value).label("rn"),
            func.count().over(partition_by=partition).label("cnt"),
        )
        .where(where, value.is_not(None))
        .subquery()
    )
    keys = [inner.c[f"g{i}"] for i in range(len(groups))]
    stmt = select(*keys, func.avg(inner.c.v)).where(
        (inner.c.rn * 2).in_([inner.c.cnt, inner.c.cnt + 1, inner.c.cnt + 2])
    )
    if keys:
        stmt = stmt.group_by(*keys)
    from ..extensions import db

    rows = db.session.execute(stmt)
    return {tuple(row[:-1]): float(row[-1]) for row in rows if row[-1] is not None}


# --- capped counts -----------------------------------------------------------

# The lists and the home page count at most this many rows per figure; past it
# they show "10000+". An exact COUNT(*) reads every entry of an index range: on
# 1,000,000 tickets the Finished list alone is ~400,000 entries (0.15-0.5 s on
# MariaDB here), while a count that stops at 10,001 costs a few milliseconds.
# Below the cap every figure is exact. (Tests lower it through this name.)
COUNT_CAP = 10_000


class CappedCount(int):
    """A count known only from below (it reached the cap): prints as "10000+"."""

    def __str__(self) -> str:
        return f"{int(self)}+"

    def __html__(self) -> str:
        return str(self)


def capped(n: int, cap: int) -> int:
    return CappedCount(cap) if n > cap else int(n)


def at_least(counts) -> int:
    """The sum of counts, itself a CappedCount ("N+") if any of them was capped."""
    counts = list(counts)
    total = sum(int(n) for n in counts)
    return CappedCount(total) if any(isinstance(n, CappedCount) for n in counts) else total


def capped_count(stmt: Select, cap: int | None = None) -> int:
    """COUNT(*) of `stmt` (a SELECT of ids) that stops at cap+1 rows: an int, or
    CappedCount(cap) past it."""
    cap = COUNT_CAP if cap is None else cap
    from ..extensions import db

    n = db.session.scalar(select(func.count()).select_from(stmt.limit(cap + 1).subquery()))
    return capped(n, cap)


def capped_counts(
    statements: list[Select], cap: int | None = None, within: dict[int, int] | None = None
) -> list[int]:
    """Capped counts of several SELECTs of ids in one statement (a UNION ALL).

    Each part counts the first cap+1 rows its own plan finds, so the work is
    bounded by the cap whatever the table size. Returns ints, or CappedCount
    where a part reached the cap.

    `within` maps a part to one that holds all of its rows (a list's SLA breaches are
    rows of the list): the outer part is counted only when the inner one stays below
    the cap, and is otherwise known to be past it too: MariaDB evaluates only the CASE
    branch it takes, so at 1M tickets, where every open list has more than COUNT_CAP
    breaches, the lists' own 10,001 index entries each are not read.
    """
    cap = COUNT_CAP if cap is None else cap
    if not statements:
        return []
    from ..extensions import db

    within = within or {}
    outer_of = {outer: inner for inner, outer in within.items()}
    if len(outer_of) != len(within):
        raise ValueError("one inner part per outer part")

    def first_rows(i: int):
        return statements[i].limit(cap + 1).subquery()

    parts = []
    for i in range(len(statements)):
        if i in outer_of:
            continue  # counted in its inner part's row
        if i in within:
            outer_count = select(func.count()).select_from(first_rows(within[i]))
            outer = case((func.count() > cap, cap + 1), else_=outer_count.scalar_subquery())
            row = select(literal(i), func.count(), literal(within[i]), outer)
        else:
            row = select(literal(i), func.count(), null(), null())
        parts.append(row.select_from(first_rows(i)))
    found = {}
    for k, n, k2, n2 in db.session.execute(union_all(*parts) if len(parts) > 1 else parts[0]):
        found[k] = n
        if k2 is not None:
            found[k2] = n2
    return [capped(found.get(i, 0), cap) for i in range(len(statements))]

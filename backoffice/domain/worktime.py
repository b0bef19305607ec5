"""Working time: a department's business hours in its zone, minus Indonesian holidays.

A `Calendar` answers two questions, both on naive-UTC datetimes (how every timestamp
is stored): `add(start, seconds)` — when `seconds` of working time after `start` run
out — and `between(a, b)` — how much working time lies between two instants. SLA due
times (domain/sla.py) are nothing but these two.

What counts as working time:
- the department's hours per weekday, in its own zone (WIB, WITA, WIT; none of the
  three has had daylight saving since 1964, but the conversion goes through zoneinfo
  all the same); a weekday may have several shifts (08:00–12:00 and 13:00–20:00), a
  24/7 department has 00:00–24:00 every day; a shift never crosses midnight (split a
  night shift into 22:00–24:00 and 00:00–06:00 of the next weekday);
- minus Indonesia's public holidays *and* collective leave (cuti bersama): the
  `holidays` package's PUBLIC and GOVERNMENT categories, the latter being cuti bersama
  (2026's arrived in holidays 0.99, hence the pin);
- minus the company's own days off, plus the public holidays the company works
  (`CompanyDay` rows the master admin keeps in the back office).

Hand-written because no maintained library does working-time arithmetic with split
shifts in a zone (businesstimedelta and the like know one shift a day and no zones);
the holiday data, the hard part, is the `holidays` package's.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from holidays.constants import GOVERNMENT, PUBLIC

ZONES = ("Asia/Jakarta", "Asia/Makassar", "Asia/Jayapura")
ZONE_ABBR = {"Asia/Jakarta": "WIB", "Asia/Makassar": "WITA", "Asia/Jayapura": "WIT"}
DEFAULT_ZONE = "Asia/Jakarta"
DAY_MINUTES = 24 * 60
AROUND_THE_CLOCK = tuple(((0, DAY_MINUTES),) for _ in range(7))
# A calendar with any hours in its week finds them within days; past this many days of
# walking the hours must be empty (or every day closed), and the walk stops.
MAX_DAYS = 2 * 366

Shift = tuple[int, int]  # minutes after local midnight, start < end <= 1440


def _indonesia_class():
    """holidays' `Indonesia`, without the package's 250 other countries: the
    `holidays.countries` package imports every country module when it is imported (its
    lazy loader goes through it too), 8 MB in each gunicorn worker from the first ticket
    it filed (issue 16 item 9). So the package sits in sys.modules unexecuted only while
    this one module loads, and is taken out again: a later `import holidays.countries`
    anywhere runs it whole, as usual, and finds this module loaded."""
    package = "holidays.countries"
    if package in sys.modules:
        return sys.modules[package].Indonesia
    sys.modules[package] = importlib.util.module_from_spec(importlib.util.find_spec(package))
    try:
        return importlib.import_module(f"{package}.indonesia").Indonesia
    finally:
        del sys.modules[package]


Indonesia = _indonesia_class()  # at import: once, under the import lock


@lru_cache(maxsize=32)
def public_holidays(year: int, language: str = "id") -> dict[date, str]:
    """Indonesia's public holidays and cuti bersama of `year`, named in `language`."""
    data = Indonesia(years=year, categories=(PUBLIC, GOVERNMENT), language=language)
    return dict(data.items())


def parse_clock(text: str) -> int:
    """'08:30' → 510 minutes; '24:00' closes a day. ValueError on anything else."""
    hours, sep, minutes = (text or "").strip().partition(":")
    if not (sep and hours.isdigit() and minutes.isdigit() and len(minutes) == 2):
        raise ValueError(text)
    value = int(hours) * 60 + int(minutes)
    if int(minutes) > 59 or not 0 <= value <= DAY_MINUTES:
        raise ValueError(text)
    return value


def format_clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def week_from_rows(rows: Iterable[tuple[int, int, int]]) -> tuple[tuple[Shift, ...], ...]:
    """(weekday, start, end) rows (Monday = 0) → the week a Calendar takes."""
    days: list[list[Shift]] = [[] for _ in range(7)]
    for weekday, start, end in rows:
        days[weekday].append((start, end))
    return tuple(tuple(sorted(d)) for d in days)


@dataclass
class Calendar:
    """One department's working calendar. `closed` maps the company's extra days off
    to their names; `opened` holds the public holidays the company works anyway."""

    zone: str = DEFAULT_ZONE
    week: tuple[tuple[Shift, ...], ...] = AROUND_THE_CLOCK
    closed: dict[date, str] = field(default_factory=dict)
    opened: frozenset[date] = frozenset()
    name: str = ""
    # False for a desk that works through holidays (an on-call 24/7 team): no day is off.
    observes_holidays: bool = True
    _shifts: dict[date, list[tuple[datetime, datetime]]] = field(
        default_factory=dict, repr=False, compare=False
    )

    def __post_init__(self):
        self.tz = ZoneInfo(self.zone)
        if not any(self.week):
            # No hours at all (a department not set up yet): plain wall-clock time,
            # holidays included, as before working calendars existed.
            self.week = AROUND_THE_CLOCK
            self.observes_holidays = False

    @property
    def abbr(self) -> str:
        return ZONE_ABBR.get(self.zone, self.zone)

    def day_off(self, day: date) -> str | None:
        """Why `day` (a local date) has no working time despite its weekday's hours:
        the holiday's or company day's name; None on an ordinary day."""
        if not self.observes_holidays:
            return None
        if day in self.closed:
            return self.closed[day]
        if day in self.opened:
            return None
        return public_holidays(day.year).get(day)

    def local_date(self, instant: datetime) -> date:
        return self.to_local(instant).date()

    def to_local(self, instant: datetime) -> datetime:
        return instant.replace(tzinfo=UTC).astimezone(self.tz).replace(tzinfo=None)

    def to_utc(self, local: datetime) -> datetime:
        return local.replace(tzinfo=self.tz).astimezone(UTC).replace(tzinfo=None)

    def shifts(self, day: date) -> list[tuple[datetime, datetime]]:
        """The working intervals of local date `day`, as naive-UTC (start, end) pairs."""
        cached = self._shifts.get(day)
        if cached is None:
            cached = []
            if self.day_off(day) is None:
                midnight = datetime(day.year, day.month, day.day)
                for start, end in self.week[day.weekday()]:
                    cached.append(
                        (
                            self.to_utc(midnight + timedelta(minutes=start)),
                            self.to_utc(midnight + timedelta(minutes=end)),
                        )
                    )
            self._shifts[day] = cached
        return cached

    def _from(self, instant: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Working intervals from `instant` on, the first one clipped to start there."""
        day = self.local_date(instant)
        for _ in range(MAX_DAYS):
            for start, end in self.shifts(day):
                if end > instant:
                    yield max(start, instant), end
            day += timedelta(days=1)

    def add(self, start: datetime, seconds: float) -> datetime:
        """The instant when `seconds` of working time after `start` are used up: the
        end of a shift when they end with it (20:00, not the next morning). Zero or less
        gives `start` itself. A calendar without any working time within MAX_DAYS
        raises ValueError rather than loop."""
        left = timedelta(seconds=seconds)
        if left <= timedelta(0):
            return start
        for a, b in self._from(start):
            if left <= b - a:
                return a + left
            left -= b - a
        raise ValueError(f"no working time within {MAX_DAYS} days")

    def between(self, a: datetime, b: datetime) -> int:
        """Working seconds from `a` to `b` (negative when `b` comes first)."""
        if b < a:
            return -self.between(b, a)
        total = timedelta(0)
        for start, end in self._from(a):
            if start >= b:
                break
            total += min(end, b) - start
        return int(total.total_seconds())

    def days_off(self, a: datetime, b: datetime) -> list[tuple[date, str]]:
        """The holidays and company days off (local dates) from `a` to `b` that fall on
        a weekday with hours: the ones that moved a due time."""
        out = []
        day, last = self.local_date(a), self.local_date(b)
        while day <= last:
            reason = self.day_off(day)
            if reason and self.week[day.weekday()]:
                out.append((day, reason))
            day += timedelta(days=1)
        return out

    def describe(self) -> list[str]:
        """The week as text lines: 'Mon 08:00–12:00, 13:00–20:00'."""
        names = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
        lines = []
        for name, shifts in zip(names, self.week, strict=True):
            text = ", ".join(f"{format_clock(a)}–{format_clock(b)}" for a, b in shifts)
            lines.append(f"{name} {text or '—'}")
        return lines


WEEKDAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def rows_from_spec(spec) -> list[tuple[int, int, int]]:
    """The seed file's hours ({'mon-fri': ['08:00-12:00', '13:00-20:00'], 'sat': [...]}
    or '24/7') → (weekday, start, end) rows. ValueError on anything malformed."""
    if spec == "24/7":
        return [(d, 0, DAY_MINUTES) for d in range(7)]
    rows = []
    for days, shifts in dict(spec).items():
        first, _, last = days.partition("-")
        a = WEEKDAY_NAMES.index(first)
        b = WEEKDAY_NAMES.index(last or first)
        for shift in shifts:
            start, _, end = shift.partition("-")
            start, end = parse_clock(start), parse_clock(end)
            if start >= end:
                raise ValueError(shift)
            rows.extend((d, start, end) for d in range(a, b + 1))
    return rows


# --- loading calendars from the database -------------------------------------------


def load(department) -> Calendar:
    """The working calendar of `department` (a Department, or None for the default
    one: config CAREBOX_DEFAULT_CALENDAR, the Customer Service department's code)."""
    key = department.id if department else None
    return load_many([key])[key]


def load_many(department_ids) -> dict[int | None, Calendar]:
    """Calendars for several departments at once: {department id (None: the default):
    Calendar}; a department that does not exist gets the wall clock minus the days off.
    Every department's calendar comes from the process's copy while the setup is
    unchanged (domain/setup_cache.py; issue 16 item 3: every filing loads a calendar)."""
    from flask import current_app

    from . import setup_cache

    code = current_app.config.get("CAREBOX_DEFAULT_CALENDAR", "CS")
    calendars, default_id, fallback = setup_cache.cached(
        f"calendars:{code}", lambda: _load_all(code)
    )
    return {i: calendars.get(default_id if i is None else i, fallback) for i in department_ids}


def _load_all(default_code: str) -> tuple[dict[int, Calendar], int | None, Calendar]:
    """Every department's calendar by id, the default department's id, and the calendar
    of a department that does not exist. Two statements: the departments with their
    shifts in one outer join, and the company days (columns, not entities: no identity
    map rows, and the copies outlive the session)."""
    from sqlalchemy import select

    from ..extensions import db
    from ..models import BusinessHours, CompanyDay, Department

    shifts = select(
        Department.id,
        Department.code,
        Department.timezone,
        Department.observes_holidays,
        BusinessHours.weekday,
        BusinessHours.start_minute,
        BusinessHours.end_minute,
    ).outerjoin(BusinessHours, BusinessHours.department_id == Department.id)
    departments, rows = {}, {}
    for dep_id, code, zone, observes, weekday, start, end in db.session.execute(shifts):
        departments[dep_id] = (code, zone, observes)
        day_rows = rows.setdefault(dep_id, [])
        if weekday is not None:
            day_rows.append((weekday, start, end))
    closed, opened = {}, set()
    days = select(CompanyDay.day, CompanyDay.closed, CompanyDay.name)
    for day, is_closed, name in db.session.execute(days):
        if is_closed:
            closed[day] = name
        else:
            opened.add(day)
    calendars = {
        dep_id: Calendar(
            zone=zone or DEFAULT_ZONE,
            week=week_from_rows(rows[dep_id]),
            closed=closed,
            opened=frozenset(opened),
            name=code,
            observes_holidays=observes,
        )
        for dep_id, (code, zone, observes) in departments.items()
    }
    default_id = next((i for i, d in departments.items() if d[0] == default_code), None)
    return calendars, default_id, Calendar(closed=closed, opened=frozenset(opened))

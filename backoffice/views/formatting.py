"""How the back office shows times, durations and money (local time, the user's language)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from flask_babel import format_datetime, format_decimal, format_timedelta, get_timezone

from ..domain import event_notes
from ..i18n import current_timezone

SHORT_PATTERN = "yyyy-MM-dd HH:mm"


def _short(value: datetime, zone) -> str:
    # SHORT_PATTERN has digits and separators only, the same in every language, so the
    # digits placed by hand are exactly Babel's text (a test compares them) in a
    # fraction of its time: the lists show two per row, the desk one per message.
    local = (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(zone)
    return f"{local.year:04d}-{local.month:02d}-{local.day:02d} {local.hour:02d}:{local.minute:02d}"


def datetime_text(value: datetime | None) -> str:
    """A stored UTC time in the company's zone, sortable and short: 2026-03-01 14:05
    (Babel's `format_datetime` with SHORT_PATTERN)."""
    if value is None:
        return "—"
    return _short(value, current_timezone())


@functools.cache
def _zoneinfo(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def short_datetimes() -> Callable[[datetime | None], str]:
    """`datetime_text` for a page of values, the zone read once, as the standard
    library's ZoneInfo: Flask-Babel's is pytz's, whose conversion runs in Python (some
    ten calls a time; the lists show two times a row)."""
    zone = get_timezone()
    name = getattr(zone, "zone", None)  # a pytz zone's name
    if name:
        zone = _zoneinfo(name)

    def text(value: datetime | None) -> str:
        return "—" if value is None else _short(value, zone)

    return text


# babel.dates.TIMEDELTA_UNITS down to a minute, the lists' granularity.
AGE_UNITS = (
    ("year", 3600 * 24 * 365),
    ("month", 3600 * 24 * 30),
    ("week", 3600 * 24 * 7),
    ("day", 3600 * 24),
    ("hour", 3600),
    ("minute", 60),
)
AGE_THRESHOLD = 0.85  # Babel's default


def age_texts(now: datetime) -> Callable[[datetime], str]:
    """Flask-Babel's `format_timedelta(now - created, granularity="minute")` for a page
    of rows. Its text depends only on the unit it picks and the rounded count (Babel's
    rule, repeated here: the largest unit reaching AGE_THRESHOLD), so each (unit, count)
    asks Babel once a page; a list page has 25-100 ages and few distinct texts (a test
    compares them with Babel's)."""
    made: dict = {}

    def text(created: datetime) -> str:
        delta = now - created
        seconds = abs(delta.total_seconds())
        for unit, per_unit in AGE_UNITS:
            value = seconds / per_unit
            if value >= AGE_THRESHOLD or unit == "minute":
                if unit == "minute" and value > 0:
                    value = max(1, value)
                key = (unit, round(value))
                break
        found = made.get(key)
        if found is None:
            found = made[key] = format_timedelta(delta, granularity="minute")
        return found

    return text


def when_text(value: datetime | None) -> str:
    """A time as people read it, in the user's language and the company's zone: the
    month by name and a four-digit year, so no one wonders which is the day
    ("1 Des 2026, 14.23" in Indonesian, "1 Dec 2026, 14:23" in English)."""
    if value is None:
        return "—"
    return format_datetime(value, "d MMM y, HH:mm")


def iso_datetime(value: datetime) -> str:
    """A stored time for machines (`<time datetime>`, JSON): UTC to the second,
    2026-12-01T14:23:05Z (HTML allows at most three digits of a second's fraction)."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.replace(microsecond=0).isoformat() + "Z"


def duration_text(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    return format_timedelta(timedelta(seconds=seconds), granularity="minute", threshold=1.1)


def hours_text(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    return format_decimal(round(seconds / 3600, 1), format="#,##0.0")


def rating_text(value: float | None) -> str:
    """An average rating, two places, the locale's decimal mark: 4,50 (id), 4.50 (en)."""
    if value is None:
        return "—"
    return format_decimal(value, format="0.00")


def percent_text(value: float | None) -> str:
    """A percentage, one place, the locale's decimal mark: 66,7 % (id), 66.7 % (en)."""
    if value is None:
        return "—"
    return format_decimal(value, format="0.0") + " %"


def weight_text(value: Decimal | None) -> str:
    """A weight in kilograms as the portal shows it: 2,5 (id), 2.5 (en)."""
    if value is None:
        return "—"
    return format_decimal(value, format="#,##0.##")


def money_text(value: Decimal | None) -> str:
    if value is None:
        return "—"
    return format_decimal(value, format="#,##0.00")


def count_text(value: int | None) -> str:
    """A count with the locale's grouping: 1.003.020 in Indonesian, 1,003,020 in English."""
    if value is None:
        return "—"
    return format_decimal(value, format="#,##0")


def size_text(size: int | None) -> str:
    """A file size in the locale's decimal mark: 12,5 MB."""
    if size is None:
        return "—"
    if size < 1_000_000:
        return format_decimal(max(size / 1000, 0.1), format="#,##0.0") + " kB"
    return format_decimal(size / 1_000_000, format="#,##0.0") + " MB"


def register(app) -> None:
    """Jinja filters for the admin and portal templates."""
    app.add_template_filter(datetime_text, "admin_dt")
    app.add_template_filter(when_text, "when")
    app.add_template_filter(iso_datetime, "iso_datetime")
    app.add_template_filter(duration_text, "admin_duration")
    app.add_template_filter(hours_text, "admin_hours")
    app.add_template_filter(money_text, "admin_money")
    app.add_template_filter(rating_text, "admin_rating")
    app.add_template_filter(percent_text, "admin_percent")
    app.add_template_filter(count_text, "admin_count")
    app.add_template_filter(size_text, "admin_size")
    app.add_template_filter(event_notes.text, "event_note")

"""Tracking events as they come in (`EventIn`), what becomes of each (`EventResult`),
the event vocabulary (`EVENT_STATUS`, `RANK`, `STATUS_EVENT`) and the checks of
`record_events` that need no database (`check_events`)."""

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from functools import lru_cache

from flask_babel import gettext as _

from ...models import OrderStatus, TrackingEventKind
from ...models.base import utcnow
from .resi import ResiCheck, check_resi, normalise_resi, resi_message

K = TrackingEventKind
# The order's status follows its latest event through this table (the order keeps the
# event itself too, in `last_event`, for the finer picture: out for delivery, failed...).
EVENT_STATUS: dict[TrackingEventKind, OrderStatus] = {
    K.PICKED_UP: OrderStatus.PICKED_UP,
    K.AT_HUB: OrderStatus.IN_TRANSIT,
    K.DEPARTED_HUB: OrderStatus.IN_TRANSIT,
    K.OUT_FOR_DELIVERY: OrderStatus.IN_TRANSIT,
    K.DELIVERY_FAILED: OrderStatus.IN_TRANSIT,
    K.ON_HOLD: OrderStatus.IN_TRANSIT,
    K.RETURNED: OrderStatus.IN_TRANSIT,
    K.DELIVERED: OrderStatus.DELIVERED,
    K.CANCELLED: OrderStatus.CANCELLED,
}
# What the operations system may report (the import, the API, the staff's event form).
# A cancellation is not a scan: it ends the order for good (every later event is refused),
# takes it out of the customer's loyalty and is the customer's or customer service's
# decision, made in carebox by `orders.cancel` (a parcel sent back after pickup is
# `returned`). So `cancelled` is refused here with that reason.
FEED_KINDS = tuple(kind for kind in TrackingEventKind if kind is not K.CANCELLED)
# Two events at the same moment: the one later in a parcel's life counts as the latest.
RANK: dict[TrackingEventKind, int] = {kind: i for i, kind in enumerate(TrackingEventKind)}
# Staff's order status changes are tracking events too.
STATUS_EVENT: dict[OrderStatus, TrackingEventKind] = {
    OrderStatus.PICKED_UP: K.PICKED_UP,
    OrderStatus.IN_TRANSIT: K.DEPARTED_HUB,
    OrderStatus.DELIVERED: K.DELIVERED,
    OrderStatus.CANCELLED: K.CANCELLED,
}
MAX_LOCATION = 120
MAX_NOTE = 500
DEFAULT_OFFSET = 7 * 60  # a time without an offset is Western Indonesian Time (WIB, UTC+7)
FUTURE_SLACK = timedelta(hours=1)  # scanners' clocks drift; further ahead is a typo
EARLIEST = datetime(2000, 1, 1)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")

INSERTED, UNCHANGED, REFUSED = "inserted", "unchanged", "refused"


@dataclass(slots=True)
class EventIn:
    """One event as it came in (text from a file or JSON), before any check."""

    resi: str
    event: str
    occurred_at: str | datetime
    location: str = ""
    note: str = ""


@dataclass(slots=True)
class EventResult:
    """What became of one EventIn: inserted, unchanged (already recorded) or refused."""

    outcome: str
    resi: str = ""
    reason: str = ""


@dataclass(slots=True)
class _Clean:
    index: int
    resi: str
    event: str  # a TrackingEventKind's value
    at: datetime
    offset: int
    location: str
    note: str


def parse_occurred_at(value: str | datetime) -> tuple[datetime, int]:
    """An ISO 8601 time (`2026-12-01T14:05:00+07:00`, `...Z`, or without an offset,
    taken as WIB) as naive UTC and its offset in minutes. A naive `datetime` is UTC, as
    everywhere in the code. Raises ValueError."""
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
    else:
        text = str(value or "").strip()
        if not text or len(text) > 40:
            raise ValueError("empty or too long")
        moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone(timedelta(minutes=DEFAULT_OFFSET)))
    offset = moment.utcoffset()
    minutes = int(offset.total_seconds() // 60)
    if abs(minutes) > 14 * 60:
        raise ValueError("offset out of range")
    return moment.astimezone(UTC).replace(tzinfo=None, microsecond=0), minutes


def _clean_text(text, limit: int) -> str | None:
    text = str(text or "")
    if not text.isprintable():  # (printable text has no control characters: skip the regex)
        text = _CONTROL.sub(" ", text)
    text = text.strip()
    return text if len(text) <= limit else None


@lru_cache(maxsize=4096)
def _resi_verdict(text: str) -> tuple[str, ResiCheck]:
    """normalise_resi and check_resi of what came in, remembered: a file or batch names
    each parcel several times in a row (its events), and the check digit is per resi."""
    resi = normalise_resi(text)
    return resi, check_resi(resi)


_KINDS = {kind.value: kind for kind in FEED_KINDS}


def _check(index: int, item: EventIn, now: datetime) -> _Clean | EventResult:
    text = str(item.resi or "")
    if len(text) <= 40:  # what a resi typed with separators can be; longer is not cached
        resi, verdict = _resi_verdict(text)
    else:
        resi = normalise_resi(text)
        verdict = check_resi(resi)
    if verdict is not ResiCheck.VALID:
        return EventResult(REFUSED, resi[:20], resi_message(verdict))
    kind = _KINDS.get(str(item.event or "").strip().lower())
    if kind is None and str(item.event or "").strip().lower() == K.CANCELLED.value:
        return EventResult(
            REFUSED,
            resi,
            _(
                "An order is cancelled in carebox (by its customer before pickup, or by "
                "customer service on the order page), not by a tracking event; a parcel "
                "sent back is returned."
            ),
        )
    if kind is None:
        return EventResult(
            REFUSED,
            resi,
            _(
                "Unknown event %(event)s (one of: %(kinds)s).",
                event=repr(str(item.event or "")[:40]),
                kinds=", ".join(k.value for k in FEED_KINDS),
            ),
        )
    try:
        at, offset = parse_occurred_at(item.occurred_at)
    except (ValueError, TypeError, OverflowError):
        return EventResult(
            REFUSED,
            resi,
            _("The time is not an ISO 8601 time such as 2026-12-01T14:05:00+07:00."),
        )
    if at > now + FUTURE_SLACK or at < EARLIEST:
        return EventResult(REFUSED, resi, _("The time lies in the future or before 2000."))
    location = _clean_text(item.location, MAX_LOCATION)
    note = _clean_text(item.note, MAX_NOTE)
    if location is None or note is None:
        return EventResult(
            REFUSED,
            resi,
            _(
                "Location (at most %(a)d characters) or note (at most %(b)d) is too long.",
                a=MAX_LOCATION,
                b=MAX_NOTE,
            ),
        )
    return _Clean(index, resi, kind.value, at, offset, location, note)


@dataclass(slots=True)
class Checked:
    """A batch after `check_events`: the refusals so far, by index, and the clean rest."""

    results: list[EventResult | None]
    clean: list[_Clean]
    now: datetime


def check_events(items: Sequence[EventIn], *, now: datetime | None = None) -> Checked:
    """The checks of `record_events` that need no database (all but the resi's order).
    Reads nothing and writes nothing, so it may run in another thread than the writes."""
    now = now or utcnow()
    results: list[EventResult | None] = [None] * len(items)
    clean: list[_Clean] = []
    for index, item in enumerate(items):
        verdict = _check(index, item, now)
        if verdict.__class__ is EventResult:
            results[index] = verdict
        else:
            clean.append(verdict)
    return Checked(results, clean, now)

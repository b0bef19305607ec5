"""Shipments: the resi (air waybill number) every order carries, and what it says.

A resi has the UPU S10 shape (docs/architecture.md §7): two letters, an eight-digit serial,
a mod-11 check digit and the country, e.g. `CB123456785ID`. The check digit
catches a mistyped digit before any lookup, so a typo is answered "mistyped",
never "unknown". Serials are random, not a counter: with public tracking, a
sequence would let anyone walk through every other parcel's movements.

Tracking events (what happened to a parcel, when and where) are appended and
never edited. Every way in — the CSV import, the API, a staff member on the order
page, the seed — goes through `record_events`, which checks each event on its own
(a bad one is refused with its reason, the others land), skips an event already
recorded (the same resi, event and moment: imports and the API are idempotent)
and moves the order's status to follow its latest event. An event that became its
parcel's latest and `warrants_customer_notification` is handed to the customer's
channels in the same transaction (`_tell_customers`: the shipment email of
domain/shipment_notices.py, which asks the customer's consent).

Nothing here reads the request or commits; the caller owns the transaction.
"""

from __future__ import annotations

import enum
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from functools import lru_cache

from flask import current_app
from flask_babel import format_datetime
from flask_babel import gettext as _
from sqlalchemy import and_, case, func, literal, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload

from ..extensions import db
from ..models import Order, OrderStatus, TrackingEvent, TrackingEventKind, TrackingSource, User
from ..models.base import utcnow
from . import DomainError, PermissionDenied
from . import permissions as perm

# UPU S10 check digit: weights of the eight serial digits.
WEIGHTS = (8, 6, 4, 2, 3, 5, 9, 7)
RESI_LENGTH = 13
DEFAULT_PREFIX = "CB"  # the service indicator letters of carebox parcels (CAREBOX_RESI_PREFIX)
COUNTRY = "ID"
RESI_ATTEMPTS = 8  # one collision in 10^8 serials per order is rare; eight in a row never

RESI_RE = re.compile(r"^[A-Z]{2}\d{9}[A-Z]{2}$")
# What people type around the characters of a resi: spaces (also no-break and thin
# ones), hyphens and dashes, dots. Dropped by normalise_resi.
_SEPARATORS = re.compile(r"[\s\u00a0\u2009\u202f.\-\u2010-\u2015\u2212]+")
# A resi inside free text, possibly typed with separators between its characters.
_SEP = r"[\s\u00a0\u2009\u202f.\-\u2010-\u2015\u2212]?"
_IN_TEXT = re.compile(
    r"(?<![A-Za-z0-9])[A-Za-z]"
    + _SEP
    + r"[A-Za-z]"
    + (_SEP + r"\d") * 9
    + _SEP
    + r"[A-Za-z]"
    + _SEP
    + r"[A-Za-z](?![A-Za-z0-9])"
)


class ResiCheck(enum.StrEnum):
    """What a typed resi is, before anything is looked up."""

    VALID = "valid"
    MISTYPED = "mistyped"  # the S10 shape, but the check digit does not match
    MALFORMED = "malformed"  # not the S10 shape at all (or empty)


def check_digit(serial: str) -> int:
    """The S10 check digit of an eight-digit serial: 11 - (weighted sum mod 11),
    where 10 becomes 0 and 11 becomes 5."""
    if len(serial) != 8 or not serial.isdigit():
        raise ValueError(f"an S10 serial is eight digits, not {serial!r}")
    check = 11 - sum(int(d) * w for d, w in zip(serial, WEIGHTS, strict=True)) % 11
    return {10: 0, 11: 5}.get(check, check)


def normalise_resi(text: str | None) -> str:
    """A resi as stored: upper case, without the spaces, dashes and dots people type
    between its characters (`cb 1234-5678 5 id` -> `CB123456785ID`). Not validated."""
    return _SEPARATORS.sub("", str(text or "")).upper()


def check_resi(text: str | None) -> ResiCheck:
    """Whether `text` (normalised first) is a valid resi, a mistyped one, or no resi."""
    resi = normalise_resi(text)
    if not RESI_RE.match(resi) or not resi.isascii():
        return ResiCheck.MALFORMED
    if int(resi[10]) != check_digit(resi[2:10]):
        return ResiCheck.MISTYPED
    return ResiCheck.VALID


def is_valid_resi(text: str | None) -> bool:
    """True when `text`, normalised, is an S10 number whose check digit matches."""
    return check_resi(text) is ResiCheck.VALID


def find_resis(text: str | None) -> list[str]:
    """Every check-digit-valid resi in free text, normalised, in order, without repeats.

    Customers write them inside sentences, in lower case and with spaces or
    dashes ("resi saya cb-1234 5678 5id"); numbers whose check digit fails are
    left out, so an order number or a phone number is never taken for a resi.
    """
    found: list[str] = []
    for match in _IN_TEXT.finditer(str(text or "")[:20_000]):
        resi = normalise_resi(match.group(0))
        if is_valid_resi(resi) and resi not in found:
            found.append(resi)
    return found


def resi_message(check: ResiCheck) -> str:
    """What to tell someone who typed a resi that is not VALID."""
    if check is ResiCheck.MISTYPED:
        return _(
            "This resi has a typing mistake: its check digit (the last digit) does not "
            "match. Compare it with your receipt."
        )
    return _(
        "That is not a resi. A resi has two letters, nine digits and two letters, "
        "e.g. CB123456785ID."
    )


def make_resi(serial: int, prefix: str = DEFAULT_PREFIX) -> str:
    """The resi of `serial` (0 to 99,999,999) with its check digit."""
    digits = f"{serial:08d}"
    return f"{prefix}{digits}{check_digit(digits)}{COUNTRY}"


def _prefix() -> str:
    prefix = str(current_app.config.get("CAREBOX_RESI_PREFIX") or DEFAULT_PREFIX).upper()
    if not re.fullmatch(r"[A-Z]{2}", prefix):
        raise ValueError(f"CAREBOX_RESI_PREFIX must be two letters, not {prefix!r}")
    return prefix


def random_resi() -> str:
    """A new resi with a random serial (from the OS's cryptographic source)."""
    return make_resi(secrets.randbelow(10**8), _prefix())


def assign_resi(order: Order) -> None:
    """Give a new `order` a unique random resi and flush it (the insert happens here).

    A serial already taken is skipped by a lookup first; two transactions that
    drew the same serial at once meet the unique key, and the loser draws again
    inside a savepoint, so the rest of the caller's transaction is kept.
    """
    session = db.session
    _begin_sqlite_transaction()
    for _attempt in range(RESI_ATTEMPTS):
        resi = random_resi()
        if session.scalar(select(Order.id).where(Order.resi == resi)) is not None:
            continue
        order.resi = resi
        savepoint = session.begin_nested()
        try:
            session.add(order)
            session.flush()
        except IntegrityError as exc:
            savepoint.rollback()  # the order is back to pending
            if not _is_resi_collision(exc):
                raise  # another key or constraint: not ours to retry
            continue
        savepoint.commit()
        return
    raise RuntimeError(f"no free resi after {RESI_ATTEMPTS} random draws")


def _is_resi_collision(exc: IntegrityError) -> bool:
    """Whether the unique key on the resi refused the insert. Asked of the error, not the
    table: under REPEATABLE READ the winner's row stays invisible to the loser."""
    text = str(exc.orig)
    return "uq_customer_order_resi" in text or "customer_order.resi" in text


def _begin_sqlite_transaction() -> None:
    """SQLite's Python driver starts a transaction only before a write, so a SAVEPOINT
    as the first statement would be the transaction, and releasing it would commit.
    Begin the transaction first, as the driver itself would have done."""
    conn = db.session.connection()
    if conn.dialect.name != "sqlite":
        return
    dbapi = conn.connection.dbapi_connection
    if not dbapi.in_transaction:
        conn.exec_driver_sql("BEGIN")


def find_order(resi: str) -> Order | None:
    """The order of a (normalised, valid) resi, or None."""
    return db.session.scalar(select(Order).where(Order.resi == resi))


def customer_parcel(
    text: str | None, customer: User, *, staff: bool = False
) -> tuple[Order | None, str]:
    """The one rule for linking a ticket to a parcel by its resi (the portal's ticket
    form, email and WhatsApp alike): `(order, "")` when `text` is a valid resi of one of
    `customer`'s own orders, else `(None, why)` — mistyped (check digit), not a resi,
    no such parcel, or someone else's parcel (a ticket must never show a stranger's
    shipment; `staff` words that for the desk). The check digit is checked before any
    lookup."""
    resi = normalise_resi(text)
    verdict = check_resi(resi)
    if verdict is not ResiCheck.VALID:
        return None, resi_message(verdict)
    order = find_order(resi)
    if order is None:
        return None, _(
            "No parcel has the resi %(resi)s. It is written correctly: check it against "
            "your receipt.",
            resi=resi,
        )
    if order.customer_id != customer.id and staff:
        return None, _(
            "The parcel %(resi)s belongs to another customer: a ticket can only be about "
            "its own customer's parcels.",
            resi=resi,
        )
    if order.customer_id != customer.id:
        return None, _(
            "The parcel %(resi)s is not one of your orders, so a ticket cannot be about "
            "it. Ask its sender to contact us.",
            resi=resi,
        )
    return order, ""


# ---------------------------------------------------------------------------
# Tracking events

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
}
# Two events at the same moment: the one later in a parcel's life counts as the latest.
RANK: dict[TrackingEventKind, int] = {kind: i for i, kind in enumerate(TrackingEventKind)}
# Staff's order status changes are tracking events too.
STATUS_EVENT: dict[OrderStatus, TrackingEventKind] = {
    OrderStatus.PICKED_UP: K.PICKED_UP,
    OrderStatus.IN_TRANSIT: K.DEPARTED_HUB,
    OrderStatus.DELIVERED: K.DELIVERED,
}
# Parcels that are moving: the ones that can be stuck (no event for N days).
MOVING = (OrderStatus.PICKED_UP, OrderStatus.IN_TRANSIT)
MAX_LOCATION = 120
MAX_NOTE = 500
DEFAULT_OFFSET = 7 * 60  # a time without an offset is Western Indonesian Time (WIB, UTC+7)
FUTURE_SLACK = timedelta(hours=1)  # scanners' clocks drift; further ahead is a typo
EARLIEST = datetime(2000, 1, 1)
LOOKUP_CHUNK = 5000  # resis per lookup: one query for a whole import batch
UPDATE_CHUNK = 200
ZONES = {420: "WIB", 480: "WITA", 540: "WIT"}
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")

INSERTED, UNCHANGED, REFUSED = "inserted", "unchanged", "refused"
# What the parcel's customer is told about, by email and on WhatsApp (each channel asks
# the customer's own consent): the last leg, when someone has to be at home.
CUSTOMER_NOTICE_KINDS = frozenset({K.OUT_FOR_DELIVERY, K.DELIVERED, K.DELIVERY_FAILED})
# An event reported later than this (a backfill, an old file imported again) is history,
# not news: nobody is emailed that their parcel was out for delivery last week.
NOTICE_MAX_AGE = timedelta(days=2)


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


_KINDS = {kind.value: kind for kind in TrackingEventKind}


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
    if kind is None:
        return EventResult(
            REFUSED,
            resi,
            _(
                "Unknown event %(event)s (one of: %(kinds)s).",
                event=repr(str(item.event or "")[:40]),
                kinds=", ".join(k.value for k in TrackingEventKind),
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


def warrants_customer_notification(
    kind: TrackingEventKind | str,
    occurred_at: datetime | None = None,
    *,
    now: datetime | None = None,
) -> bool:
    """Whether a newly recorded event is one to tell the parcel's customer about: out for
    delivery, delivered or a failed delivery, and (given its UTC `occurred_at`) no older
    than NOTICE_MAX_AGE. The one rule for every channel: the shipment email and the
    WhatsApp template notification both ask it; consent is then each channel's own.
    An unknown kind warrants nothing."""
    try:
        kind = TrackingEventKind(kind)
    except ValueError:
        return False
    if kind not in CUSTOMER_NOTICE_KINDS:
        return False
    return occurred_at is None or occurred_at >= (now or utcnow()) - NOTICE_MAX_AGE


def _newer(at: datetime, kind: TrackingEventKind, than_at, than_kind) -> bool:
    if than_at is None:
        return True
    if at != than_at:
        return at > than_at
    return than_kind is None or RANK[kind] >= RANK[TrackingEventKind(than_kind)]


def _rank_sql():
    return case(
        {kind.value: rank for kind, rank in RANK.items()}, value=Order.__table__.c.last_event
    )


def record_events(
    items: Sequence[EventIn],
    *,
    source: TrackingSource,
    actor: User | None = None,
    now: datetime | None = None,
) -> list[EventResult]:
    """Append the events of `items` (one batch; the caller commits) and return one result
    per item, in order. Guarantees:

    - each item is checked on its own (resi check digit, a known resi whose order is not
      cancelled, a known event, an ISO 8601 time not in the future, lengths); a refused
      item carries its reason and never stops the others;
    - an event already recorded (same resi, event and occurred_at — also twice in one
      batch, or inserted by a concurrent import) is `unchanged`, never a second row;
    - the order's status, `last_event` and `last_event_at` follow its latest event by
      occurred_at, even when events arrive out of order or two writers race (the
      update only moves forward).

    It is `check_events` (no database) then `write_events`; the CSV import runs the two
    in different threads, so a file's next batch is checked while this one is written.
    """
    return write_events(check_events(items, now=now), source=source, actor=actor)


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


def write_events(
    checked: Checked, *, source: TrackingSource, actor: User | None = None
) -> list[EventResult]:
    """The rest of `record_events` for a batch `check_events` passed: the lookups, the
    insert, the orders' latest event, the tickets' situations and the notices."""
    now = checked.now
    session = db.session
    results = list(checked.results)  # a retried batch starts again from the checks
    clean = checked.clean

    orders = {}
    wanted = sorted({c.resi for c in clean})
    cols = Order.__table__.c
    for start in range(0, len(wanted), LOOKUP_CHUNK):
        chunk = wanted[start : start + LOOKUP_CHUNK]
        for row in session.execute(
            select(cols.id, cols.resi, cols.status, cols.last_event, cols.last_event_at).where(
                cols.resi.in_(chunk)
            )
        ):
            orders[row.resi] = row

    keys: dict[tuple[int, datetime, str], _Clean] = {}
    for c in clean:
        order = orders.get(c.resi)
        if order is None:
            results[c.index] = EventResult(REFUSED, c.resi, _("No parcel has this resi."))
            continue
        if order.status == OrderStatus.CANCELLED.value:
            results[c.index] = EventResult(REFUSED, c.resi, _("This order was cancelled."))
            continue
        key = (order.id, c.at, c.event)
        if key in keys:
            results[c.index] = EventResult(UNCHANGED, c.resi)
            continue
        keys[key] = c
    for key in _known(keys):
        c = keys.pop(key)
        results[c.index] = EventResult(UNCHANGED, c.resi)
    if not keys:
        return results  # type: ignore[return-value]
    # One order of keys for every writer, so two concurrent imports cannot deadlock.
    rows = [
        (key[0], key[2], key[1], c.offset, c.location, c.note)  # as _ROW
        for key, c in sorted(keys.items(), key=_first)
    ]
    rows = _insert_new(rows, keys, results, source, actor, now)
    if rows:
        moved = _follow_latest(rows, orders, now)
        from . import situations  # it builds on this module

        situations.parcels_changed({r[0] for r in rows}, now)
        _tell_customers(moved, now)
    return results  # type: ignore[return-value]


def _first(pair):
    return pair[0]


# The columns of an inserted row, in this order; the other three are the batch's own.
_ROW = ("order_id", "event", "occurred_at", "utc_offset", "location", "note")
INSERT_CHUNK = 5000  # rows per INSERT (x 6 parameters: under SQLite's 32,766)


def _tell_customers(moved: list[dict], now: datetime) -> None:
    """The events that became their parcel's latest and warrant a notification go to the
    customer's channels (each asks the customer's consent itself), in this transaction."""
    from .shipment_notices import Notice, email

    notices = [
        Notice(u["oid"], TrackingEventKind(u["kind"]), u["at"], u["offset"], u["location"])
        for u in moved
        if warrants_customer_notification(u["kind"], u["at"], now=now)
    ]
    if notices:
        email(notices, now=now)
        from . import notifications  # it reads this module

        notifications.parcel_events(notices, now)


def _known(keys) -> set[tuple[int, datetime, str]]:
    """Which of these (order id, occurred_at, event) keys are recorded already: each
    order's events between its first and last moment in the batch (a range of the
    unique key), one query per LOOKUP_CHUNK orders. Only a shortcut — a file imported
    again costs a read instead of thousands of refused inserts (InnoDB writes, then
    undoes, a row whose unique key is taken); the insert's RETURNING stays the truth."""
    span: dict[int, tuple[datetime, datetime]] = {}
    for oid, at, _event in keys:
        lo, hi = span.get(oid, (at, at))
        span[oid] = (min(lo, at), max(hi, at))
    conn = db.session.connection()
    dialect = conn.dialect
    ev = TrackingEvent.__table__.c
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    to_db = ev.occurred_at.type.dialect_impl(dialect).bind_processor(dialect) or _same
    from_db = ev.occurred_at.type.dialect_impl(dialect).result_processor(dialect, None) or _same
    term = f"(order_id = {mark} AND occurred_at BETWEEN {mark} AND {mark})"
    spans = sorted(span.items())
    found = set()
    for first in range(0, len(spans), LOOKUP_CHUNK):
        chunk = spans[first : first + LOOKUP_CHUNK]
        params = tuple(v for oid, (lo, hi) in chunk for v in (oid, to_db(lo), to_db(hi)))
        sql = "SELECT order_id, occurred_at, event FROM tracking_event WHERE " + " OR ".join(
            [term] * len(chunk)
        )
        for oid, at, event in conn.exec_driver_sql(sql, params):
            key = (oid, from_db(at), str(event))
            if key in keys:
                found.add(key)
    return found


def _same(value):
    return value


def _insert_new(rows, keys, results, source, actor, now) -> list[tuple]:
    """Multi-row INSERT that skips rows already recorded (by an earlier batch or file, or
    a concurrent writer meanwhile); marks each event inserted or unchanged and returns
    the rows this call inserted.

    The database says which rows it inserted: INSERT IGNORE … RETURNING id (MariaDB
    10.5+, SQLite 3.35+) returns the ids of the rows this statement wrote and of no
    other. All of them or none: that is the answer. Some: those rows are read back by
    primary key. (`_known` before it cannot see what a concurrent batch commits in
    between; a re-read by recorded_at cannot tell two batches of the same second apart.)

    The statement is the driver's own SQL (exec_driver_sql: the DBAPI's placeholders,
    the columns' bind processors, what every row shares written once as literals):
    compiling 30,000 named parameters through SQLAlchemy for each batch cost more than
    the database's work. A rowcount with a savepoint to redo only a partial overlap was
    tried: a deadlock inside the savepoint then surfaced as "SAVEPOINT does not exist",
    which the import's retry does not recognise."""
    conn = db.session.connection()
    dialect = conn.dialect
    table = TrackingEvent.__table__
    ev = table.c
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    shared = [
        _literal_sql(dialect, TrackingSource(source).value, ev.source.type),
        _literal_sql(dialect, actor.id if actor is not None else None, ev.actor_id.type),
        _literal_sql(dialect, now, ev.recorded_at.type),
    ]
    if mark == "%s":
        shared = [text.replace("%", "%%") for text in shared]
    values = "(" + ", ".join([mark] * len(_ROW) + shared) + ")"
    ignore = "OR IGNORE" if dialect.name == "sqlite" else "IGNORE"
    # (Both databases the project runs on have it; another would fail loudly here.)
    head = (
        f"INSERT {ignore} INTO {table.name} ({', '.join(_ROW)}, source, actor_id, "
        "recorded_at) VALUES "
    )
    process = [
        (i, processor)
        for i, name in enumerate(_ROW)
        if (processor := ev[name].type.dialect_impl(dialect).bind_processor(dialect))
    ]
    ids: list[int] = []
    for first in range(0, len(rows), INSERT_CHUNK):
        chunk = rows[first : first + INSERT_CHUNK]
        params = [value for row in chunk for value in row]
        for i, processor in process:
            params[i :: len(_ROW)] = [processor(v) for v in params[i :: len(_ROW)]]
        sql = head + ", ".join([values] * len(chunk)) + " RETURNING id"
        ids += [r[0] for r in conn.exec_driver_sql(sql, tuple(params))]
    if len(ids) == len(rows):
        ours = None  # all of them
    elif not ids:
        ours = set()
    else:
        ours = set()
        for first in range(0, len(ids), LOOKUP_CHUNK):
            ours.update(
                (r[0], r[1], str(r[2]))
                for r in conn.execute(
                    select(ev.order_id, ev.occurred_at, ev.event).where(
                        ev.id.in_(ids[first : first + LOOKUP_CHUNK])
                    )
                )
            )
    for key, c in keys.items():
        inserted = ours is None or key in ours
        results[c.index] = EventResult(INSERTED if inserted else UNCHANGED, c.resi)
    if ours is None:
        return rows
    return [r for r in rows if (r[0], r[2], r[1]) in ours]


def _literal_sql(dialect, value, type_) -> str:
    """`value` as a SQL literal of `type_`, rendered by SQLAlchemy for `dialect`."""
    if value is None:
        return "NULL"
    return str(
        literal(value, type_).compile(dialect=dialect, compile_kwargs={"literal_binds": True})
    )


_RANK_OF = {kind.value: rank for kind, rank in RANK.items()}


def _follow_latest(rows: list[tuple], orders, now) -> list[dict]:
    """Move each touched order to its newest event, only ever forward; returns the moves
    (order id, event, time, offset, location of the event that became the latest)."""
    # The newest event of each order in the batch (of one moment, the later in life).
    best: dict[int, tuple] = {}
    for r in rows:  # (order_id, event, occurred_at, utc_offset, location, note): _ROW
        old = best.get(r[0])
        if old is None or r[2] > old[2] or (r[2] == old[2] and _RANK_OF[r[1]] >= _RANK_OF[old[1]]):
            best[r[0]] = r
    by_id = {o.id: o for o in orders.values()}
    updates = []
    for order_id, r in best.items():
        order = by_id[order_id]
        kind = TrackingEventKind(r[1])
        if _newer(r[2], kind, order.last_event_at, order.last_event):
            updates.append(
                {
                    "oid": order_id,
                    "at": r[2],
                    "kind": kind.value,
                    "rank": RANK[kind],
                    "status": EVENT_STATUS[kind].value,
                    "now": now,
                    "offset": r[3],
                    "location": r[4],
                }
            )
    if not updates:
        return updates
    updates.sort(key=lambda u: u["oid"])
    # One UPDATE per chunk of orders (CASE on the id), not one per order: the import's
    # round trips are what cost (docs/architecture.md §7).
    c = Order.__table__.c
    for first in range(0, len(updates), UPDATE_CHUNK):
        chunk = updates[first : first + UPDATE_CHUNK]

        def by_id(name, chunk=chunk):
            return case({u["oid"]: u[name] for u in chunk}, value=c.id)

        at = by_id("at")
        stmt = (
            update(Order.__table__)
            .where(
                c.id.in_([u["oid"] for u in chunk]),
                c.status != OrderStatus.CANCELLED.value,
                or_(
                    c.last_event_at.is_(None),
                    c.last_event_at < at,
                    and_(c.last_event_at == at, _rank_sql() <= by_id("rank")),
                ),
            )
            .values(
                status=by_id("status"),
                last_event=by_id("kind"),
                last_event_at=at,
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        db.session.execute(stmt)
    session = db.session
    for u in updates:  # ORM objects of these orders must not keep the old status
        obj = session.identity_map.get(session.identity_key(Order, u["oid"]))
        if obj is not None:
            session.expire(obj, ["status", "last_event", "last_event_at", "updated_at"])
    return updates


def add_event(
    order: Order,
    kind: TrackingEventKind | str,
    actor: User,
    *,
    occurred_at: datetime | str | None = None,
    location: str = "",
    note: str = "",
    now: datetime | None = None,
) -> EventResult:
    """A staff member (orders.update) adds one event by hand on the order page.
    Raises PermissionDenied, or DomainError with the reason it was refused."""
    if not perm.has(actor, perm.ORDERS_UPDATE):
        raise PermissionDenied(_("You are not allowed to change orders."))
    now = now or utcnow()
    if occurred_at is None:
        occurred_at = now
    result = record_events(
        [EventIn(order.resi, str(kind), occurred_at, location, note)],
        source=TrackingSource.STAFF,
        actor=actor,
        now=now,
    )[0]
    if result.outcome == REFUSED:
        raise DomainError(result.reason)
    if result.outcome == UNCHANGED:
        raise DomainError(_("This event is already in the parcel's timeline."))
    return result


def timeline(order: Order | int) -> list[TrackingEvent]:
    """The order's tracking events, oldest first (served by the unique key's index)."""
    order_id = order if isinstance(order, int) else order.id
    return timelines([order_id]).get(order_id, [])


def timelines(order_ids: Iterable[int]) -> dict[int, list[TrackingEvent]]:
    """Several orders' tracking events, oldest first, by order id (one query)."""
    ids = sorted(set(order_ids))
    if not ids:
        return {}
    out: dict[int, list[TrackingEvent]] = {}
    for event in db.session.scalars(
        select(TrackingEvent)
        .where(
            TrackingEvent.order_id.in_(ids) if len(ids) > 1 else TrackingEvent.order_id == ids[0]
        )
        .order_by(TrackingEvent.order_id, TrackingEvent.occurred_at, TrackingEvent.id)
    ):
        out.setdefault(event.order_id, []).append(event)
    return out


def timeline_mark(order_id):
    """A SQL value that changes whenever the tracking of the parcel `order_id` (a column,
    e.g. `Ticket.order_id`) can: the number of its events, which are appended and never
    edited or removed. The tickets' polls put it in their ETag, so an open desk or chat
    learns of a new event; a scalar subquery on the unique key's index, inside the
    statement that reads the ticket. `len(shipment(order).events)` is the same number."""
    return (
        select(func.count(TrackingEvent.id))
        .where(TrackingEvent.order_id == order_id)
        .scalar_subquery()
    )


def stuck_orders(days: int, *, now: datetime | None = None):
    """A select of moving parcels with no event for `days` days (the stuck situation):
    a range on ix_order_status_last_event per moving status, no full scan."""
    cutoff = (now or utcnow()) - timedelta(days=days)
    return select(Order).where(Order.status.in_(MOVING), Order.last_event_at < cutoff)


def local_time(at: datetime, offset: int) -> str:
    """An event's time where it happened, e.g. `01 Des 2026 14.05 WIB`."""
    local = at + timedelta(minutes=offset)
    zone = ZONES.get(offset) or f"UTC{offset // 60:+03d}:{abs(offset) % 60:02d}"
    return f"{format_datetime(local, 'dd MMM yyyy HH:mm', rebase=False)} {zone}"


def eta_days(order: Order) -> int | None:
    """The longest delivery time the order's service promises, in days (None: none)."""
    return eta_days_of(order.product.eta_days if order.product else None)


def eta_days_of(text: str | None) -> int | None:
    """The longest number of days in a service's ETA text ("2-3 hari" -> 3), or None."""
    numbers = [int(n) for n in re.findall(r"\d+", (text or "").strip())]
    return max(numbers) if numbers else None


def promised_date(start: datetime, days: int) -> date:
    """The day a parcel handed in at `start` (naive UTC) is promised by: `days` WIB days on."""
    return (start + timedelta(minutes=DEFAULT_OFFSET)).date() + timedelta(days=days)


def late_from(promised: date) -> datetime:
    """The moment (naive UTC) a parcel not delivered by `promised` becomes late: the WIB
    midnight that ends that day."""
    return datetime.combine(promised + timedelta(days=1), datetime.min.time()) - timedelta(
        minutes=DEFAULT_OFFSET
    )


@dataclass(slots=True)
class Shipment:
    """What anybody may see of one parcel: no names, phones or addresses."""

    resi: str
    status: str
    last_event: TrackingEventKind | None
    events: list[TrackingEvent]
    promised: date | None
    late: bool
    delivered: bool


def shipment(
    order: Order, *, now: datetime | None = None, events: list[TrackingEvent] | None = None
) -> Shipment:
    """The parcel's timeline, its promised date (first scan, or the order, plus the
    service's ETA, in WIB days) and whether it is late (not delivered by then, or
    delivered after it). `events`: its timeline when the caller read several at once
    (`timelines`)."""
    now = now or utcnow()
    events = timeline(order) if events is None else events
    days = eta_days(order)
    promised = None
    late = False
    delivered_at = next((e.occurred_at for e in events if e.event is K.DELIVERED), None)
    if days is not None:
        picked = next((e.occurred_at for e in events if e.event is K.PICKED_UP), None)
        promised = promised_date(picked or order.created_at, days)
        until = delivered_at or now
        ended = order.status is OrderStatus.CANCELLED or order.last_event is K.RETURNED
        late = not ended and until >= late_from(promised)
    return Shipment(
        resi=order.resi,
        status=status_text_of(order, events),
        last_event=order.last_event,
        events=events,
        promised=promised,
        late=late,
        delivered=delivered_at is not None and order.last_event is K.DELIVERED,
    )


def status_text_of(order: Order, events: list[TrackingEvent] | None = None) -> str:
    """The parcel's latest status in the request's language: its latest event (where and
    when), or the order's status before the first event. `events`: the order's whole
    timeline when the caller has it (shipment), so the event is not read again."""
    if order.last_event is None or order.last_event_at is None:
        return order.status.label
    if events is not None:
        event = next(
            (
                e
                for e in events
                if e.occurred_at == order.last_event_at and e.event is order.last_event
            ),
            None,
        )
    else:
        event = db.session.scalar(
            select(TrackingEvent)
            .where(
                TrackingEvent.order_id == order.id,
                TrackingEvent.occurred_at == order.last_event_at,
                TrackingEvent.event == order.last_event,
            )
            .limit(1)
        )
    label = order.last_event.label
    if event is None:
        return label
    where = f", {event.location}" if event.location else ""
    return f"{label}{where} ({local_time(event.occurred_at, event.utc_offset)})"


def latest_status_text(resi: str | None) -> str | None:
    """The latest status text of a resi (the desk's `{status_kiriman}` placeholder and the
    channels' replies), e.g. "Out for delivery, Bandung (01 Dec 2026 09:10 WIB)".
    None when the text is no valid resi or no parcel has it."""
    resi = normalise_resi(resi)
    if not is_valid_resi(resi):
        return None
    order = db.session.scalar(
        select(Order).where(Order.resi == resi).options(joinedload(Order.product))
    )
    return status_text_of(order) if order is not None else None


def orders_of(resis: Iterable[str]) -> dict[str, Order]:
    """The orders of some normalised resi, by resi (one query)."""
    resis = list(resis)
    if not resis:
        return {}
    found = db.session.scalars(
        select(Order).where(Order.resi.in_(resis)).options(joinedload(Order.product))
    )
    return {o.resi: o for o in found}

"""What a parcel says: its timeline, promised date and lateness (`shipment`), its
status text, the stuck ones, and what anybody may see of parcels looked up by resi
(`public_shipments`)."""

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from itertools import groupby
from operator import attrgetter

from flask_babel import format_datetime
from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import joinedload, load_only

from ...extensions import db
from ...i18n import current_locale
from ...models import Order, OrderStatus, Product, TrackingEvent, TrackingEventKind
from ...models.base import utcnow
from .events import DEFAULT_OFFSET, K
from .resi import is_valid_resi, normalise_resi

# Parcels that are moving: the ones that can be stuck (no event for N days).
MOVING = (OrderStatus.PICKED_UP, OrderStatus.IN_TRANSIT)
ZONES = {420: "WIB", 480: "WITA", 540: "WIT"}


def timeline(order: Order | int) -> list[TrackingEvent]:
    """The order's tracking events, oldest first (served by the unique key's index)."""
    order_id = order if isinstance(order, int) else order.id
    return timelines([order_id]).get(order_id, [])


# What a timeline shows of an event (built once).
TIMELINE_COLUMNS = load_only(
    TrackingEvent.order_id,
    TrackingEvent.event,
    TrackingEvent.occurred_at,
    TrackingEvent.utc_offset,
    TrackingEvent.location,
    TrackingEvent.note,
    TrackingEvent.source,
)


def timelines(order_ids: Iterable[int]) -> dict[int, list[TrackingEvent]]:
    """Several orders' tracking events, oldest first, by order id (one query), with what
    a timeline shows of them (the driver describes every column it is sent)."""
    ids = sorted(set(order_ids))
    if not ids:
        return {}
    out: dict[int, list[TrackingEvent]] = {}
    for event in db.session.scalars(
        select(TrackingEvent)
        .options(TIMELINE_COLUMNS)
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


LOCAL_TIME_PATTERN = "dd MMM yyyy HH:mm"


def local_time(at: datetime, offset: int) -> str:
    """An event's time where it happened, e.g. `01 Des 2026 14:05 WIB`: Babel's
    LOCAL_TIME_PATTERN in the request's language. Only the month's abbreviation depends
    on the language, so it comes from Babel's locale data and the digits are placed here
    (a test compares every month with `format_datetime`): every timeline prints one a scan."""
    local = at + timedelta(minutes=offset)
    zone = ZONES.get(offset)
    if zone is None:
        hours, minutes = divmod(abs(offset), 60)
        zone = f"UTC{'-' if offset < 0 else '+'}{hours:02d}:{minutes:02d}"
    locale = current_locale()
    if locale is None:  # outside any app context: Babel's own default
        return f"{format_datetime(local, LOCAL_TIME_PATTERN, rebase=False)} {zone}"
    month = locale.months["format"]["abbreviated"][local.month]
    return f"{local.day:02d} {month} {local.year:04d} {local.hour:02d}:{local.minute:02d} {zone}"


def eta_days(order: Order) -> int | None:
    """The longest delivery time the order's service promises, in days (None: none)."""
    return eta_days_of(order.product.eta_days if order.product else None)


@lru_cache(maxsize=256)  # a handful of services, read on every tracking page
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
    """What anybody may see of one parcel: no names, phones or addresses. `events` are
    TrackingEvent rows, or rows with their `event`, `occurred_at`, `utc_offset` and
    `location` only (`public_shipments`)."""

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
    events = timeline(order) if events is None else events
    return _shipment(order, eta_days(order), events, now or utcnow())


# What public tracking reads of a parcel, in one statement: the order's columns that
# `_shipment` and `status_text_of` read, the service's ETA, and per event the four
# columns the page prints (never its note: couriers write names and phones there). A
# row per event, the order's columns repeated; an order without events is one row.
# Built once, for one resi and for several (each page only binds its resi).
def _public_select(where):
    return (
        select(
            Order.id,
            Order.resi,
            Order.status,
            Order.last_event,
            Order.last_event_at,
            Order.created_at,
            Order.customer_id,
            Product.eta_days,
            TrackingEvent.event,
            TrackingEvent.occurred_at,
            TrackingEvent.utc_offset,
            TrackingEvent.location,
        )
        .join(Product, Product.id == Order.product_id)
        .outerjoin(TrackingEvent, TrackingEvent.order_id == Order.id)
        .where(where)
        .order_by(Order.id, TrackingEvent.occurred_at, TrackingEvent.id)
    )


_PUBLIC_ONE = _public_select(Order.resi == bindparam("resi"))
_PUBLIC_MANY = _public_select(Order.resi.in_(bindparam("resis", expanding=True)))


def public_shipments(resis: Iterable[str], *, on=None) -> dict[str, tuple[Shipment, int]]:
    """What anybody may see of the parcels of some normalised resi, by resi, with the
    id of the customer who owns each (to offer them a ticket; never shown): the orders,
    their services and their timelines in one statement. The rows themselves are the
    events: they carry no note, name, phone or address. `on`: the connection to read
    with (public tracking: the autocommit engine, connections.init_app), else
    `db.session`."""
    resis = list(resis)
    if not resis:
        return {}
    if len(resis) == 1:
        stmt, params = _PUBLIC_ONE, {"resi": resis[0]}
    else:
        stmt, params = _PUBLIC_MANY, {"resis": resis}
    rows = (on or db.session).execute(stmt, params).all()
    now = utcnow()
    out: dict[str, tuple[Shipment, int]] = {}
    for _id, group in groupby(rows, key=attrgetter("id")):
        group = list(group)
        order = group[0]
        events = [r for r in group if r.event is not None]
        parcel = _shipment(order, eta_days_of(order.eta_days), events, now)
        out[order.resi] = (parcel, order.customer_id)
    return out


def _shipment(order, days: int | None, events, now: datetime) -> Shipment:
    """`shipment` of an Order, or of a row with its columns (`public_shipments`)."""
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

"""A ticket's shipment situation: where its parcel stands (docs/architecture.md §7).

Part of the shipments rules (domain/shipments/ owns the parcel; this module owns
what a parcel's state means for a ticket about it). The one derivation is `derive`;
everything else feeds it and stores what it says.

- `damaged`: a complaint whose customer sent a photo, about a parcel the courier has
  handled (it has a tracking event: one not yet picked up cannot have been damaged);
- `delivered_disputed`: a complaint about a parcel whose latest event is "delivered"
  (the customer says it did not arrive, or not as it should);
- `failed_delivery`: the latest event is a failed delivery (or the return to the
  sender that follows one);
- `stuck`: a moving parcel (picked up, in transit) with no event for
  CAREBOX_STUCK_DAYS days — the same rule as `shipments.stuck_orders`;
- `late`: not delivered by the day the service promised (`shipments.shipment`'s rule).

The first that applies wins, in that order (ShipmentSituation lists them so).

**Stored, not computed per row.** The lists show the situation of 50 rows per page
and routing rules match on it; deriving it per row would read each parcel's timeline
(the promise starts at the pick-up scan). So it is a column on the ticket, written:
when the ticket is filed (before its routing rule is chosen), when its customer sends
a photo, when events of its parcel arrive (`parcels_changed`, called by
`shipments.record_events` for every batch), and by `refresh_due` at
`Ticket.situation_due_at`, the next moment time alone can change it (a parcel turns
stuck or late without any event). That worker reads an index range
(ix_ticket_status_situation_due), never a scan of tickets or shipments. Finished
tickets keep the situation they finished with.

Background refreshes write with a plain UPDATE that leaves the ticket's version alone:
a badge changing is not an edit, and must not turn a staff member's next action on
an open desk into a "changed by someone else" conflict. Nothing here commits.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import case, func, select, update

from ..extensions import db
from ..models import (
    Order,
    OrderStatus,
    Product,
    ShipmentSituation,
    Ticket,
    TicketAttachment,
    TicketKind,
    TicketMessage,
    TicketStatus,
    TrackingEvent,
    TrackingEventKind,
)
from ..models.base import utcnow
from ..models.enums import OPEN_STATUSES
from . import shipments

S = ShipmentSituation
K = TrackingEventKind
DEFAULT_STUCK_DAYS = 3
CHUNK = 500
ORDERS_CHUNK = 5000  # parcels per query of parcels_changed: an import batch's in one


@dataclass(slots=True)
class Parcel:
    """What the situation depends on of one parcel (one row of `parcels`)."""

    status: OrderStatus
    last_event: TrackingEventKind | None
    last_event_at: datetime | None
    promised: object | None  # a date, or None when the service promises none


def stuck_days() -> int:
    """N of "no event for N days" (CAREBOX_STUCK_DAYS)."""
    return int(current_app.config.get("CAREBOX_STUCK_DAYS") or DEFAULT_STUCK_DAYS)


def is_photo(attachment: TicketAttachment) -> bool:
    return (attachment.content_type or "").startswith("image/")


def derive(
    kind: TicketKind,
    has_photo: bool,
    parcel: Parcel | None,
    now: datetime,
    days: int | None = None,
) -> tuple[ShipmentSituation | None, datetime | None]:
    """The situation of a ticket of `kind` about `parcel` (None: no parcel, or nothing
    wrong), and the next moment time alone may change it (None: only an event can)."""
    if parcel is None or parcel.status is OrderStatus.CANCELLED:
        return None, None  # a cancelled parcel's situation ends, whatever came before
    days = stuck_days() if days is None else days
    complaint = kind is TicketKind.COMPLAINT
    last = parcel.last_event
    if complaint and has_photo and last is not None:
        return S.DAMAGED, None
    if complaint and last is K.DELIVERED:
        return S.DELIVERED_DISPUTED, None
    if last in (K.DELIVERY_FAILED, K.RETURNED):
        return S.FAILED_DELIVERY, None
    moving = parcel.status in shipments.MOVING
    stuck_at = (
        parcel.last_event_at + timedelta(days=days)
        if moving and parcel.last_event_at is not None
        else None
    )
    if stuck_at is not None and now >= stuck_at:
        return S.STUCK, None
    delivered = last is K.DELIVERED or parcel.status is OrderStatus.DELIVERED
    late_at = None
    if parcel.promised is not None:
        late_at = shipments.late_from(parcel.promised)
        if delivered and parcel.last_event_at is not None and parcel.last_event_at < late_at:
            late_at = None  # delivered in time
        elif now >= late_at:
            return S.LATE, stuck_at
    if delivered:
        return None, None
    due = [t for t in (stuck_at, late_at) if t is not None]
    return None, min(due) if due else None


def parcels(order_ids: Iterable[int]) -> dict[int, Parcel]:
    """The parcels of some orders, by order id: two indexed queries per CHUNK orders
    (the orders with their service's ETA; their first pick-up scans)."""
    ids = sorted(set(order_ids))
    found: dict[int, Parcel] = {}
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        picked = dict(
            db.session.execute(
                select(TrackingEvent.order_id, func.min(TrackingEvent.occurred_at))
                .where(TrackingEvent.order_id.in_(chunk), TrackingEvent.event == K.PICKED_UP)
                .group_by(TrackingEvent.order_id)
            ).all()
        )
        rows = db.session.execute(
            select(
                Order.id,
                Order.status,
                Order.last_event,
                Order.last_event_at,
                Order.created_at,
                Product.eta_days,
            )
            .join(Product, Product.id == Order.product_id)
            .where(Order.id.in_(chunk))
        )
        for row in rows:
            found[row.id] = _parcel(
                row.status, row.last_event, row.last_event_at, row.created_at,
                row.eta_days, picked.get(row.id),
            )  # fmt: skip
    return found


def _parcel(status, last_event, last_event_at, created_at, eta_text, first_pickup) -> Parcel:
    """A Parcel from its order's columns, its service's ETA text and its first pick-up."""
    eta = shipments.eta_days_of(eta_text)
    promised = None
    if eta is not None:
        promised = shipments.promised_date(first_pickup or created_at, eta)
    return Parcel(status, last_event, last_event_at, promised)


def _with_photo(ticket_ids: Sequence[int]) -> set[int]:
    """Which of these tickets have a photo from their customer."""
    if not ticket_ids:
        return set()
    return set(
        db.session.scalars(
            select(TicketMessage.ticket_id)
            .join(TicketAttachment, TicketAttachment.message_id == TicketMessage.id)
            .where(
                TicketMessage.ticket_id.in_(ticket_ids),
                TicketMessage.from_staff.is_(False),
                TicketAttachment.content_type.like("image/%"),
            )
            .distinct()
        )
    )


def for_new_ticket(
    kind: TicketKind,
    order: Order | None,
    attachments: Sequence[TicketAttachment],
    now: datetime,
) -> tuple[ShipmentSituation | None, datetime | None]:
    """The situation of a ticket being filed (before its routing rule is chosen)."""
    if order is None or order.id is None:
        return None, None
    parcel = parcels([order.id]).get(order.id)
    return derive(TicketKind(kind), any(is_photo(a) for a in attachments), parcel, now)


def for_ticket(ticket: Ticket, now: datetime) -> tuple[ShipmentSituation | None, datetime | None]:
    """The situation of an existing ticket about its (possibly just changed) parcel."""
    if ticket.order_id is None:
        return None, None
    photo = ticket.kind is TicketKind.COMPLAINT and bool(_with_photo([ticket.id]))
    return derive(ticket.kind, photo, parcels([ticket.order_id]).get(ticket.order_id), now)


def photo_added(ticket: Ticket, now: datetime) -> None:
    """The ticket's customer sent a photo: a complaint about a handled parcel becomes
    `damaged` (set on the ticket itself: the message's own flush stores it)."""
    if ticket.order_id is None or ticket.kind is not TicketKind.COMPLAINT:
        return
    parcel = parcels([ticket.order_id]).get(ticket.order_id)
    ticket.situation, ticket.situation_due_at = derive(ticket.kind, True, parcel, now)


def _store(rows, now: datetime) -> int:
    """Derive and write the situation of open tickets given as rows (`_rows`); returns
    how many changed. A Progress ticket nobody dispatched whose situation turned is then
    routed by the rules on it (`tickets.route_by_situation`: that one is an edit)."""
    rows = sorted(rows, key=lambda r: r.id)  # one lock order for every writer
    if not rows:
        return 0
    days = stuck_days()
    table = Ticket.__table__
    session = db.session
    changes, to_route = [], []
    for r in rows:
        parcel = None
        if r.order_status is not None:
            parcel = _parcel(
                r.order_status, r.last_event, r.last_event_at, r.order_created_at,
                r.eta_days, r.first_pickup,
            )  # fmt: skip
        photo = r.kind is TicketKind.COMPLAINT and bool(r.has_photo)
        situation, due = derive(r.kind, photo, parcel, now, days)
        if situation == r.situation and due == r.situation_due_at:
            continue
        changes.append((r.id, situation.value if situation else None, due))
        turned = situation is not None and situation != r.situation
        if turned and r.status is TicketStatus.PROGRESS and r.department_id is None:
            to_route.append(r.id)  # never dispatched: the rule on its situation applies
        obj = session.identity_map.get(session.identity_key(Ticket, r.id))
        if obj is not None:
            session.expire(obj, ["situation", "situation_due_at"])
    for first in range(0, len(changes), CHUNK):
        # Not through the ORM: a badge is not an edit and must not bump the version.
        # One UPDATE for the batch (CASE on the id), not a statement per ticket.
        chunk = changes[first : first + CHUNK]
        session.execute(
            update(table)
            .where(table.c.id.in_([tid for tid, _s, _d in chunk]))
            .values(
                situation=case({tid: s for tid, s, _d in chunk}, value=table.c.id),
                situation_due_at=case({tid: d for tid, _s, d in chunk}, value=table.c.id),
            )
            .execution_options(synchronize_session=False)
        )
    if to_route:
        # Late import: the lifecycle imports this module (it derives at filing).
        from . import tickets

        tickets.route_by_situation(to_route, now)
    return len(changes)


def _rows():
    """Open tickets with all their situation depends on, in one query: the ticket, its
    parcel's order and service, the parcel's first pick-up scan and (for complaints)
    whether its customer sent a photo (both by index, per row)."""
    first_pickup = (
        select(func.min(TrackingEvent.occurred_at))
        .where(TrackingEvent.order_id == Ticket.order_id, TrackingEvent.event == K.PICKED_UP)
        .correlate(Ticket)
        .scalar_subquery()
    )
    photo = (
        select(TicketMessage.id)
        .join(TicketAttachment, TicketAttachment.message_id == TicketMessage.id)
        .where(
            TicketMessage.ticket_id == Ticket.id,
            TicketMessage.from_staff.is_(False),
            TicketAttachment.content_type.like("image/%"),
        )
        .correlate(Ticket)
        .exists()
    )
    return (
        select(
            Ticket.id,
            Ticket.kind,
            Ticket.order_id,
            Ticket.situation,
            Ticket.situation_due_at,
            Ticket.status,
            Ticket.department_id,
            Order.status.label("order_status"),
            Order.last_event,
            Order.last_event_at,
            Order.created_at.label("order_created_at"),
            Product.eta_days,
            first_pickup.label("first_pickup"),
            case((Ticket.kind == TicketKind.COMPLAINT, photo), else_=False).label("has_photo"),
        )
        .select_from(Ticket)
        .outerjoin(Order, Order.id == Ticket.order_id)
        .outerjoin(Product, Product.id == Order.product_id)
    )


def parcels_changed(order_ids: Iterable[int], now: datetime | None = None) -> int:
    """Events of these parcels arrived: the open tickets about them follow (served by
    the index on ticket.order_id). Returns how many tickets changed."""
    now = now or utcnow()
    ids = sorted(set(order_ids))
    changed = 0
    for start in range(0, len(ids), ORDERS_CHUNK):
        chunk = ids[start : start + ORDERS_CHUNK]
        rows = db.session.execute(
            _rows().where(Ticket.order_id.in_(chunk), Ticket.status.in_(OPEN_STATUSES))
        )
        changed += _store(rows, now)
    return changed


def due_query(now: datetime, limit: int = CHUNK):
    """Open tickets whose situation may have changed by time alone: a range of
    ix_ticket_status_situation_due per open status."""
    return (
        _rows()
        .where(Ticket.status.in_(OPEN_STATUSES), Ticket.situation_due_at <= now)
        # No ORDER BY: every round moves the rows it read past `now`, so any `limit` of
        # them will do, and the index range is read without a sort.
        .limit(limit)
    )


def refresh_due(now: datetime | None = None, limit: int = CHUNK) -> int:
    """One round of the worker (`carebox tracking situations`): re-derive up to `limit`
    tickets whose due moment has come. Returns how many were looked at."""
    now = now or utcnow()
    rows = list(db.session.execute(due_query(now, limit)))
    _store(rows, now)
    return len(rows)


def refresh_all(now: datetime | None = None) -> int:
    """Re-derive every open ticket about a parcel (after a change of CAREBOX_STUCK_DAYS,
    or once after the migration). Keyset over the primary key, CHUNK rows at a time."""
    now = now or utcnow()
    last, changed = 0, 0
    while True:
        rows = list(
            db.session.execute(
                _rows()
                .where(
                    Ticket.id > last,
                    Ticket.order_id.is_not(None),
                    Ticket.status.in_(OPEN_STATUSES),
                )
                .order_by(Ticket.id)
                .limit(CHUNK)
            )
        )
        if not rows:
            return changed
        changed += _store(rows, now)
        last = rows[-1].id

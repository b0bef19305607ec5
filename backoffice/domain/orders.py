"""Orders: placing one at the tariff price, and its validated status changes."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation

from flask_babel import gettext as _

from ..extensions import db
from ..models import Order, OrderEvent, OrderStatus, Product, ProductKind, TrackingSource, User
from ..models.base import utcnow
from . import DomainError, PermissionDenied, clean_text, loyalty, notifications, shipments
from . import permissions as perm

S = OrderStatus
ORDER_TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    S.PLACED: frozenset({S.PICKED_UP, S.CANCELLED}),
    S.PICKED_UP: frozenset({S.IN_TRANSIT, S.CANCELLED}),
    S.IN_TRANSIT: frozenset({S.DELIVERED}),
    S.DELIVERED: frozenset(),
    S.CANCELLED: frozenset(),
}
MAX_ADDRESS = 200


def place_order(
    customer: User,
    product: Product,
    *,
    origin: str,
    destination: str,
    weight_kg: Decimal | str | float,
    receiver_name: str = "",
    receiver_phone: str = "",
    notes: str = "",
    now: datetime | None = None,
) -> Order:
    """Order a service; the price comes from its tariff. Flushes, never commits.

    The order is a shipment from here on: it gets its unique random resi.
    """
    now = now or utcnow()
    if not perm.has(customer, perm.PORTAL):
        raise PermissionDenied(_("Only customers can order services."))
    if not product.active or product.kind is not ProductKind.SERVICE:
        raise DomainError(_("That service cannot be ordered."))
    try:
        weight = Decimal(str(weight_kg)).quantize(Decimal("0.01"))
    except (InvalidOperation, ValueError) as exc:
        raise DomainError(_("Weight must be a number of kilograms.")) from exc
    if not weight.is_finite() or not product.min_weight_kg <= weight <= product.max_weight_kg:
        raise DomainError(
            _(
                "Weight for %(name)s must be between %(lo)s and %(hi)s kg.",
                name=product.name_id,
                lo=product.min_weight_kg,
                hi=product.max_weight_kg,
            )
        )
    loyalty.lock_customer(customer.id)
    order = Order(
        customer=customer,
        product=product,
        origin=clean_text(origin, MAX_ADDRESS, _("Origin")),
        destination=clean_text(destination, MAX_ADDRESS, _("Destination")),
        weight_kg=weight,
        price=product.price_for(weight),
        receiver_name=(receiver_name or "").strip()[:120],
        receiver_phone=(receiver_phone or "").strip()[:32],
        notes=(notes or "").replace("\x00", "").strip()[:2000],
        status=S.PLACED,
        created_at=now,
    )
    shipments.assign_resi(order)  # adds and flushes the order
    order.number = f"ORD-{now.year}-{order.id:06d}"
    db.session.add(OrderEvent(order=order, actor=customer, to_status=S.PLACED, created_at=now))
    db.session.flush()
    loyalty.refresh_customer(customer.id, now=now)
    notifications.order_placed(order)
    return order


def can_change_status(order: Order, to: OrderStatus, actor: User | None) -> bool:
    return perm.has(actor, perm.ORDERS_UPDATE) and to in ORDER_TRANSITIONS[order.status]


def can_cancel(order: Order, actor: User | None) -> bool:
    """Staff with orders.update while ORDER_TRANSITIONS allows it (placed or picked up);
    the order's own customer while it is placed: before pickup nothing has moved, after it
    the parcel is in the courier's hands and only customer service can stop it."""
    if perm.has(actor, perm.ORDERS_UPDATE):
        return S.CANCELLED in ORDER_TRANSITIONS[order.status]
    return _own(order, actor) and order.status is S.PLACED


def _own(order: Order, actor: User | None) -> bool:
    return perm.has(actor, perm.PORTAL) and order.customer_id == actor.id


def _lock(order: Order) -> OrderStatus:
    """Lock the order's row until the transaction ends and read it as committed (SELECT …
    FOR UPDATE): two changes of one order at once go one after the other, the second
    deciding on the first's outcome. (SQLite runs one writer at a time anyway; on Galera
    both write the order's row, so certification lets one through.)"""
    db.session.refresh(order, with_for_update=True)
    return order.status


def change_status(
    order: Order, to: OrderStatus, actor: User, *, note: str = "", now: datetime | None = None
) -> OrderEvent:
    """Move an order along ORDER_TRANSITIONS (staff with orders.update only): its tracking
    event is recorded through the shipments rule and the status follows it. Cancelling is
    `cancel`; a second cancellation raises DomainError and writes nothing."""
    now = now or utcnow()
    to = OrderStatus(to)
    if not perm.has(actor, perm.ORDERS_UPDATE):
        raise PermissionDenied(_("You are not allowed to change orders."))
    if to is S.CANCELLED:
        event = cancel(order, actor, note=note, now=now)
        if event is None:
            raise DomainError(_("Order %(number)s was cancelled already.", number=order.number))
        return event
    before = _lock(order)
    if to not in ORDER_TRANSITIONS[before]:
        raise DomainError(_("An order cannot go from %(a)s to %(b)s.", a=before.label, b=to.label))
    return _changed(order, before, to, actor, TrackingSource.STAFF, note, now)


def cancel(
    order: Order, actor: User, *, note: str = "", now: datetime | None = None
) -> OrderEvent | None:
    """Cancel the order (who may: `can_cancel`). Its `cancelled` tracking event goes into
    the parcel's timeline through the shipments rule and the status follows it (so every
    timeline and the polls' ETag show it, and a ticket's shipment situation ends); the
    status history, the customer's loyalty profile and their email follow.

    Exactly once: the order's row is locked and read again first, so a second cancellation
    (a double click, two people at once, a retry) returns None and writes nothing. Raises
    PermissionDenied (not theirs) or DomainError (too late, saying why). Flushes only."""
    now = now or utcnow()
    staff = perm.has(actor, perm.ORDERS_UPDATE)
    if not staff and not _own(order, actor):
        raise PermissionDenied(_("You are not allowed to cancel this order."))
    loyalty.lock_customer(order.customer_id)  # its profile counts cancelled orders out
    before = _lock(order)
    if before is S.CANCELLED:
        return None
    if not can_cancel(order, actor):
        if not staff:
            raise DomainError(
                _(
                    "Order %(number)s is %(status)s, so it can no longer be cancelled here: "
                    "a customer can cancel only before pickup. To stop the parcel, tell us "
                    "in a ticket about this order.",
                    number=order.number,
                    status=before.label,
                )
            )
        raise DomainError(
            _("An order cannot go from %(a)s to %(b)s.", a=before.label, b=S.CANCELLED.label)
        )
    source = TrackingSource.STAFF if staff else TrackingSource.CUSTOMER
    event = _changed(order, before, S.CANCELLED, actor, source, note, now)
    loyalty.refresh_customer(order.customer_id, now=now)
    return event


def _changed(order, before, to, actor, source, note, now) -> OrderEvent:
    """Record the status change `before` -> `to` on the locked order: its tracking event
    (the status follows it), the status history, the customer's email."""
    result = shipments.record_status_event(
        order, shipments.STATUS_EVENT[to], source=source, actor=actor, now=now
    )
    if result.outcome != shipments.INSERTED or order.status is not to:
        raise DomainError(result.reason or _("The parcel's timeline did not take the change."))
    event = OrderEvent(
        order=order,
        actor=actor,
        from_status=before,
        to_status=to,
        note=(note or "").replace("\x00", "").strip()[:500],
        created_at=now,
    )
    db.session.add(event)
    db.session.flush()
    notifications.order_status_changed(order, event)
    return event

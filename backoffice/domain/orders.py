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


def change_status(
    order: Order, to: OrderStatus, actor: User, *, note: str = "", now: datetime | None = None
) -> OrderEvent:
    """Move an order along ORDER_TRANSITIONS (staff with orders.update only)."""
    now = now or utcnow()
    to = OrderStatus(to)
    if not perm.has(actor, perm.ORDERS_UPDATE):
        raise PermissionDenied(_("You are not allowed to change orders."))
    if to not in ORDER_TRANSITIONS[order.status]:
        raise DomainError(
            _("An order cannot go from %(a)s to %(b)s.", a=order.status.label, b=to.label)
        )
    event = OrderEvent(
        order=order,
        actor=actor,
        from_status=order.status,
        to_status=to,
        note=(note or "").strip()[:500],
        created_at=now,
    )
    order.status = to
    db.session.add(event)
    db.session.flush()
    if to in shipments.STATUS_EVENT:  # a status change is a tracking event too
        shipments.record_events(
            [shipments.EventIn(order.resi, shipments.STATUS_EVENT[to].value, now)],
            source=TrackingSource.STAFF,
            actor=actor,
            now=now,
        )
    notifications.order_status_changed(order, event)
    return event

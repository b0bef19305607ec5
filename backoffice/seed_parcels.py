"""Demo parcels for `carebox seed --demo`: the demo customer's orders get realistic
timelines (Jakarta -> Bandung through the hubs): one late and stuck at a hub, one
delivered the same day, one failed delivery, one on its way and on time. Idempotent:
a customer whose orders already have demo events is left alone."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from sqlalchemy import select

from .domain import shipments
from .domain.orders import place_order
from .domain.shipments import EventIn
from .extensions import db
from .models import Order, Product, TrackingEvent, TrackingSource, User
from .models.base import utcnow

CUSTOMER = "customer@carebox.example"


def _events(order: Order, now, steps) -> list[EventIn]:
    return [EventIn(order.resi, kind, now - ago, place, note) for ago, kind, place, note in steps]


def seed_demo_parcels() -> list[tuple[str, str]]:
    """Give the demo customer's parcels their timelines; returns (resi, what it shows)."""
    customer = db.session.scalar(select(User).where(User.email == CUSTOMER))
    if customer is None:
        return []
    orders = list(
        db.session.scalars(select(Order).where(Order.customer_id == customer.id).order_by(Order.id))
    )
    done = db.session.scalar(
        select(TrackingEvent.id)
        .join(Order, Order.id == TrackingEvent.order_id)
        .where(Order.customer_id == customer.id, TrackingEvent.source == TrackingSource.SEED)
        .limit(1)
    )
    if done is not None or len(orders) < 2:
        return [(o.resi, o.status.label) for o in orders]
    products = {p.code: p for p in db.session.scalars(select(Product))}
    late, sameday = orders[0], orders[1]
    failed = place_order(
        customer,
        products["ECO"],
        origin="Jakarta Timur",
        destination="Bandung",
        weight_kg=Decimal("4"),
        receiver_name="Rina",
        receiver_phone="+62 811 000 333",
    )
    moving = place_order(
        customer,
        products["EXPRESS"],
        origin="Jakarta Selatan",
        destination="Bandung",
        weight_kg=Decimal("1.5"),
        receiver_name="Agus",
        receiver_phone="+62 811 000 444",
    )
    now = utcnow().replace(microsecond=0)
    h, d = timedelta(hours=1), timedelta(days=1)
    items = (
        _events(
            late,
            now,
            [
                (6 * d, "picked_up", "Jakarta Selatan", ""),
                (6 * d - 5 * h, "at_hub", "Hub Cakung, Jakarta", ""),
                (5 * d, "departed_hub", "Hub Cakung, Jakarta", ""),
                (5 * d - 8 * h, "at_hub", "Hub Bandung", ""),
            ],
        )
        + _events(
            sameday,
            now,
            [
                (d + 6 * h, "picked_up", "Jakarta Pusat", ""),
                (d + 2 * h, "out_for_delivery", "Jakarta Barat", ""),
                (d - 2 * h, "delivered", "Jakarta Barat", "Diterima"),
            ],
        )
        + _events(
            failed,
            now,
            [
                (3 * d, "picked_up", "Jakarta Timur", ""),
                (3 * d - 4 * h, "at_hub", "Hub Cakung, Jakarta", ""),
                (2 * d, "departed_hub", "Hub Cakung, Jakarta", ""),
                (2 * d - 6 * h, "at_hub", "Hub Bandung", ""),
                (d + 3 * h, "out_for_delivery", "Bandung", ""),
                (d - h, "delivery_failed", "Bandung", "Penerima tidak di rumah"),
            ],
        )
        + _events(
            moving,
            now,
            [
                (3 * h, "picked_up", "Jakarta Selatan", ""),
                (h, "at_hub", "Hub Cakung, Jakarta", ""),
            ],
        )
    )
    shipments.record_events(items, source=TrackingSource.SEED, now=now)
    db.session.flush()
    db.session.expire_all()
    return [
        (late.resi, "late, stuck at Hub Bandung"),
        (sameday.resi, "delivered"),
        (failed.resi, "delivery failed"),
        (moving.resi, "on its way, on time"),
    ]

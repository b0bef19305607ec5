"""`carebox seed-bulk`: counts, options, and rows that obey the shipment rules."""

from __future__ import annotations

from sqlalchemy import func, select

from backoffice.cli import seed_bulk_command
from backoffice.domain import shipments
from backoffice.extensions import db as _db
from backoffice.models import (
    Order,
    Ticket,
    TicketEvent,
    TicketMessage,
    TrackingEvent,
    User,
)


def _count(model, *where):
    return _db.session.scalar(select(func.count()).select_from(model).where(*where))


def test_seed_bulk_loads_orders_with_valid_resi_and_tracking(runner, db):
    users_before = _count(User)
    result = runner.invoke(
        seed_bulk_command,
        ["--tickets", "200", "--customers", "30", "--messages", "5", "--batch", "100"],
    )
    assert result.exit_code == 0, result.output
    assert "200 tickets" in result.output and "1,000 messages" in result.output
    assert _count(Ticket) == 200 and _count(TicketMessage) == 1000
    assert _count(Order) == 100
    assert _count(User) - users_before >= 30  # the customers (plus a bulk agent if none)
    assert _count(TicketEvent) >= 200
    assert _count(TrackingEvent) >= 100
    # Every ticket's customer and order exist, and a ticket's customer owns its order.
    assert _count(Ticket, ~Ticket.customer_id.in_(select(User.id))) == 0
    orphan = select(Ticket.id).join(Order, Order.id == Ticket.order_id)
    assert _db.session.scalars(orphan.where(Order.customer_id != Ticket.customer_id)).all() == []
    # Each ticket has exactly --messages messages.
    per_ticket = select(func.count(TicketMessage.id)).group_by(TicketMessage.ticket_id)
    assert set(_db.session.scalars(per_ticket)) == {5}

    orders = _db.session.scalars(select(Order)).all()
    assert len({o.resi for o in orders}) == 100
    for order in orders:
        assert shipments.is_valid_resi(order.resi), order.resi
        timeline = shipments.timeline(order)
        assert timeline, f"order {order.id} has no tracking event"
        latest = timeline[-1]
        assert (order.last_event, order.last_event_at) == (latest.event, latest.occurred_at)
        assert order.status is shipments.EVENT_STATUS[latest.event]
        assert shipments.find_order(order.resi).id == order.id
    # Some parcels are still moving, most are delivered.
    statuses = {o.status for o in orders}
    assert len(statuses) >= 2


def test_seed_bulk_twice_gives_fresh_resis(runner, db):
    for _ in range(2):
        result = runner.invoke(seed_bulk_command, ["--tickets", "100", "--messages", "1"])
        assert result.exit_code == 0, result.output
    assert _count(Ticket) == 200 and _count(TicketMessage) == 200
    resis = _db.session.scalars(select(Order.resi)).all()
    assert len(resis) == 100 and len(set(resis)) == 100


def test_seed_bulk_refuses_bad_options(runner, db):
    for args, name in (
        (["--tickets", "10", "--customers", "0"], "--customers"),
        (["--tickets", "10", "--messages", "0"], "--messages"),
        (["--tickets", "10", "--messages", "101"], "--messages"),
    ):
        result = runner.invoke(seed_bulk_command, args)
        assert result.exit_code != 0 and name in result.output, args
    assert _count(Ticket) == 0 and _count(Order) == 0

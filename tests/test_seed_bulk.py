"""`carebox seed-bulk`: counts, options, and rows that obey the shipment rules."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from backoffice.cli import seed_bulk_command
from backoffice.domain import permissions as perm
from backoffice.domain import shipments, situations
from backoffice.domain.phones import normalise_phone
from backoffice.domain.shipments import EventIn
from backoffice.extensions import db as _db
from backoffice.models import (
    Order,
    Ticket,
    TicketEvent,
    TicketMessage,
    TicketStatus,
    TrackingEvent,
    TrackingSource,
    User,
)


def _count(model, *where):
    return _db.session.scalar(select(func.count()).select_from(model).where(*where))


def test_seed_bulk_loads_orders_with_valid_resi_and_tracking(runner, db):
    users_before = _count(User)
    result = runner.invoke(
        seed_bulk_command,
        [
            "--tickets",
            "200",
            "--customers",
            "30",
            "--orders",
            "100",
            "--messages",
            "5",
            "--batch",
            "100",
        ],
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
        result = runner.invoke(
            seed_bulk_command, ["--tickets", "100", "--orders", "50", "--messages", "1"]
        )
        assert result.exit_code == 0, result.output
    assert _count(Ticket) == 200 and _count(TicketMessage) == 200
    resis = _db.session.scalars(select(Order.resi)).all()
    assert len(resis) == 100 and len(set(resis)) == 100


def test_a_batch_large_enough_to_spill_loads_on_sqlite_too(runner, db):
    """5,000 customers in one batch spill SQLite's page cache, so the loading connection
    holds the file's exclusive lock: nothing else may read through db.session meanwhile
    (the customer role's id was reloaded there, and the load stopped: database is locked)."""
    result = runner.invoke(seed_bulk_command, ["--tickets", "20", "--customers", "5000"])
    assert result.exit_code == 0, result.output
    customers = select(User.id).where(User.roles.any(name=perm.CUSTOMER)).subquery()
    assert _db.session.scalar(select(func.count()).select_from(customers)) == 5000


def test_seed_bulk_refuses_bad_options(runner, db):
    for args, name in (
        (["--tickets", "10", "--customers", "0"], "--customers"),
        (["--tickets", "10", "--messages", "0"], "--messages"),
        (["--tickets", "10", "--messages", "101"], "--messages"),
    ):
        result = runner.invoke(seed_bulk_command, args)
        assert result.exit_code != 0 and name in result.output, args
    assert _count(Ticket) == 0 and _count(Order) == 0


def test_loaded_data_works_in_the_app(runner, db, login_as, client):
    """What seed-bulk writes passes the app's own reading of it: the lists and the desk
    open, a loaded resi is tracked publicly, its latest event is found, an event already
    loaded is recognised (the idempotency key matches the loaded times), stuck parcels
    are found, and a staff reply goes through the lifecycle."""
    result = runner.invoke(
        seed_bulk_command, ["--tickets", "80", "--orders", "40", "--messages", "4"]
    )
    assert result.exit_code == 0, result.output
    staff, _ = login_as(perm.CUSTOMER_SERVICE, locale="en")
    master, _ = login_as(perm.MASTER_ADMIN, locale="en")
    for b, lists in ((staff, ("team", "responded", "finished")), (master, ("progress",))):
        for name in lists:
            resp = b.get(f"/admin/tickets/{name}/")
            assert resp.status_code == 200, name
            count = _count(Ticket, Ticket.status == TicketStatus(name))
            assert count, name
            number = _db.session.scalar(
                select(Ticket.number).where(Ticket.status == TicketStatus(name)).limit(1)
            )
            assert resp.status_code == 200 and (count > 20 or number in resp.get_data(True))

    ticket = _db.session.scalar(
        select(Ticket).where(Ticket.status == TicketStatus.RESPONDED).limit(1)
    )
    desk = staff.get(f"/admin/tickets/desk/{ticket.number}/")
    assert desk.status_code == 200
    html = desk.get_data(as_text=True)
    assert "Mohon bantuannya" in html and "Terima kasih, kami sedang menanganinya." in html
    bodies = _db.session.scalars(
        select(TicketMessage.body)
        .where(TicketMessage.ticket_id == ticket.id)
        .order_by(TicketMessage.id)
    ).all()
    assert bodies[0].startswith("Mohon") and bodies[-1].startswith("Terima kasih")
    version = re.search(r'name="expected_version" type="hidden" value="(\d+)"', html).group(1)
    reply = staff.post(
        f"/admin/tickets/desk/{ticket.number}/reply",
        {"body": "Paket sudah kami cek.", "visibility": "public", "expected_version": version},
        form_url=f"/admin/tickets/desk/{ticket.number}/",
    )
    assert reply.status_code == 302
    _db.session.expire_all()
    assert _db.session.get(Ticket, ticket.id).status is TicketStatus.RESPONDED
    assert _count(TicketMessage, TicketMessage.ticket_id == ticket.id) == 5

    order = _db.session.scalar(select(Order).where(Order.last_event == "delivered").limit(1))
    page = client.get(f"/track/{order.resi}", headers={"Accept-Language": "en"})
    assert page.status_code == 200 and "Delivered" in page.get_data(as_text=True)
    assert "Surabaya" in shipments.status_text_of(order)  # the latest event is found
    latest = shipments.timeline(order)[-1]
    again = shipments.record_events(
        [EventIn(order.resi, latest.event.value, latest.occurred_at)],
        source=TrackingSource.IMPORT,
    )
    assert again[0].outcome == shipments.UNCHANGED
    _db.session.rollback()
    stuck = _db.session.scalars(shipments.stuck_orders(3)).all()
    assert stuck and all(o.status in shipments.MOVING for o in stuck)
    assert all(
        len(shipments.timeline(o)) in range(6, 11) for o in _db.session.scalars(select(Order))
    )
    # The stored shipment situations are the domain's: re-deriving them changes nothing.
    about_parcels = _count(Ticket, Ticket.order_id.isnot(None), Ticket.situation.isnot(None))
    assert about_parcels and situations.refresh_all() == 0
    customers = _db.session.scalars(select(User).where(User.email.like("c%@bulk.carebox.example")))
    assert all(normalise_phone(c.phone) == c.phone_key for c in customers)


def test_seed_bulk_without_local_files_loads_the_same(app, db):
    """When LOAD DATA LOCAL is not available (refused by the server, or SQLite) the rows
    go in with multi-row INSERTs: same counts."""
    from backoffice.bulk import seed_bulk

    stats = seed_bulk(30, n_orders=10, n_messages=2, batch=100, local_infile=False)
    assert stats.loader.startswith("executemany")
    assert _count(Ticket) == 30 and _count(TicketMessage) == 60 and _count(Order) == 10
    assert stats.counts["tracking events"] == _count(TrackingEvent)


def test_a_stopped_load_gets_its_indexes_back(app, db):
    """MariaDB: the indexes a load drops (to build them after) are stored first, so a
    load stopped half-way leaves them pending and the next seed-bulk builds them."""
    import pytest
    import sqlalchemy as sa

    from backoffice.bulk import seed_bulk
    from backoffice.bulk_write import PENDING, DeferredIndexes

    if _db.engine.dialect.name != "mysql":
        pytest.skip("index deferral is MySQL's")

    def indexes(table):
        with _db.engine.connect() as conn:
            return set(
                conn.scalars(
                    sa.text(
                        "SELECT DISTINCT index_name FROM information_schema.statistics"
                        " WHERE table_schema = DATABASE() AND table_name = :t"
                    ),
                    {"t": table},
                )
            )

    before = indexes("ticket")
    assert "ix_ticket_status_created" in before
    with _db.engine.connect() as conn:  # a load that stopped after dropping them
        DeferredIndexes(conn).defer(["ticket"])
    assert indexes("ticket") == {"PRIMARY"}
    seed_bulk(20, n_orders=10, n_messages=1)
    assert indexes("ticket") == before
    with _db.engine.connect() as conn:
        assert not conn.execute(sa.text(f"SHOW TABLES LIKE '{PENDING}'")).first()
    assert _count(Ticket) == 20

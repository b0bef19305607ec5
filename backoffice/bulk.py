"""`carebox seed-bulk`: synthetic customers, orders with their shipments' tracking
events, tickets, messages and events.

Rows go in with Core executemany in batches (one multi-row INSERT per table and
batch on MySQL), ids assigned here so numbers and foreign keys need no
round trips. The data obeys the model's invariants (check constraints hold; every
order has a valid resi from `domain.shipments.make_resi` and a tracking timeline whose
latest event gives the order's status through `shipments.EVENT_STATUS`).

Memory stays flat whatever the volume: only one batch of rows is held at a time, an
order's customer is a function of its index (no lookup table), and resi serials come
from a permutation of the serial space (no set of the ones handed out).
"""

from __future__ import annotations

import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from types import SimpleNamespace

import click
from flask_security import hash_password
from sqlalchemy import func, select, text

from .domain import permissions as perm
from .domain import shipments, sla
from .extensions import db
from .models import (
    EventAction,
    Order,
    OrderEvent,
    OrderStatus,
    Priority,
    Product,
    ProductKind,
    Role,
    Ticket,
    TicketEvent,
    TicketKind,
    TicketMessage,
    TicketStatus,
    TrackingEvent,
    TrackingEventKind,
    TrackingSource,
    User,
    roles_users,
)
from .models.base import utcnow
from .security_setup import ensure_roles

SUBJECTS = (
    "Paket belum sampai",
    "Paket rusak saat diterima",
    "Kurir tidak datang",
    "Ongkir terlalu mahal",
    "Saran jam operasional",
    "Resi tidak bisa dilacak",
    "Barang tertukar",
    "Pertanyaan COD",
)
STATUS_MIX = (
    [TicketStatus.PROGRESS] * 10
    + [TicketStatus.TEAM] * 25
    + [TicketStatus.RESPONDED] * 25
    + [TicketStatus.FINISHED] * 40
)


@dataclass
class BulkStats:
    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def rows_per_second(self) -> float:
        return sum(self.counts.values()) / self.seconds if self.seconds else 0.0


def _next_id(model) -> int:
    return (db.session.scalar(select(func.max(model.id))) or 0) + 1


SERIALS = 10**8  # a resi's serial space (`shipments.make_resi`)
# A step coprime to 10^8 (odd, not a multiple of 5): start + i*step mod 10^8 visits every
# serial once, so the resis are distinct and scattered without remembering them.
SERIAL_STEP = 61_803_399
K = TrackingEventKind
# A parcel's timeline by how far it got (hours after the order), latest last.
TRAILS = (
    ((K.PICKED_UP, 2),),
    ((K.PICKED_UP, 2), (K.AT_HUB, 8), (K.DEPARTED_HUB, 12)),
    (
        (K.PICKED_UP, 2),
        (K.AT_HUB, 8),
        (K.DEPARTED_HUB, 12),
        (K.AT_HUB, 30),
        (K.OUT_FOR_DELIVERY, 40),
        (K.DELIVERED, 46),
    ),
)
TRAIL_MIX = (0, 1, 1, 2, 2, 2, 2, 2, 2, 2)  # 10 % picked up, 20 % in transit, 70 % delivered
HUBS = ("Jakarta", "Hub Cakung, Jakarta", "Hub Surabaya", "Surabaya")
WIB = 7 * 60


def _free_resis(conn, rng: random.Random, n: int, chunk: int):
    """`n` distinct resi that no order has yet, scattered like real ones (not a counter).

    Candidates come a chunk at a time; the few an earlier load already used are skipped
    with one lookup per chunk, so nothing grows with `n`.
    """
    prefix = shipments.random_resi()[:2]
    start = rng.randrange(SERIALS)
    serial = 0
    given = 0
    while given < n:
        if serial >= SERIALS:
            raise click.ClickException("No free resi serials left.")
        candidates = [
            shipments.make_resi((start + k * SERIAL_STEP) % SERIALS, prefix)
            for k in range(serial, min(serial + chunk, SERIALS))
        ]
        serial += len(candidates)
        taken = set(conn.scalars(select(Order.resi).where(Order.resi.in_(candidates))))
        for resi in candidates:
            if resi not in taken and given < n:
                given += 1
                yield resi


def _thread(n_messages, cust, staff_id, created, first_at):
    """A ticket's messages: the customer's, notes and follow-ups, the staff reply last."""
    thread = [(cust, False, False, created, "Mohon bantuannya, paket saya bermasalah.")]
    reply = first_at is not None and n_messages >= 2
    for j in range(1, n_messages - reply):
        at = created + timedelta(seconds=10 * j)  # before any reply (≥ 1 h later)
        if j % 2:
            thread.append((staff_id, True, True, at, "Catatan internal: cek gudang."))
        else:
            thread.append((cust, False, False, at, "Ada kabar?"))
    if reply:
        thread.append((staff_id, True, False, first_at, "Terima kasih, kami sedang menanganinya."))
    return thread


def seed_bulk(
    n_tickets: int,
    *,
    n_customers: int | None = None,
    n_messages: int = 3,
    batch: int = 5000,
    progress: bool = False,
    seed: int = 42,
) -> BulkStats:
    """Insert `n_tickets` tickets with `n_customers` (default n/5) customers, n/2 orders
    (each with 1–6 tracking events, ~5 on average), `n_messages` messages per ticket and
    ~2.6 ticket events per ticket."""
    rng = random.Random(seed)
    started = time.perf_counter()
    roles = ensure_roles()
    db.session.commit()
    services = db.session.scalars(
        select(Product).where(Product.kind == ProductKind.SERVICE, Product.active)
    ).all()
    if not services:
        raise click.ClickException("No services in the catalogue: run `carebox seed` first.")
    departments = [d for (d,) in db.session.execute(text("SELECT id FROM department"))]
    staff_id = db.session.scalar(
        select(User.id).join(User.roles).where(Role.name == perm.CUSTOMER_SERVICE).limit(1)
    )
    if staff_id is None:
        staff = User(
            email=f"bulk-agent-{uuid.uuid4().hex[:8]}@bulk.carebox.example",
            password=hash_password(uuid.uuid4().hex),
            fs_uniquifier=uuid.uuid4().hex,
            name="Bulk Agent",
            roles=[roles[perm.CUSTOMER_SERVICE]],
        )
        db.session.add(staff)
        db.session.commit()
        staff_id = staff.id

    n_customers = n_customers or max(1, n_tickets // 5)
    n_orders = max(1, n_tickets // 2)
    now = utcnow()
    password = hash_password(uuid.uuid4().hex)  # one unguessable hash for every bulk account
    ids = {
        m: _next_id(m)
        for m in (User, Order, OrderEvent, TrackingEvent, Ticket, TicketMessage, TicketEvent)
    }
    stats = BulkStats(
        counts=dict.fromkeys(
            ("customers", "orders", "tracking events", "tickets", "messages", "events"), 0
        )
    )
    db.session.commit()
    conn = db.engine.connect()  # one connection: the SET SESSION below must stay on it
    mysql = conn.dialect.name == "mysql"
    if mysql:
        conn.execute(text("SET SESSION foreign_key_checks = 0, unique_checks = 0"))
    customer_role = roles[perm.CUSTOMER].id
    tag = uuid.uuid4().hex[:6]

    def insert(model_or_table, rows):
        if rows:
            table = getattr(model_or_table, "__table__", model_or_table)
            conn.execute(table.insert(), rows)

    total = n_customers + n_orders + n_tickets

    def owner(i: int) -> int:
        """The customer of the i-th order: scattered, computed (no table held in memory)."""
        return first_customer + (i * 2_654_435_761) % n_customers

    # Ticket batches hold about `batch` messages: memory per batch stays the same.
    ticket_batch = max(1, batch * 3 // max(3, n_messages))
    bar = click.progressbar(length=total, label="seed-bulk", hidden=not progress)
    with bar:
        first_customer = ids[User]
        for start in range(0, n_customers, batch):
            users, links = [], []
            for i in range(start, min(start + batch, n_customers)):
                uid = first_customer + i
                users.append(
                    {
                        "id": uid,
                        "email": f"c{uid}-{tag}@bulk.carebox.example",
                        "password": password,
                        "active": True,
                        "fs_uniquifier": uuid.uuid4().hex,
                        "name": f"Pelanggan {uid}",
                        "locale": "id",
                        "marketing_consent": rng.random() < 0.6,
                        "created_at": now - timedelta(days=rng.randint(30, 730)),
                        "update_datetime": now,
                    }
                )
                links.append({"user_id": uid, "role_id": customer_role})
            insert(User, users)
            insert(roles_users, links)
            conn.commit()
            stats.counts["customers"] += len(users)
            bar.update(len(users))

        first_order, first_oevent = ids[Order], ids[OrderEvent]
        next_tracking = ids[TrackingEvent]
        resis = _free_resis(conn, rng, n_orders, batch)
        for start in range(0, n_orders, batch):
            orders, events, tracking = [], [], []
            for i in range(start, min(start + batch, n_orders)):
                oid = first_order + i
                cust = owner(i)
                product = rng.choice(services)
                weight = (
                    Decimal(
                        rng.randint(
                            int(product.min_weight_kg * 10) or 10,
                            int(min(product.max_weight_kg, 50) * 10),
                        )
                    )
                    / 10
                )
                created = now - timedelta(days=rng.randint(3, 365), minutes=rng.randint(0, 1440))
                trail = TRAILS[rng.choice(TRAIL_MIX)]
                for step, (kind, hours) in enumerate(trail):
                    tracking.append(
                        {
                            "id": next_tracking,
                            "order_id": oid,
                            "event": kind.value,
                            "occurred_at": created + timedelta(hours=hours),
                            "utc_offset": WIB,
                            "location": HUBS[min(step, len(HUBS) - 1)],
                            "note": "",
                            "source": TrackingSource.SEED.value,
                            "actor_id": None,
                            "recorded_at": created + timedelta(hours=hours),
                        }
                    )
                    next_tracking += 1
                last_kind, last_hours = trail[-1]
                last_at = created + timedelta(hours=last_hours)
                status = shipments.EVENT_STATUS[last_kind]
                orders.append(
                    {
                        "id": oid,
                        "number": f"ORD-{created.year}-{oid:06d}",
                        "resi": next(resis),
                        "customer_id": cust,
                        "product_id": product.id,
                        "origin": "Jakarta",
                        "destination": "Surabaya",
                        "weight_kg": weight,
                        "receiver_name": "Penerima",
                        "receiver_phone": "",
                        "notes": "",
                        "status": status.value,
                        "price": product.price_for(weight),
                        "last_event": last_kind.value,
                        "last_event_at": last_at,
                        "created_at": created,
                        "updated_at": last_at,
                    }
                )
                events.append(
                    {
                        "id": first_oevent + i,
                        "order_id": oid,
                        "actor_id": None,
                        "from_status": OrderStatus.PLACED.value,
                        "to_status": status.value,
                        "note": "",
                        "created_at": last_at,
                    }
                )
            insert(Order, orders)
            insert(OrderEvent, events)
            insert(TrackingEvent, tracking)
            conn.commit()
            stats.counts["orders"] += len(orders)
            stats.counts["tracking events"] += len(tracking)
            bar.update(len(orders))

        first_ticket, next_msg, next_event = ids[Ticket], ids[TicketMessage], ids[TicketEvent]
        kinds, priorities = list(TicketKind), list(Priority)
        for start in range(0, n_tickets, ticket_batch):
            ticket_rows, messages, events = [], [], []
            for i in range(start, min(start + ticket_batch, n_tickets)):
                tid = first_ticket + i
                created = now - timedelta(days=rng.randint(0, 365), minutes=rng.randint(0, 1440))
                status = rng.choice(STATUS_MIX)
                order_index = rng.randrange(n_orders) if rng.random() < 0.5 else None
                order_id = None if order_index is None else first_order + order_index
                cust = (
                    owner(order_index)
                    if order_index is not None
                    else first_customer + rng.randrange(n_customers)
                )
                dept = None if status is TicketStatus.PROGRESS else rng.choice(departments)
                first_due = created + timedelta(hours=8)
                answered = status in (TicketStatus.RESPONDED, TicketStatus.FINISHED)
                first_at = created + timedelta(hours=rng.randint(1, 12)) if answered else None
                finished_at = (
                    created + timedelta(hours=rng.randint(12, 120))
                    if status is TicketStatus.FINISHED
                    else None
                )
                last = finished_at or first_at or created
                ticket_rows.append(
                    {
                        "id": tid,
                        "number": f"CX-{created.year}-{tid:06d}",
                        "kind": rng.choice(kinds).value,
                        "status": status.value,
                        "priority": rng.choice(priorities).value,
                        "subject": rng.choice(SUBJECTS),
                        "customer_id": cust,
                        "order_id": order_id,
                        "department_id": dept,
                        "assignee_id": staff_id if answered else None,
                        "created_at": created,
                        "updated_at": last,
                        "last_message_at": last,
                        "last_from_staff": first_at is not None,
                        "first_response_due": first_due,
                        "resolution_due": created + timedelta(hours=72),
                        "first_response_at": first_at,
                        "finished_at": finished_at,
                        "reopen_count": 0,
                        "rating": rng.randint(1, 5) if finished_at and rng.random() < 0.5 else None,
                        "rating_comment": None,
                        "rated_at": finished_at,
                        "version_id": 1,
                    }
                )
                thread = _thread(n_messages, cust, staff_id, created, first_at)
                ticket_rows[-1]["last_message_at"] = max(last, thread[-1][3])
                for author, from_staff, internal, at, body in thread:
                    messages.append(
                        {
                            "id": next_msg,
                            "ticket_id": tid,
                            "author_id": author,
                            "from_staff": from_staff,
                            "internal": internal,
                            "body": body,
                            "created_at": at,
                        }
                    )
                    next_msg += 1
                trail = [(cust, EventAction.FILED, None, TicketStatus.PROGRESS, created)]
                if dept:
                    trail.append(
                        (
                            None,
                            EventAction.ROUTED,
                            TicketStatus.PROGRESS,
                            TicketStatus.TEAM,
                            created,
                        )
                    )
                if first_at:
                    trail.append(
                        (
                            staff_id,
                            EventAction.REPLIED,
                            TicketStatus.TEAM,
                            TicketStatus.RESPONDED,
                            first_at,
                        )
                    )
                if finished_at:
                    trail.append(
                        (
                            staff_id,
                            EventAction.FINISHED,
                            TicketStatus.RESPONDED,
                            TicketStatus.FINISHED,
                            finished_at,
                        )
                    )
                for actor, action, before, after, at in trail:
                    events.append(
                        {
                            "id": next_event,
                            "ticket_id": tid,
                            "actor_id": actor,
                            "action": action.value,
                            "from_status": before.value if before else None,
                            "to_status": after.value,
                            "rule_id": None,
                            "note": "",
                            "created_at": at,
                        }
                    )
                    next_event += 1
            for row in ticket_rows:
                row["next_due_at"] = sla.next_due(SimpleNamespace(**row))
            insert(Ticket, ticket_rows)
            insert(TicketMessage, messages)
            insert(TicketEvent, events)
            conn.commit()
            stats.counts["tickets"] += len(ticket_rows)
            stats.counts["messages"] += len(messages)
            stats.counts["events"] += len(events)
            bar.update(len(ticket_rows))
    if mysql:
        conn.execute(text("SET SESSION foreign_key_checks = 1, unique_checks = 1"))
        # Fresh statistics, or the optimizer plans the list queries on an empty table's.
        conn.execute(
            text(
                "ANALYZE TABLE user, customer_order, tracking_event, ticket, ticket_message,"
                " ticket_event"
            )
        )
    conn.close()
    db.session.commit()  # end the session's snapshot, so it sees the rows just written
    stats.seconds = time.perf_counter() - started
    return stats

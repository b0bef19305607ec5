"""`carebox seed-bulk`: synthetic customers, orders, tickets, messages and events.

Rows go in with Core executemany in batches (one multi-row INSERT per table and
batch on MySQL), ids assigned here so numbers and foreign keys need no
round trips. The data obeys the model's invariants (check constraints hold).
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


def _free_resis(rng: random.Random, n: int):
    """`n` distinct random resi that no order has yet (random like real ones, not a counter)."""
    taken = set(db.session.scalars(select(Order.resi)))
    prefix = shipments.random_resi()[:2]
    for serial in rng.sample(range(10**8), n + len(taken)):
        resi = shipments.make_resi(serial, prefix)
        if resi not in taken:
            yield resi


def seed_bulk(
    n_tickets: int, *, batch: int = 5000, progress: bool = False, seed: int = 42
) -> BulkStats:
    """Insert `n_tickets` tickets with ~n/5 customers, n/2 orders, 3n messages, ~2.6n events."""
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

    n_customers = max(1, n_tickets // 5)
    n_orders = max(1, n_tickets // 2)
    now = utcnow()
    password = hash_password(uuid.uuid4().hex)  # one unguessable hash for every bulk account
    ids = {m: _next_id(m) for m in (User, Order, OrderEvent, Ticket, TicketMessage, TicketEvent)}
    stats = BulkStats(
        counts=dict.fromkeys(("customers", "orders", "tickets", "messages", "events"), 0)
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
        order_owner: dict[int, tuple[int, int]] = {}
        resis = _free_resis(rng, n_orders)
        for start in range(0, n_orders, batch):
            orders, events = [], []
            for i in range(start, min(start + batch, n_orders)):
                oid = first_order + i
                cust = first_customer + rng.randrange(n_customers)
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
                created = now - timedelta(days=rng.randint(1, 365), minutes=rng.randint(0, 1440))
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
                        "status": OrderStatus.DELIVERED.value,
                        "price": product.price_for(weight),
                        "created_at": created,
                        "updated_at": created,
                    }
                )
                events.append(
                    {
                        "id": first_oevent + i,
                        "order_id": oid,
                        "actor_id": None,
                        "from_status": None,
                        "to_status": OrderStatus.DELIVERED.value,
                        "note": "",
                        "created_at": created,
                    }
                )
                order_owner[oid] = (cust, product.id)
            insert(Order, orders)
            insert(OrderEvent, events)
            conn.commit()
            stats.counts["orders"] += len(orders)
            bar.update(len(orders))

        first_ticket, next_msg, next_event = ids[Ticket], ids[TicketMessage], ids[TicketEvent]
        kinds, priorities = list(TicketKind), list(Priority)
        for start in range(0, n_tickets, batch):
            ticket_rows, messages, events = [], [], []
            for i in range(start, min(start + batch, n_tickets)):
                tid = first_ticket + i
                created = now - timedelta(days=rng.randint(0, 365), minutes=rng.randint(0, 1440))
                status = rng.choice(STATUS_MIX)
                order_id = first_order + rng.randrange(n_orders) if rng.random() < 0.5 else None
                cust = (
                    order_owner[order_id][0]
                    if order_id
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
                thread = [(cust, False, False, created, "Mohon bantuannya, paket saya bermasalah.")]
                thread.append(
                    (
                        staff_id,
                        True,
                        True,
                        created + timedelta(minutes=30),
                        "Catatan internal: cek gudang.",
                    )
                )
                if first_at:
                    thread.append(
                        (staff_id, True, False, first_at, "Terima kasih, kami sedang menanganinya.")
                    )
                else:
                    thread.append((cust, False, False, created + timedelta(hours=1), "Ada kabar?"))
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
            text("ANALYZE TABLE user, customer_order, ticket, ticket_message, ticket_event")
        )
    conn.close()
    db.session.commit()  # end the session's snapshot, so it sees the rows just written
    stats.seconds = time.perf_counter() - started
    return stats

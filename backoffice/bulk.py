"""`carebox seed-bulk`: synthetic customers, orders with their shipments' tracking
events, tickets, messages and events, at the sizes of docs/architecture.md §3 (1M tickets: 200k
customers, 1M shipments with 6–10 events each, 3M messages) in about the time the
database takes to copy those rows.

Where the time goes (profiled at 20k tickets, before): half of it was PyMySQL escaping
values one by one, a fifth the server. So:
- customers, orders and tickets — the rows with random parts — are generated here as
  plain tuples with their ids (numbers and foreign keys need no round trip) and loaded
  in large batches by `bulk_write.Writer` (`LOAD DATA LOCAL INFILE` on MariaDB, Core
  executemany elsewhere or when the server refuses local files);
- everything that follows from them — the customer role, order events, the tracking
  timeline of each order, the messages and events of each ticket — is written by the
  database with `INSERT … SELECT` over the batch just loaded;
- on MySQL the indexes of the tables that start empty are built once at the end
  (`bulk_write.DeferredIndexes`): at 100k tickets that took the load from 44 s to 16 s,
  below the raw `INSERT … SELECT` copy of the same rows with the indexes in place.

The data obeys the app's invariants (check constraints hold; every order has a valid,
unique, scattered resi from `domain.shipments.make_resi` and a timeline whose latest
event gives its `status`, `last_event` and `last_event_at` through
`shipments.EVENT_STATUS`; a ticket's customer owns its order; `next_due_at` comes from
`domain.sla.next_due`; messages' and events' ids follow each ticket's history).

Memory stays flat whatever the volume: rows stream into the batch file, an order's
customer is a function of its index, and resi serials come from a permutation of the
serial space (no set of the ones handed out).
"""

from __future__ import annotations

import os
import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from types import SimpleNamespace

import click
import sqlalchemy as sa
from flask_security import hash_password
from sqlalchemy import case, func, null, select, text

from .bulk_write import DeferredIndexes, Writer
from .domain import permissions as perm
from .domain import shipments, situations, sla
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
from .models.enums import OPEN_STATUSES
from .security_setup import ensure_roles

# The tables whose indexes are built after the load when it starts with them empty.
DEFERRABLE = (
    "customer_order",
    "order_event",
    "tracking_event",
    "ticket",
    "ticket_message",
    "ticket_event",
)
# Bumped when the shape of the generated data changes (bench/bench_1m.py keeps a loaded
# database only while its marker carries this version).
DATA_VERSION = 4

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
FIRST_BODY = "Mohon bantuannya, paket saya bermasalah."
NOTE_BODY = "Catatan internal: cek gudang."
NUDGE_BODY = "Ada kabar?"
REPLY_BODY = "Terima kasih, kami sedang menanganinya."


@dataclass
class BulkStats:
    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    loader: str = ""

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
H = 3600
WIB = 7 * 60
FAILED_NOTE = "Penerima tidak di tempat"
# Timelines: (event, seconds after the order, location, note), latest last, 6-10 events.
_ROAD = (
    (K.PICKED_UP, 2 * H, "Jakarta", ""),
    (K.AT_HUB, 8 * H, "Hub Cakung, Jakarta", ""),
    (K.DEPARTED_HUB, 12 * H, "Hub Cakung, Jakarta", ""),
    (K.AT_HUB, 30 * H, "Hub Surabaya", ""),
)
_ROAD_LONG = (
    *_ROAD,
    (K.DEPARTED_HUB, 33 * H, "Hub Surabaya", ""),
    (K.AT_HUB, 37 * H, "Surabaya", ""),
)
_OUT = (K.OUT_FOR_DELIVERY, 40 * H, "Surabaya", "")
DELIVERED_SHORT = (*_ROAD, _OUT, (K.DELIVERED, 46 * H, "Surabaya", ""))  # 6
DELIVERED = (*_ROAD_LONG, _OUT, (K.DELIVERED, 46 * H, "Surabaya", ""))  # 8
DELIVERED_RETRY = (  # 10: a failed attempt, delivered the next day
    *_ROAD_LONG,
    _OUT,
    (K.DELIVERY_FAILED, 44 * H, "Surabaya", FAILED_NOTE),
    (K.OUT_FOR_DELIVERY, 64 * H, "Surabaya", ""),
    (K.DELIVERED, 68 * H, "Surabaya", ""),
)
IN_TRANSIT = _ROAD_LONG  # 6
OUT_FOR_DELIVERY = (*_ROAD_LONG, _OUT)  # 7
FAILED = (*_ROAD_LONG, _OUT, (K.DELIVERY_FAILED, 44 * H, "Surabaya", FAILED_NOTE))  # 8
ON_HOLD = (*_ROAD_LONG, (K.ON_HOLD, 39 * H, "Surabaya", "Alamat kurang lengkap"))  # 7
# Order `oid` follows MIX[oid % 20]: 75 % delivered, 25 % still moving.
MIX = (
    (DELIVERED,) * 8
    + (DELIVERED_SHORT,) * 4
    + (DELIVERED_RETRY,) * 3
    + (IN_TRANSIT,) * 2
    + (OUT_FOR_DELIVERY, FAILED, ON_HOLD)
)
assert all(6 <= len(trail) <= 10 for trail in MIX)


def _free_resis(conn, rng: random.Random, n: int, chunk: int = 5000, check: bool = True):
    """`n` distinct resi that no order has yet, scattered like real ones (not a counter).

    Candidates come a chunk at a time; the few an earlier load already used are skipped
    with one lookup per chunk (`check`; not needed when there was no order), so nothing
    grows with `n`.
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
        taken = (
            set(conn.scalars(select(Order.resi).where(Order.resi.in_(candidates))))
            if check
            else set()
        )
        for resi in candidates:
            if resi not in taken and given < n:
                given += 1
                yield resi


CUSTOMER_COLUMNS = (
    "id",
    "email",
    "password",
    "active",
    "fs_uniquifier",
    "name",
    "phone",
    "phone_key",
    "locale",
    "marketing_consent",
    "created_at",
    "update_datetime",
)
ORDER_COLUMNS = (
    "id",
    "number",
    "resi",
    "customer_id",
    "product_id",
    "origin",
    "destination",
    "weight_kg",
    "receiver_name",
    "receiver_phone",
    "notes",
    "status",
    "price",
    "last_event",
    "last_event_at",
    "created_at",
    "updated_at",
)
TICKET_COLUMNS = (
    "id",
    "number",
    "kind",
    "status",
    "priority",
    "subject",
    "customer_id",
    "order_id",
    "department_id",
    "assignee_id",
    "created_at",
    "updated_at",
    "last_message_at",
    "last_from_staff",
    "first_response_due",
    "resolution_due",
    "next_due_at",
    "first_response_at",
    "finished_at",
    "reopen_count",
    "rating",
    "rated_at",
    "version_id",
    "situation",
    "situation_due_at",
)


@dataclass
class _Plan:
    """What one run generates: sizes, first ids, the shared constants."""

    rng: random.Random
    now: object
    n_customers: int
    n_orders: int
    n_tickets: int
    n_messages: int
    first_customer: int
    first_order: int
    first_ticket: int
    staff_id: int
    services: list
    departments: list
    stuck_days: int
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    salt: int = 0
    weights: list = field(default_factory=list)
    eta: dict = field(default_factory=dict)

    def __post_init__(self):
        self.salt = self.rng.getrandbits(63)
        self.weights = [
            (p, int(p.min_weight_kg * 10) or 10, int(min(p.max_weight_kg, 50) * 10))
            for p in self.services
        ]
        self.eta = {p.id: shipments.eta_days_of(p.eta_days) for p in self.services}

    def owner(self, order_index: int) -> int:
        """The customer of the i-th order: scattered, computed (no table held in memory)."""
        return self.first_customer + (order_index * 2_654_435_761) % self.n_customers


def _customer_rows(plan: _Plan, start: int, stop: int, password: str):
    rng, now = plan.rng, plan.now
    for uid in range(plan.first_customer + start, plan.first_customer + stop):
        yield (
            uid,
            f"c{uid}-{plan.tag}@bulk.carebox.example",
            password,
            1,
            os.urandom(16).hex(),  # Flask-Security's per-user token: unguessable
            f"Pelanggan {uid}",
            f"0812{uid:08d}",  # a mobile number, and its E.164 key (domain/phones.py)
            f"+62812{uid:08d}",
            "id",
            int(rng.random() < 0.6),
            now - timedelta(days=rng.randint(30, 730)),
            now,
        )


MASK = (1 << 64) - 1


def _mix(n: int) -> int:
    """splitmix64 of n: the well-spread bits an order's attributes are read from."""
    z = (n * 0x9E3779B97F4A7C15) & MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


@dataclass(slots=True)
class _OrderFacts:
    product: Product
    weight: Decimal
    created: object
    last_kind: TrackingEventKind
    last_at: object


def _order_facts(plan: _Plan, oid: int) -> _OrderFacts:
    """Order `oid`'s service, weight, time and latest event: a function of its id (and
    the run's seed), so a ticket about it can derive its situation without holding every
    order in memory. Its timeline is MIX[oid % len(MIX)] (written by `_tracking`)."""
    r = _mix(oid ^ plan.salt)
    product, low, high = plan.weights[r % len(plan.weights)]
    weight = Decimal(low + (r >> 8) % (high - low + 1)) / 10
    last_kind, last_seconds, _where, _note = MIX[oid % len(MIX)][-1]
    if last_kind is K.DELIVERED:
        created = plan.now - timedelta(days=4 + (r >> 20) % 362, seconds=(r >> 30) % 86_400)
    else:  # still moving: its latest event 0-6 days ago (the older ones are stuck)
        created = plan.now - timedelta(seconds=last_seconds + (r >> 20) % (6 * 86_400))
    return _OrderFacts(
        product, weight, created, last_kind, created + timedelta(seconds=last_seconds)
    )


def _situation(plan: _Plan, oid: int, kind: TicketKind):
    """The shipment situation of an open ticket of `kind` about order `oid`, and when time
    alone may change it: `domain.situations.derive` on the parcel the loader wrote."""
    facts = _order_facts(plan, oid)
    promised = None
    eta = plan.eta[facts.product.id]
    if eta is not None:  # the promise starts at the pick-up scan (the first event)
        picked = facts.created + timedelta(seconds=MIX[oid % len(MIX)][0][1])
        promised = shipments.promised_date(picked, eta)
    parcel = situations.Parcel(
        shipments.EVENT_STATUS[facts.last_kind], facts.last_kind, facts.last_at, promised
    )
    return situations.derive(kind, False, parcel, plan.now, plan.stuck_days)


def _order_rows(plan: _Plan, start: int, stop: int, resis):
    for i in range(start, stop):
        oid = plan.first_order + i
        f = _order_facts(plan, oid)
        yield (
            oid,
            f"ORD-{f.created.year}-{oid:06d}",
            next(resis),
            plan.owner(i),
            f.product.id,
            "Jakarta",
            "Surabaya",
            f.weight,
            "Penerima",
            "",
            "",
            shipments.EVENT_STATUS[f.last_kind].value,
            f.product.price_for(f.weight),
            f.last_kind.value,
            f.last_at,
            f.created,
            f.last_at,
        )


def _thread_end(plan: _Plan, created, first_at):
    """When a ticket's last message was written (the messages follow `_messages`)."""
    if first_at is not None and plan.n_messages >= 2:
        return first_at
    return created + timedelta(seconds=10 * (plan.n_messages - 1))


def _ticket_rows(plan: _Plan, start: int, stop: int):
    rng, now = plan.rng, plan.now
    kinds = list(TicketKind)
    priorities = [p.value for p in Priority]
    for i in range(start, stop):
        tid = plan.first_ticket + i
        created = now - timedelta(days=rng.randint(0, 365), minutes=rng.randint(0, 1440))
        status = rng.choice(STATUS_MIX)
        order_index = rng.randrange(plan.n_orders) if rng.random() < 0.5 else None
        if order_index is None:
            order_id, cust = None, plan.first_customer + rng.randrange(plan.n_customers)
        else:
            order_id, cust = plan.first_order + order_index, plan.owner(order_index)
        dept = None if status is TicketStatus.PROGRESS else rng.choice(plan.departments)
        first_due = created + timedelta(hours=8)
        resolution_due = created + timedelta(hours=72)
        answered = status in (TicketStatus.RESPONDED, TicketStatus.FINISHED)
        first_at = created + timedelta(hours=rng.randint(1, 12)) if answered else None
        finished_at = (
            created + timedelta(hours=rng.randint(12, 120))
            if status is TicketStatus.FINISHED
            else None
        )
        last = finished_at or first_at or created
        due = sla.next_due(
            SimpleNamespace(
                status=status,
                first_response_at=first_at,
                first_response_due=first_due,
                resolution_due=resolution_due,
            )
        )
        rated = finished_at is not None and rng.random() < 0.5
        kind = rng.choice(kinds)
        situation = due_situation = None
        if order_id is not None and status in OPEN_STATUSES:
            situation, due_situation = _situation(plan, order_id, kind)
        yield (
            tid,
            f"CX-{created.year}-{tid:06d}",
            kind.value,
            status.value,
            rng.choice(priorities),
            rng.choice(SUBJECTS),
            cust,
            order_id,
            dept,
            plan.staff_id if answered else None,
            created,
            last,
            max(last, _thread_end(plan, created, first_at)),
            int(first_at is not None),
            first_due,
            resolution_due,
            due,
            first_at,
            finished_at,
            0,
            rng.randint(1, 5) if rated else None,
            finished_at,
            1,
            situation.value if situation is not None else None,
            due_situation,
        )


# -- rows the database derives from a batch of parents -----------------------------------


def _roles(w: Writer, first: int, last: int, role_id: int) -> None:
    u = User.__table__.c
    w.insert_select(
        roles_users,
        {"user_id": u.id, "role_id": role_id},
        User.__table__,
        u.id.between(first, last),
    )


def _order_events(w: Writer, first: int, last: int) -> None:
    o = Order.__table__.c
    w.insert_select(
        OrderEvent.__table__,
        {
            "order_id": o.id,
            "actor_id": null(),
            "from_status": OrderStatus.PLACED.value,
            "to_status": o.status,
            "note": "",
            "created_at": o.last_event_at,
        },
        Order.__table__,
        o.id.between(first, last),
    )


def _tracking(w: Writer, first: int, last: int) -> int:
    """Each order's timeline from MIX, one statement per step (so ids follow time)."""
    o = Order.__table__.c
    which = o.id % len(MIX)
    written = 0
    for step in range(max(len(trail) for trail in MIX)):
        arms = {i: trail[step] for i, trail in enumerate(MIX) if len(trail) > step}

        def pick(part, arms=arms):
            return case({i: e[part] for i, e in arms.items()}, value=which)

        at = w.plus(o.created_at, pick(1))
        where = [o.id.between(first, last)]
        if len(arms) < len(MIX):
            where.append(which.in_(list(arms)))
        written += w.insert_select(
            TrackingEvent.__table__,
            {
                "order_id": o.id,
                "event": case({i: e[0].value for i, e in arms.items()}, value=which),
                "occurred_at": at,
                "utc_offset": WIB,
                "location": pick(2),
                "note": pick(3),
                "source": TrackingSource.SEED.value,
                "actor_id": null(),
                "recorded_at": at,
            },
            Order.__table__,
            *where,
        )
    return written


def _messages(w: Writer, plan: _Plan, first: int, last: int) -> int:
    """A ticket's thread: the customer's message, then notes and follow-ups 10 s apart,
    the staff reply (at first_response_at) last when answered. One statement per place
    in the thread, so ids follow the thread."""
    t = Ticket.__table__.c
    n = plan.n_messages
    replied = t.first_response_at.isnot(None)
    written = 0
    for j in range(n):
        if j == 0:
            author, staff, internal, body = t.customer_id, False, False, FIRST_BODY
        elif j % 2:
            author, staff, internal, body = plan.staff_id, True, True, NOTE_BODY
        else:
            author, staff, internal, body = t.customer_id, False, False, NUDGE_BODY
        at = w.plus(t.created_at, 10 * j) if j else t.created_at
        values = {
            "ticket_id": t.id,
            "author_id": author,
            "from_staff": staff,
            "internal": internal,
            "body": body,
            "created_at": at,
        }
        if j == n - 1 and n >= 2:  # the reply's place, when there is one

            def either(reply, other):
                other = other if hasattr(other, "self_group") else sa.literal(other)
                return case((replied, reply), else_=other)

            values = {
                "ticket_id": t.id,
                "author_id": either(plan.staff_id, author),
                "from_staff": either(True, staff),
                "internal": either(False, internal),
                "body": either(REPLY_BODY, body),
                "created_at": either(t.first_response_at, at),
            }
        written += w.insert_select(
            TicketMessage.__table__, values, Ticket.__table__, t.id.between(first, last)
        )
    return written


def _ticket_events(w: Writer, plan: _Plan, first: int, last: int) -> int:
    t = Ticket.__table__.c
    S, A = TicketStatus, EventAction
    steps = (
        (t.customer_id, A.FILED, None, S.PROGRESS, t.created_at, None),
        (None, A.ROUTED, S.PROGRESS, S.TEAM, t.created_at, t.department_id.isnot(None)),
        (plan.staff_id, A.REPLIED, S.TEAM, S.RESPONDED, t.first_response_at, None),
        (plan.staff_id, A.FINISHED, S.RESPONDED, S.FINISHED, t.finished_at, None),
    )
    written = 0
    for actor, action, before, after, at, cond in steps:
        where = [t.id.between(first, last)]
        where.append(cond if cond is not None else at.isnot(None))
        written += w.insert_select(
            TicketEvent.__table__,
            {
                "ticket_id": t.id,
                "actor_id": null() if actor is None else actor,
                "action": action.value,
                "from_status": null() if before is None else before.value,
                "to_status": after.value,
                "rule_id": null(),
                "note": "",
                "created_at": at,
            },
            Ticket.__table__,
            *where,
        )
    return written


def _staff_id(roles) -> int:
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
    return staff_id


def _connect(local_infile: bool):
    """The loader's own connection: on MySQL with local files offered by the client (the
    server decides; `Writer` falls back when it refuses, as it does to a client that does
    not offer them)."""
    if db.engine.dialect.name != "mysql":
        return db.engine.connect(), None
    engine = sa.create_engine(
        db.engine.url, connect_args={"local_infile": local_infile}, poolclass=sa.pool.NullPool
    )
    return engine.connect(), engine


def seed_bulk(
    n_tickets: int,
    *,
    n_customers: int | None = None,
    n_orders: int | None = None,
    n_messages: int = 3,
    batch: int = 50_000,
    progress: bool = False,
    seed: int = 42,
    local_infile: bool = True,
    defer_indexes: bool = True,
) -> BulkStats:
    """Insert `n_tickets` tickets with `n_customers` (default n/5) customers, `n_orders`
    (default n) orders with 6–10 tracking events each (8 on average), `n_messages`
    messages per ticket and ~2.6 ticket events per ticket. `local_infile=False`: the
    client does not offer local files, so the server refuses LOAD DATA LOCAL and the rows
    go in with multi-row INSERTs (what happens on a server with local_infile=OFF).
    `defer_indexes` (MySQL): build the indexes of tables empty at the start once at the
    end (`bulk_write.DeferredIndexes`)."""
    started = time.perf_counter()
    roles = ensure_roles()
    db.session.commit()
    services = db.session.scalars(
        select(Product).where(Product.kind == ProductKind.SERVICE, Product.active)
    ).all()
    if not services:
        raise click.ClickException("No services in the catalogue: run `carebox seed` first.")
    plan = _Plan(
        rng=random.Random(seed),
        now=utcnow().replace(microsecond=0),
        n_customers=n_customers or max(1, n_tickets // 5),
        n_orders=n_orders or n_tickets,
        n_tickets=n_tickets,
        n_messages=n_messages,
        first_customer=_next_id(User),
        first_order=_next_id(Order),
        first_ticket=_next_id(Ticket),
        staff_id=_staff_id(roles),
        services=services,
        departments=[d for (d,) in db.session.execute(text("SELECT id FROM department"))],
        stuck_days=situations.stuck_days(),
    )
    # Customers get ids above the staff account just made (if one was).
    plan.first_customer = _next_id(User)
    stats = BulkStats(
        counts=dict.fromkeys(
            ("customers", "orders", "tracking events", "tickets", "messages", "events"), 0
        )
    )
    # Read now: after the commit below, `roles[...].id` would be reloaded through db.session
    # while `conn` holds SQLite's write lock (a large batch spills it to EXCLUSIVE), and
    # the load stopped with "database is locked".
    customer_role_id = roles[perm.CUSTOMER].id
    db.session.commit()
    password = hash_password(uuid.uuid4().hex)  # one unguessable hash for every bulk account
    conn, engine = _connect(local_infile)
    mysql = conn.dialect.name == "mysql"
    if mysql:  # one connection: the SET SESSION must stay on it
        conn.execute(text("SET SESSION foreign_key_checks = 0, unique_checks = 0"))
    w = Writer(conn)
    stats.loader = "LOAD DATA LOCAL INFILE" if w.local else "executemany"
    conn.commit()
    # No order yet: no resi to avoid (the serials of one run are distinct by construction).
    orders_before = conn.execute(select(Order.id).limit(1)).first() is not None
    deferred = DeferredIndexes(conn) if mysql and defer_indexes else None
    if deferred is not None:
        restored = deferred.restore()
        if restored:
            click.echo(f"seed-bulk: rebuilt the indexes a stopped load left out: {restored}")
        if deferred.defer(DEFERRABLE):
            stats.loader += ", indexes built after"
    total = plan.n_customers + plan.n_orders + plan.n_tickets
    ticket_batch = max(1, batch * 3 // max(3, n_messages))  # about `batch` messages
    bar = click.progressbar(length=total, label="seed-bulk", hidden=not progress)
    try:
        with bar:
            for start in range(0, plan.n_customers, batch):
                stop = min(start + batch, plan.n_customers)
                n = w.load(
                    User.__table__, CUSTOMER_COLUMNS, _customer_rows(plan, start, stop, password)
                )
                first = plan.first_customer + start
                _roles(w, first, first + n - 1, customer_role_id)
                conn.commit()
                stats.counts["customers"] += n
                bar.update(n)

            resis = _free_resis(conn, plan.rng, plan.n_orders, check=orders_before)
            for start in range(0, plan.n_orders, batch):
                stop = min(start + batch, plan.n_orders)
                n = w.load(Order.__table__, ORDER_COLUMNS, _order_rows(plan, start, stop, resis))
                first = plan.first_order + start
                _order_events(w, first, first + n - 1)
                stats.counts["tracking events"] += _tracking(w, first, first + n - 1)
                conn.commit()
                stats.counts["orders"] += n
                bar.update(n)

            for start in range(0, n_tickets, ticket_batch):
                stop = min(start + ticket_batch, n_tickets)
                n = w.load(Ticket.__table__, TICKET_COLUMNS, _ticket_rows(plan, start, stop))
                first = plan.first_ticket + start
                stats.counts["messages"] += _messages(w, plan, first, first + n - 1)
                stats.counts["events"] += _ticket_events(w, plan, first, first + n - 1)
                conn.commit()
                stats.counts["tickets"] += n
                bar.update(n)
        if deferred is not None:
            deferred.restore()  # the sorted index builds (also if the load failed: finally)
            deferred = None
        if mysql:
            conn.execute(text("SET SESSION foreign_key_checks = 1, unique_checks = 1"))
            # Fresh statistics, or the optimizer plans the list queries on an empty table's.
            conn.execute(
                text(
                    "ANALYZE TABLE user, customer_order, tracking_event, ticket,"
                    " ticket_message, ticket_event"
                )
            )
        conn.commit()
    finally:
        if deferred is not None:  # the load failed: give the tables their indexes back
            conn.rollback()
            try:
                deferred.restore()
            except Exception as exc:  # noqa: BLE001 (the load's own error is the one raised)
                click.echo(f"seed-bulk: indexes still pending ({exc}); the next run builds them")
        conn.close()
        if engine is not None:
            engine.dispose()
    db.session.commit()  # end the session's snapshot, so it sees the rows just written
    stats.seconds = time.perf_counter() - started
    return stats

"""Recording checked events (`record_events` = `check_events` then `write_events`):
the lookups, the idempotent insert, the orders' latest event, the tickets' situations
and the customers' notices (`warrants_customer_notification`); a staff member's own
event (`add_event`); the events carebox itself makes (`record_status_event`)."""

from collections.abc import Sequence
from datetime import datetime, timedelta

from flask_babel import gettext as _
from sqlalchemy import and_, case, literal, or_, select, update

from ...extensions import db
from ...models import Order, OrderStatus, TrackingEvent, TrackingEventKind, TrackingSource, User
from ...models.base import utcnow
from .. import DomainError, PermissionDenied
from .. import permissions as perm
from .events import (
    DEFAULT_OFFSET,
    EVENT_STATUS,
    INSERTED,
    RANK,
    REFUSED,
    UNCHANGED,
    Checked,
    EventIn,
    EventResult,
    K,
    _Clean,
    check_events,
)

ONE_SECOND = timedelta(seconds=1)

LOOKUP_CHUNK = 5000  # resis per lookup: one query for a whole import batch
UPDATE_CHUNK = 200

# What the parcel's customer is told about, by email and on WhatsApp (each channel asks
# the customer's own consent): the last leg, when someone has to be at home.
CUSTOMER_NOTICE_KINDS = frozenset({K.OUT_FOR_DELIVERY, K.DELIVERED, K.DELIVERY_FAILED})
# An event reported later than this (a backfill, an old file imported again) is history,
# not news: nobody is emailed that their parcel was out for delivery last week.
NOTICE_MAX_AGE = timedelta(days=2)


def warrants_customer_notification(
    kind: TrackingEventKind | str,
    occurred_at: datetime | None = None,
    *,
    now: datetime | None = None,
) -> bool:
    """Whether a newly recorded event is one to tell the parcel's customer about: out for
    delivery, delivered or a failed delivery, and (given its UTC `occurred_at`) no older
    than NOTICE_MAX_AGE. The one rule for every channel: the shipment email and the
    WhatsApp template notification both ask it; consent is then each channel's own.
    An unknown kind warrants nothing."""
    try:
        kind = TrackingEventKind(kind)
    except ValueError:
        return False
    if kind not in CUSTOMER_NOTICE_KINDS:
        return False
    return occurred_at is None or occurred_at >= (now or utcnow()) - NOTICE_MAX_AGE


def _newer(at: datetime, kind: TrackingEventKind, than_at, than_kind) -> bool:
    if than_at is None:
        return True
    if at != than_at:
        return at > than_at
    return than_kind is None or RANK[kind] >= RANK[TrackingEventKind(than_kind)]


def _rank_sql():
    return case(
        {kind.value: rank for kind, rank in RANK.items()}, value=Order.__table__.c.last_event
    )


def record_events(
    items: Sequence[EventIn],
    *,
    source: TrackingSource,
    actor: User | None = None,
    now: datetime | None = None,
) -> list[EventResult]:
    """Append the events of `items` (one batch; the caller commits) and return one result
    per item, in order. Guarantees:

    - each item is checked on its own (resi check digit, a known resi whose order is not
      cancelled, a known event, an ISO 8601 time not in the future, lengths); a refused
      item carries its reason and never stops the others;
    - a cancelled shipment takes no further events, also when the cancellation commits
      while this batch runs: the batch and the cancellation take the order's row one
      after the other (`_claim`), so either the event lands before the cancellation
      (which then comes after it) or it is refused ("This order was cancelled.");
    - an event already recorded (same resi, event and occurred_at — also twice in one
      batch, or inserted by a concurrent import) is `unchanged`, never a second row;
    - the order's status, `last_event` and `last_event_at` follow its latest event by
      occurred_at, even when events arrive out of order or two writers race (the
      update only moves forward).

    It is `check_events` (no database) then `write_events`; the CSV import runs the two
    in different threads, so a file's next batch is checked while this one is written.
    """
    return write_events(check_events(items, now=now), source=source, actor=actor)


def write_events(
    checked: Checked, *, source: TrackingSource, actor: User | None = None
) -> list[EventResult]:
    """The rest of `record_events` for a batch `check_events` passed: the lookups, the
    insert, the orders' latest event, the tickets' situations and the notices."""
    now = checked.now
    session = db.session
    results = list(checked.results)  # a retried batch starts again from the checks
    clean = checked.clean

    orders = {}
    wanted = sorted({c.resi for c in clean})
    cols = Order.__table__.c
    for start in range(0, len(wanted), LOOKUP_CHUNK):
        chunk = wanted[start : start + LOOKUP_CHUNK]
        for row in session.execute(
            select(cols.id, cols.resi, cols.status, cols.last_event, cols.last_event_at).where(
                cols.resi.in_(chunk)
            )
        ):
            orders[row.resi] = row

    keys: dict[tuple[int, datetime, str], _Clean] = {}
    cancelled = OrderStatus.CANCELLED.value
    for c in clean:
        order = orders.get(c.resi)
        if order is None:
            results[c.index] = EventResult(REFUSED, c.resi, _("No parcel has this resi."))
            continue
        if order.status == cancelled:
            results[c.index] = EventResult(REFUSED, c.resi, _("This order was cancelled."))
            continue
        key = (order.id, c.at, c.event)
        if key in keys:
            results[c.index] = EventResult(UNCHANGED, c.resi)
            continue
        keys[key] = c
    for key in _known(keys):
        c = keys.pop(key)
        results[c.index] = EventResult(UNCHANGED, c.resi)
    if not keys:
        return results  # type: ignore[return-value]
    cancelled_meanwhile = _claim(keys, orders, now)
    for key in [key for key in keys if key[0] in cancelled_meanwhile]:
        c = keys.pop(key)
        results[c.index] = EventResult(REFUSED, c.resi, _("This order was cancelled."))
    if not keys:
        return results  # type: ignore[return-value]
    # One order of keys for every writer, so two concurrent imports cannot deadlock.
    rows = [
        (key[0], key[2], key[1], c.offset, c.location, c.note)  # as _ROW
        for key, c in sorted(keys.items(), key=_first)
    ]
    rows = _insert_new(rows, keys, results, source, actor, now)
    if rows:
        moved = _follow_latest(rows, orders, now)
        from .. import situations  # it builds on this package

        situations.parcels_changed({r[0] for r in rows}, now)
        _tell_customers(moved, now)
    return results  # type: ignore[return-value]


def _first(pair):
    return pair[0]


def _claim(keys, orders, now: datetime) -> set[int]:
    """Claim the orders that are getting new events and read them again as committed;
    returns the ids of those cancelled since the batch's first read. `orders` (by resi)
    gets the fresh rows, so the latest event is decided on them too.

    A cancelled shipment takes no further scans, and a cancellation (`orders.cancel`)
    decides on the order's row under its lock: so the claim writes each row (its
    `updated_at`) before the read, and a cancellation and a batch on one order go one
    after the other, whichever comes first. On one server the UPDATE's row locks (and
    the read's FOR UPDATE, which reads past the batch's snapshot) make the cancellation
    wait for the batch's commit or the batch for the cancellation's; SQLite ignores FOR
    UPDATE, but the UPDATE opens its one write transaction before the read; on two
    Galera nodes both transactions write the row, so certification lets one through and
    the other fails with 1213, which the import and the API run again. (A row last
    written in the same second as the claim is not changed by it, so certification
    cannot see that one claim.) Orders already cancelled are not written."""
    c = Order.__table__.c
    ids = sorted({key[0] for key in keys})
    cancelled = OrderStatus.CANCELLED.value
    found: set[int] = set()
    session = db.session
    for first in range(0, len(ids), LOOKUP_CHUNK):
        chunk = ids[first : first + LOOKUP_CHUNK]
        session.execute(
            update(Order.__table__)
            .where(c.id.in_(chunk), c.status != cancelled)
            .values(updated_at=now)
            .execution_options(synchronize_session=False)
        )
        for row in session.execute(
            select(c.id, c.resi, c.status, c.last_event, c.last_event_at)
            .where(c.id.in_(chunk))
            .with_for_update()
        ):
            orders[row.resi] = row
            if row.status == cancelled:
                found.add(row.id)
    return found


# The columns of an inserted row, in this order; the other three are the batch's own.
_ROW = ("order_id", "event", "occurred_at", "utc_offset", "location", "note")
INSERT_CHUNK = 5000  # rows per INSERT (x 6 parameters: under SQLite's 32,766)


def _tell_customers(moved: list[dict], now: datetime) -> None:
    """The events that became their parcel's latest and warrant a notification go to the
    customer's channels (each asks the customer's consent itself), in this transaction."""
    from ..shipment_notices import Notice, email

    notable = [u for u in moved if warrants_customer_notification(u["kind"], u["at"], now=now)]
    notices = [
        Notice(u["oid"], TrackingEventKind(u["kind"]), u["at"], u["offset"], u["location"])
        for u in _made_latest(notable)
    ]
    if notices:
        email(notices, now=now)
        from .. import notifications  # it reads this package

        notifications.parcel_events(notices, now)


def _made_latest(moves: list[dict]) -> list[dict]:
    """The moves the UPDATE of `_follow_latest` really made: `moves` come from the batch's
    earlier read of the orders, and a concurrent writer may have committed a newer event
    since, which the UPDATE then rightly did not replace. Read back after the UPDATE, an
    order whose latest is this batch's event was moved by this transaction, which holds
    its row lock until it commits (no other writer has this event: it is unique, and this
    batch inserted it); any other order was not (at READ COMMITTED the read sees the newer
    event, at REPEATABLE READ the snapshot's older one). A plain read: it takes no locks
    the UPDATE did not take. One query per LOOKUP_CHUNK orders."""
    c = Order.__table__.c
    latest: set[tuple[int, str, datetime]] = set()
    for first in range(0, len(moves), LOOKUP_CHUNK):
        ids = [u["oid"] for u in moves[first : first + LOOKUP_CHUNK]]
        stmt = select(c.id, c.last_event, c.last_event_at).where(c.id.in_(ids))
        latest.update((r[0], str(r[1]), r[2]) for r in db.session.execute(stmt))
    return [u for u in moves if (u["oid"], u["kind"], u["at"]) in latest]


def _known(keys) -> set[tuple[int, datetime, str]]:
    """Which of these (order id, occurred_at, event) keys are recorded already: each
    order's events between its first and last moment in the batch (a range of the
    unique key), one query per LOOKUP_CHUNK orders. Only a shortcut — a file imported
    again costs a read instead of thousands of refused inserts (InnoDB writes, then
    undoes, a row whose unique key is taken); the insert's RETURNING stays the truth."""
    span: dict[int, tuple[datetime, datetime]] = {}
    for oid, at, _event in keys:
        lo, hi = span.get(oid, (at, at))
        span[oid] = (min(lo, at), max(hi, at))
    conn = db.session.connection()
    dialect = conn.dialect
    ev = TrackingEvent.__table__.c
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    to_db = ev.occurred_at.type.dialect_impl(dialect).bind_processor(dialect) or _same
    from_db = ev.occurred_at.type.dialect_impl(dialect).result_processor(dialect, None) or _same
    term = f"(order_id = {mark} AND occurred_at BETWEEN {mark} AND {mark})"
    spans = sorted(span.items())
    found = set()
    for first in range(0, len(spans), LOOKUP_CHUNK):
        chunk = spans[first : first + LOOKUP_CHUNK]
        params = tuple(v for oid, (lo, hi) in chunk for v in (oid, to_db(lo), to_db(hi)))
        sql = "SELECT order_id, occurred_at, event FROM tracking_event WHERE " + " OR ".join(
            [term] * len(chunk)
        )
        for oid, at, event in conn.exec_driver_sql(sql, params):
            key = (oid, from_db(at), str(event))
            if key in keys:
                found.add(key)
    return found


def _same(value):
    return value


def _insert_new(rows, keys, results, source, actor, now) -> list[tuple]:
    """Multi-row INSERT that skips rows already recorded (by an earlier batch or file, or
    a concurrent writer meanwhile); marks each event inserted or unchanged and returns
    the rows this call inserted.

    The database says which rows it inserted: INSERT IGNORE … RETURNING id (MariaDB
    10.5+, SQLite 3.35+) returns the ids of the rows this statement wrote and of no
    other. All of them or none: that is the answer. Some: those rows are read back by
    primary key. (`_known` before it cannot see what a concurrent batch commits in
    between; a re-read by recorded_at cannot tell two batches of the same second apart.)

    The statement is the driver's own SQL (exec_driver_sql: the DBAPI's placeholders,
    the columns' bind processors, what every row shares written once as literals):
    compiling 30,000 named parameters through SQLAlchemy for each batch cost more than
    the database's work. A rowcount with a savepoint to redo only a partial overlap was
    tried: a deadlock inside the savepoint then surfaced as "SAVEPOINT does not exist",
    which the import's retry does not recognise."""
    conn = db.session.connection()
    dialect = conn.dialect
    table = TrackingEvent.__table__
    ev = table.c
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    shared = [
        _literal_sql(dialect, TrackingSource(source).value, ev.source.type),
        _literal_sql(dialect, actor.id if actor is not None else None, ev.actor_id.type),
        _literal_sql(dialect, now, ev.recorded_at.type),
    ]
    if mark == "%s":
        shared = [text.replace("%", "%%") for text in shared]
    values = "(" + ", ".join([mark] * len(_ROW) + shared) + ")"
    ignore = "OR IGNORE" if dialect.name == "sqlite" else "IGNORE"
    # (Both databases the project runs on have it; another would fail loudly here.)
    head = (
        f"INSERT {ignore} INTO {table.name} ({', '.join(_ROW)}, source, actor_id, "
        "recorded_at) VALUES "
    )
    process = [
        (i, processor)
        for i, name in enumerate(_ROW)
        if (processor := ev[name].type.dialect_impl(dialect).bind_processor(dialect))
    ]
    ids: list[int] = []
    for first in range(0, len(rows), INSERT_CHUNK):
        chunk = rows[first : first + INSERT_CHUNK]
        if dialect.driver == "pymysql":
            sql = head + _pymysql_values(conn, chunk, ", ".join(shared)) + " RETURNING id"
            ids += [r[0] for r in conn.exec_driver_sql(sql, ())]
            continue
        params = [value for row in chunk for value in row]
        for i, processor in process:
            params[i :: len(_ROW)] = [processor(v) for v in params[i :: len(_ROW)]]
        sql = head + ", ".join([values] * len(chunk)) + " RETURNING id"
        ids += [r[0] for r in conn.exec_driver_sql(sql, tuple(params))]
    if len(ids) == len(rows):
        ours = None  # all of them
    elif not ids:
        ours = set()
    else:
        ours = set()
        for first in range(0, len(ids), LOOKUP_CHUNK):
            ours.update(
                (r[0], r[1], str(r[2]))
                for r in conn.execute(
                    select(ev.order_id, ev.occurred_at, ev.event).where(
                        ev.id.in_(ids[first : first + LOOKUP_CHUNK])
                    )
                )
            )
    for key, c in keys.items():
        inserted = ours is None or key in ours
        results[c.index] = EventResult(INSERTED if inserted else UNCHANGED, c.resi)
    if ours is None:
        return rows
    return [r for r in rows if (r[0], r[2], r[1]) in ours]


_EVENT_SQL = {kind.value: f"'{kind.value}'" for kind in TrackingEventKind}


def _pymysql_values(conn, chunk, shared: str) -> str:
    """The VALUES rows of `chunk` (as _ROW) as literals: PyMySQL escapes each of a
    batch's 30,000 parameters in Python, 4.5 µs an event; this takes 0.9. The numbers,
    event names (TrackingEventKind values) and naive times are this package's own; each
    distinct text goes once through the driver's escaping. `%` is doubled: the driver
    still formats the statement with its (empty) parameters."""
    escape = conn.connection.dbapi_connection.escape
    texts: dict[str, str] = {}

    def text(value: str) -> str:
        found = texts.get(value)
        if found is None:
            found = texts[value] = escape(value).replace("%", "%%")
        return found

    return ", ".join(
        [
            f"({int(oid)}, {_EVENT_SQL[event]}, '{at.isoformat(' ')}', "
            f"{int(offset)}, {text(location)}, {text(note)}, {shared})"
            for oid, event, at, offset, location, note in chunk
        ]
    )


def _literal_sql(dialect, value, type_) -> str:
    """`value` as a SQL literal of `type_`, rendered by SQLAlchemy for `dialect`."""
    if value is None:
        return "NULL"
    return str(
        literal(value, type_).compile(dialect=dialect, compile_kwargs={"literal_binds": True})
    )


_RANK_OF = {kind.value: rank for kind, rank in RANK.items()}


def _follow_latest(rows: list[tuple], orders, now) -> list[dict]:
    """Move each touched order to its newest event, only ever forward; returns the moves
    (order id, event, time, offset, location of the event that became the latest)."""
    # The newest event of each order in the batch (of one moment, the later in life).
    best: dict[int, tuple] = {}
    for r in rows:  # (order_id, event, occurred_at, utc_offset, location, note): _ROW
        old = best.get(r[0])
        if old is None or r[2] > old[2] or (r[2] == old[2] and _RANK_OF[r[1]] >= _RANK_OF[old[1]]):
            best[r[0]] = r
    by_id = {o.id: o for o in orders.values()}
    updates = []
    for order_id, r in best.items():
        order = by_id[order_id]
        kind = TrackingEventKind(r[1])
        if _newer(r[2], kind, order.last_event_at, order.last_event):
            updates.append(
                {
                    "oid": order_id,
                    "at": r[2],
                    "kind": kind.value,
                    "rank": RANK[kind],
                    "status": EVENT_STATUS[kind].value,
                    "now": now,
                    "offset": r[3],
                    "location": r[4],
                }
            )
    if not updates:
        return updates
    updates.sort(key=lambda u: u["oid"])
    # One UPDATE per chunk of orders (CASE on the id), not one per order: the import's
    # round trips are what cost (docs/architecture.md §7).
    c = Order.__table__.c
    for first in range(0, len(updates), UPDATE_CHUNK):
        chunk = updates[first : first + UPDATE_CHUNK]

        def by_id(name, chunk=chunk):
            return case({u["oid"]: u[name] for u in chunk}, value=c.id)

        at = by_id("at")
        stmt = (
            update(Order.__table__)
            .where(
                c.id.in_([u["oid"] for u in chunk]),
                c.status != OrderStatus.CANCELLED.value,
                or_(
                    c.last_event_at.is_(None),
                    c.last_event_at < at,
                    and_(c.last_event_at == at, _rank_sql() <= by_id("rank")),
                ),
            )
            .values(
                status=by_id("status"),
                last_event=by_id("kind"),
                last_event_at=at,
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        db.session.execute(stmt)
    session = db.session
    for u in updates:  # ORM objects of these orders must not keep the old status
        obj = session.identity_map.get(session.identity_key(Order, u["oid"]))
        if obj is not None:
            session.expire(obj, ["status", "last_event", "last_event_at", "updated_at"])
    return updates


def add_event(
    order: Order,
    kind: TrackingEventKind | str,
    actor: User,
    *,
    occurred_at: datetime | str | None = None,
    location: str = "",
    note: str = "",
    now: datetime | None = None,
) -> EventResult:
    """A staff member (orders.update) adds one event by hand on the order page.
    Raises PermissionDenied, or DomainError with the reason it was refused."""
    if not perm.has(actor, perm.ORDERS_UPDATE):
        raise PermissionDenied(_("You are not allowed to change orders."))
    now = now or utcnow()
    if occurred_at is None:
        occurred_at = now
    result = record_events(
        [EventIn(order.resi, str(kind), occurred_at, location, note)],
        source=TrackingSource.STAFF,
        actor=actor,
        now=now,
    )[0]
    if result.outcome == REFUSED:
        raise DomainError(result.reason)
    if result.outcome == UNCHANGED:
        raise DomainError(_("This event is already in the parcel's timeline."))
    return result


def record_status_event(
    order: Order, kind: TrackingEventKind, *, source: TrackingSource, actor: User, now=None
) -> EventResult:
    """The event of a status change made in carebox (`orders.change_status`, `orders.cancel`,
    which check the transition on the order's locked row first), through `write_events`
    like any other: the status follows it, the tickets' situations and the customer's
    notices too. At `now` (shown in WIB), or just after the parcel's latest event when a
    scanner's drifting clock put that later: this event must become the latest."""
    at = (now or utcnow()).replace(microsecond=0)
    if order.last_event_at is not None and order.last_event_at >= at:
        at = order.last_event_at + ONE_SECOND
    clean = _Clean(0, order.resi, TrackingEventKind(kind).value, at, DEFAULT_OFFSET, "", "")
    return write_events(Checked([None], [clean], now or utcnow()), source=source, actor=actor)[0]

"""Loyalty figures and segments of customers, computed in the database.

For every customer (a user whose role may use the portal), `CustomerProfile`
holds:

- `recency_days`: whole days since their last order (NULL: never ordered);
- `frequency`: orders in the last `window_days` days;
- `monetary`: the sum of those orders' prices;
- `complaint_rate`: complaint tickets filed in the window per order in the
  window, capped at 1 (0 without orders);
- `avg_rating`: the average rating they gave to finished tickets (any time).

Cancelled orders count for nothing.

The segment is the first rule that matches, with the thresholds of
`DEFAULT_THRESHOLDS` (overridable one by one in `CAREBOX_LOYALTY`):

1. never ordered: `new` if registered less than `lost_after_days` ago, else `lost`;
2. last order `lost_after_days` or more ago: `lost`;
3. last order `at_risk_after_days` or more ago: `at_risk`;
4. at most `new_max_orders` orders in the window: `new`;
5. at least `loyal_min_orders` orders, `loyal_min_monetary` spent and a
   complaint rate of at most `loyal_max_complaint_rate`: `loyal`;
6. at least `potential_min_orders` orders or `potential_min_monetary` spent:
   `potential_loyal`;
7. otherwise: `active`.

`refresh_all` recomputes every customer with one set-based statement per
batch of customer ids (INSERT … SELECT with GROUP BY aggregates, upserting the
profiles); `refresh_customer` runs the same statement for one customer inside
the caller's transaction (`place_order` calls it).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import (
    DateTime,
    Integer,
    Numeric,
    Select,
    and_,
    case,
    cast,
    exists,
    func,
    literal,
    literal_column,
    or_,
    select,
)
from sqlalchemy.dialects.mysql import insert as mysql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from ..extensions import db
from ..models import CustomerProfile, Order, OrderStatus, Role, Ticket, TicketKind, User
from ..models.base import utcnow
from ..models.enums import LabelledEnum
from ..models.user import roles_users
from . import permissions as perm


class Segment(LabelledEnum):
    NEW = "new"
    ACTIVE = "active"
    POTENTIAL_LOYAL = "potential_loyal"
    LOYAL = "loyal"
    AT_RISK = "at_risk"
    LOST = "lost"

    @classmethod
    def _labels(cls):
        return {
            cls.NEW: _l("New"),
            cls.ACTIVE: _l("Active"),
            cls.POTENTIAL_LOYAL: _l("Potential loyal"),
            cls.LOYAL: _l("Loyal"),
            cls.AT_RISK: _l("At risk"),
            cls.LOST: _l("Lost"),
        }


DEFAULT_THRESHOLDS = {
    "window_days": 365,  # frequency, monetary and complaints count this many days back
    "lost_after_days": 180,  # no order for this long: lost
    "at_risk_after_days": 60,  # no order for this long: at risk
    "new_max_orders": 1,  # this few orders in the window (and recent): new
    "loyal_min_orders": 12,
    "loyal_min_monetary": 1_000_000,  # rupiah in the window
    "loyal_max_complaint_rate": 0.25,
    "potential_min_orders": 4,
    "potential_min_monetary": 500_000,
    "batch": 20_000,  # customer ids per statement in refresh_all
}

P = CustomerProfile.__table__
PROFILE_COLUMNS = (
    "user_id",
    "segment",
    "recency_days",
    "frequency",
    "monetary",
    "complaint_rate",
    "avg_rating",
    "refreshed_at",
)


def thresholds() -> dict:
    """DEFAULT_THRESHOLDS overlaid with the app's `CAREBOX_LOYALTY`."""
    return {**DEFAULT_THRESHOLDS, **(current_app.config.get("CAREBOX_LOYALTY") or {})}


def customer_role_ids(conn: Connection | Session) -> list[int]:
    """Ids of the roles that make a user a customer (those granting the portal)."""
    names = [r for r, ps in perm.ROLE_PERMISSIONS.items() if perm.PORTAL in ps]
    return list(conn.scalars(select(Role.id).where(Role.name.in_(names))))


def _days_between(dialect: str, earlier, now_param):
    """Whole days from `earlier` to `now`, truncated, the same on both databases."""
    if dialect in ("mysql", "mariadb"):
        return func.timestampdiff(literal_column("DAY"), earlier, now_param)
    return cast(func.julianday(now_param) - func.julianday(earlier), Integer)


def profile_select(
    dialect: str, role_ids: list[int], lo: int, hi: int, now: datetime, cfg: dict
) -> Select:
    """SELECT of the profile columns of customers with ids in [lo, hi] (see the module doc)."""
    now_param = literal(now, DateTime)
    since = now - timedelta(days=cfg["window_days"])
    lost_cut = now - timedelta(days=cfg["lost_after_days"])
    risk_cut = now - timedelta(days=cfg["at_risk_after_days"])
    o, t, u = Order.__table__, Ticket.__table__, User.__table__

    in_window = o.c.created_at >= since
    orders = (
        select(
            o.c.customer_id.label("cid"),
            func.max(o.c.created_at).label("last_at"),
            func.sum(case((in_window, 1), else_=0)).label("freq"),
            func.sum(case((in_window, o.c.price), else_=0)).label("money"),
        )
        .where(o.c.customer_id.between(lo, hi), o.c.status != OrderStatus.CANCELLED.value)
        .group_by(o.c.customer_id)
        .subquery("o")
    )
    complaint = and_(t.c.kind == TicketKind.COMPLAINT.value, t.c.created_at >= since)
    tickets = (
        select(
            t.c.customer_id.label("cid"),
            func.sum(case((complaint, 1), else_=0)).label("complaints"),
            func.avg(t.c.rating).label("rating"),
        )
        .where(t.c.customer_id.between(lo, hi))
        .group_by(t.c.customer_id)
        .subquery("t")
    )
    is_customer = exists().where(
        roles_users.c.user_id == u.c.id, roles_users.c.role_id.in_(role_ids)
    )
    freq = func.coalesce(orders.c.freq, 0)
    complaints = func.coalesce(tickets.c.complaints, 0)
    metrics = (
        select(
            u.c.id.label("user_id"),
            u.c.created_at.label("registered_at"),
            orders.c.last_at,
            freq.label("freq"),
            func.coalesce(orders.c.money, 0).label("money"),
            case(
                (freq == 0, 0),
                (complaints >= freq, 1),
                else_=func.round(complaints * literal(1.0) / freq, 4),
            ).label("rate"),
            func.round(tickets.c.rating, 2).label("rating"),
        )
        .select_from(u)
        .outerjoin(orders, orders.c.cid == u.c.id)
        .outerjoin(tickets, tickets.c.cid == u.c.id)
        .where(u.c.id.between(lo, hi), is_customer)
        .subquery("m")
    )
    m = metrics.c
    segment = case(
        (
            m.last_at.is_(None),
            case((m.registered_at <= lost_cut, Segment.LOST.value), else_=Segment.NEW.value),
        ),
        (m.last_at <= lost_cut, Segment.LOST.value),
        (m.last_at <= risk_cut, Segment.AT_RISK.value),
        (m.freq <= cfg["new_max_orders"], Segment.NEW.value),
        (
            and_(
                m.freq >= cfg["loyal_min_orders"],
                m.money >= cfg["loyal_min_monetary"],
                m.rate <= cfg["loyal_max_complaint_rate"],
            ),
            Segment.LOYAL.value,
        ),
        (
            or_(
                m.freq >= cfg["potential_min_orders"],
                m.money >= cfg["potential_min_monetary"],
            ),
            Segment.POTENTIAL_LOYAL.value,
        ),
        else_=Segment.ACTIVE.value,
    )
    return select(
        m.user_id,
        segment.label("segment"),
        _days_between(dialect, m.last_at, now_param).label("recency_days"),
        m.freq,
        m.money,
        cast(m.rate, Numeric(5, 4)),
        m.rating,
        now_param,
    ).where(m.user_id.between(lo, hi))  # SQLite needs a WHERE before ON CONFLICT


def upsert_statement(dialect: str, select_stmt: Select):
    """INSERT the selected profiles, or UPDATE those that exist (one statement)."""
    if dialect in ("mysql", "mariadb"):
        stmt = mysql_insert(P).from_select(PROFILE_COLUMNS, select_stmt)
        return stmt.on_duplicate_key_update({c: stmt.inserted[c] for c in PROFILE_COLUMNS[1:]})
    if dialect == "sqlite":
        stmt = sqlite_insert(P).from_select(PROFILE_COLUMNS, select_stmt)
        return stmt.on_conflict_do_update(
            index_elements=["user_id"], set_={c: stmt.excluded[c] for c in PROFILE_COLUMNS[1:]}
        )
    raise NotImplementedError(f"loyalty refresh does not support {dialect}")


@dataclass
class RefreshReport:
    customers: int
    seconds: float
    segments: dict[str, int]


def lock_customer(user_id: int) -> None:
    """Serialise order placement per customer (`place_order` calls this first).

    Locks the customer's user row (SELECT … FOR UPDATE) until the caller's
    transaction ends, so two orders placed at once by one customer run one
    after the other: each `refresh_customer` then counts the other's order,
    and their INSERT … SELECT never wait on each other's new order row.
    SQLite ignores FOR UPDATE; it runs one writer at a time anyway. On two Galera
    nodes the lock binds each node only, but both orders then write the customer's
    profile row, so certification fails the later commit (1213) and the portal
    places that order again (backoffice/transactions.py `retrying`).
    """
    db.session.execute(select(User.id).where(User.id == user_id).with_for_update())


def refresh_customer(user_id: int, now: datetime | None = None) -> None:
    """Recompute one customer's profile in the caller's transaction (no commit).

    Non-customers are left alone. Called by `orders.place_order`, which holds
    `lock_customer` first, so that concurrent orders are all counted.
    """
    now = now or utcnow()
    session = db.session
    dialect = session.get_bind().dialect.name
    select_stmt = profile_select(
        dialect, customer_role_ids(session), user_id, user_id, now, thresholds()
    )
    session.execute(upsert_statement(dialect, select_stmt))
    loaded = session.identity_map.get(session.identity_key(CustomerProfile, user_id))
    if loaded is not None:
        session.expire(loaded)


def refresh_all(now: datetime | None = None, batch: int | None = None) -> RefreshReport:
    """Recompute every customer's profile and segment, one id range per transaction.

    Runs on its own connection and commits each batch (a maintenance job, like
    the outbox worker): it never touches the caller's session. A customer
    whose order arrives meanwhile is kept current by `refresh_customer`.
    """
    cfg = thresholds()
    # Whole seconds: MySQL DATETIME keeps none, and the counts below match on it.
    now = (now or utcnow()).replace(microsecond=0)
    batch = int(batch or cfg["batch"])
    started = time.perf_counter()
    engine = db.engine
    dialect = engine.dialect.name
    with engine.connect() as conn:
        role_ids = customer_role_ids(conn)
        lo_id, hi_id = conn.execute(select(func.min(User.id), func.max(User.id))).one()
        conn.rollback()
    if dialect in ("mysql", "mariadb"):
        # READ COMMITTED: InnoDB reads the orders and tickets of an INSERT … SELECT
        # without locking them, so customers placing orders never wait on a batch.
        engine = engine.execution_options(isolation_level="READ COMMITTED")
    if lo_id is not None and role_ids:
        for lo in range(lo_id, hi_id + 1, batch):
            stmt = upsert_statement(
                dialect, profile_select(dialect, role_ids, lo, lo + batch - 1, now, cfg)
            )
            with engine.begin() as conn:
                conn.execute(stmt)
    with engine.connect() as conn:
        counted = select(P.c.segment, func.count()).where(P.c.refreshed_at == now)
        segments = dict(conn.execute(counted.group_by(P.c.segment)).all())
        conn.rollback()
    return RefreshReport(
        customers=sum(segments.values()),
        seconds=time.perf_counter() - started,
        segments={s.value: segments.get(s.value, 0) for s in Segment},
    )


def segment_counts() -> dict[str, int]:
    """Customers per segment, as last refreshed (every segment listed, zeros included)."""
    rows = db.session.execute(
        select(CustomerProfile.segment, func.count()).group_by(CustomerProfile.segment)
    ).all()
    found = dict(rows)
    return {s.value: found.get(s.value, 0) for s in Segment}


def customers_in_segment(segment: Segment | str) -> Select:
    """SELECT of the users in `segment` (for the customer list filter and exports)."""
    return (
        select(User)
        .join(CustomerProfile, CustomerProfile.user_id == User.id)
        .where(CustomerProfile.segment == Segment(segment).value)
    )

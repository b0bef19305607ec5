"""Loyalty refresh for N customers: `loyalty.refresh_all` against raw SQL doing the same work.

Creates a fresh database on the server named by --url, DATABASE_URL or
TEST_DATABASE_URL (default: the local MariaDB), fills it with N customers,
their orders (0–30 each, some cancelled, over two years) and tickets (about
one in three customers, complaints and ratings among them), then times:

- carebox: `refresh_all()` — one INSERT … SELECT … upsert per batch of ids;
- raw SQL, batched alike: the same work hand-written, one statement per
  batch of ids as refresh_all does (the overhead of building it with SQLAlchemy);
- raw SQL, one statement: the hand-written statement over every customer at once.

Both run with the same clock and thresholds; their results are compared row
by row before any figure is printed. The database is dropped afterwards
unless --keep.

    DATABASE_URL="mysql+pymysql://root@127.0.0.1:3306/test?charset=utf8mb4" \\
        .venv/bin/python bench/loyalty_refresh.py --customers 200000
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import statistics
import sys
import time
import uuid
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import fresh_database  # noqa: E402

from backoffice import create_app  # noqa: E402
from backoffice.domain import loyalty  # noqa: E402
from backoffice.extensions import db  # noqa: E402
from backoffice.models import Order, Product, ProductKind, Ticket, User  # noqa: E402
from backoffice.models.base import utcnow  # noqa: E402
from backoffice.models.user import roles_users  # noqa: E402

DEFAULT_URL = "mysql+pymysql://root@127.0.0.1:3306/test?charset=utf8mb4"
CHUNK = 10_000
KINDS = ("complaint", "complaint", "criticism", "suggestion", "question")

RAW_SQL = """
INSERT INTO customer_profile
    (user_id, segment, recency_days, frequency, monetary, complaint_rate, avg_rating, refreshed_at)
SELECT m.user_id,
       CASE WHEN m.last_at IS NULL THEN
                 CASE WHEN m.registered_at <= :lost_cut THEN 'lost' ELSE 'new' END
            WHEN m.last_at <= :lost_cut THEN 'lost'
            WHEN m.last_at <= :risk_cut THEN 'at_risk'
            WHEN m.freq <= :new_max THEN 'new'
            WHEN m.freq >= :loyal_orders AND m.money >= :loyal_money
                 AND m.rate <= :loyal_rate THEN 'loyal'
            WHEN m.freq >= :potential_orders OR m.money >= :potential_money
                 THEN 'potential_loyal'
            ELSE 'active' END,
       {days}, m.freq, m.money, m.rate, m.rating, :now
FROM (
    SELECT u.id AS user_id, u.created_at AS registered_at, o.last_at,
           COALESCE(o.freq, 0) AS freq, COALESCE(o.money, 0) AS money,
           CASE WHEN COALESCE(o.freq, 0) = 0 THEN 0
                WHEN COALESCE(t.complaints, 0) >= o.freq THEN 1
                ELSE ROUND(COALESCE(t.complaints, 0) * 1.0 / o.freq, 4) END AS rate,
           ROUND(t.rating, 2) AS rating
    FROM {user} u
    LEFT JOIN (SELECT customer_id, MAX(created_at) AS last_at,
                      SUM(CASE WHEN created_at >= :since THEN 1 ELSE 0 END) AS freq,
                      SUM(CASE WHEN created_at >= :since THEN price ELSE 0 END) AS money
               FROM customer_order WHERE status <> 'cancelled' {range_o}
               GROUP BY customer_id) o ON o.customer_id = u.id
    LEFT JOIN (SELECT customer_id,
                      SUM(CASE WHEN kind = 'complaint' AND created_at >= :since
                               THEN 1 ELSE 0 END) AS complaints,
                      AVG(rating) AS rating
               FROM ticket {range_t} GROUP BY customer_id) t ON t.customer_id = u.id
    WHERE EXISTS (SELECT 1 FROM roles_users ru
                  WHERE ru.user_id = u.id AND ru.role_id = :role) {range_u}
) m
WHERE 1 = 1
{upsert}
"""
UPDATED = ("segment", "recency_days", "frequency", "monetary", "complaint_rate", "avg_rating")


def raw_statement(dialect: str, batched: bool = False) -> sa.TextClause:
    """The whole refresh as one hand-written statement (or one per id range)."""
    ranges = {"range_o": "", "range_t": "", "range_u": ""}
    if batched:
        ranges = {
            "range_o": "AND customer_id BETWEEN :lo AND :hi",
            "range_t": "WHERE customer_id BETWEEN :lo AND :hi",
            "range_u": "AND u.id BETWEEN :lo AND :hi",
        }
    if dialect in ("mysql", "mariadb"):
        days = "TIMESTAMPDIFF(DAY, m.last_at, :now)"
        upsert = "ON DUPLICATE KEY UPDATE " + ", ".join(
            f"{c} = VALUES({c})" for c in (*UPDATED, "refreshed_at")
        )
        user = "`user`"
    else:
        days = "CAST(julianday(:now) - julianday(m.last_at) AS INTEGER)"
        upsert = "ON CONFLICT (user_id) DO UPDATE SET " + ", ".join(
            f"{c} = excluded.{c}" for c in (*UPDATED, "refreshed_at")
        )
        user = '"user"'
    return sa.text(RAW_SQL.format(days=days, upsert=upsert, user=user, **ranges))


def fill(n_customers: int, now, seed: int = 42) -> dict[str, int]:
    """N customers with orders and tickets, inserted in chunks with Core executemany."""
    from backoffice.seed import seed_base

    seed_base()
    db.session.commit()
    rng = random.Random(seed)
    role_id = loyalty.customer_role_ids(db.session)[0]
    services = [
        p.id
        for p in db.session.scalars(sa.select(Product).where(Product.kind == ProductKind.SERVICE))
    ]
    first_id = (db.session.scalar(sa.select(sa.func.max(User.id))) or 0) + 1
    counts = {"customers": 0, "orders": 0, "tickets": 0}
    order_no = ticket_no = 0
    engine = db.engine
    for start in range(0, n_customers, CHUNK):
        users, links, orders, tickets = [], [], [], []
        for uid in range(first_id + start, first_id + min(start + CHUNK, n_customers)):
            registered = now - timedelta(days=rng.randint(1, 900), seconds=rng.randint(0, 86399))
            users.append(
                {
                    "id": uid,
                    "email": f"bench{uid}@example.com",
                    "password": None,
                    "active": True,
                    "fs_uniquifier": uuid.uuid4().hex,
                    "name": f"Customer {uid}",
                    "locale": "id",
                    "marketing_consent": rng.random() < 0.6,
                    "created_at": registered,
                    "update_datetime": registered,
                }
            )
            links.append({"user_id": uid, "role_id": role_id})
            for _ in range(rng.choice((0, 0, 1, 1, 2, 3, 4, 5, 6, 8, 12, 20, 30))):
                order_no += 1
                created = now - timedelta(days=rng.randint(0, 730), seconds=rng.randint(0, 86399))
                orders.append(
                    {
                        "number": f"B-{order_no:09d}",
                        "customer_id": uid,
                        "product_id": rng.choice(services),
                        "origin": "Jakarta",
                        "destination": "Bandung",
                        "weight_kg": Decimal("2.00"),
                        "receiver_name": "",
                        "receiver_phone": "",
                        "notes": "",
                        "status": "cancelled" if rng.random() < 0.05 else "delivered",
                        "price": Decimal(rng.randint(10, 400) * 1000),
                        "created_at": created,
                        "updated_at": created,
                    }
                )
            if rng.random() < 0.33:
                ticket_no += 1
                created = now - timedelta(days=rng.randint(0, 730))
                rated = rng.random() < 0.5
                tickets.append(
                    {
                        "number": f"BT-{ticket_no:09d}",
                        "kind": rng.choice(KINDS),
                        "status": "finished" if rated else "progress",
                        "priority": "normal",
                        "subject": "Bench",
                        "customer_id": uid,
                        "created_at": created,
                        "updated_at": created,
                        "last_message_at": created,
                        "first_response_due": created + timedelta(hours=8),
                        "resolution_due": created + timedelta(hours=72),
                        "finished_at": created + timedelta(days=1) if rated else None,
                        "rating": rng.randint(1, 5) if rated else None,
                        "reopen_count": 0,
                        "version_id": 1,
                    }
                )
        with engine.begin() as conn:
            conn.execute(User.__table__.insert(), users)
            conn.execute(roles_users.insert(), links)
            if orders:
                conn.execute(Order.__table__.insert(), orders)
            if tickets:
                conn.execute(Ticket.__table__.insert(), tickets)
        counts["customers"] += len(users)
        counts["orders"] += len(orders)
        counts["tickets"] += len(tickets)
        print(f"  filled {counts['customers']:,} customers", end="\r", flush=True)
    print()
    if engine.dialect.name in ("mysql", "mariadb"):
        with engine.begin() as conn:
            for table in ("user", "roles_users", "customer_order", "ticket"):
                conn.execute(sa.text(f"ANALYZE TABLE `{table}`"))
    return counts


def snapshot() -> str:
    """A digest of every profile, to check both ways computed the same thing."""
    p = loyalty.P
    digest = hashlib.sha256()
    with db.engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                p.c.user_id,
                p.c.segment,
                p.c.recency_days,
                p.c.frequency,
                p.c.monetary,
                p.c.complaint_rate,
                p.c.avg_rating,
            ).order_by(p.c.user_id)
        )
        for row in rows:
            digest.update(repr(tuple(row)).encode())
    return digest.hexdigest()


def raw_params(now) -> dict:
    cfg = loyalty.thresholds()
    with db.engine.connect() as conn:
        role = loyalty.customer_role_ids(conn)[0]
    return {
        "now": now,
        "since": now - timedelta(days=cfg["window_days"]),
        "lost_cut": now - timedelta(days=cfg["lost_after_days"]),
        "risk_cut": now - timedelta(days=cfg["at_risk_after_days"]),
        "new_max": cfg["new_max_orders"],
        "loyal_orders": cfg["loyal_min_orders"],
        "loyal_money": cfg["loyal_min_monetary"],
        "loyal_rate": cfg["loyal_max_complaint_rate"],
        "potential_orders": cfg["potential_min_orders"],
        "potential_money": cfg["potential_min_monetary"],
        "role": role,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3, help="timed runs of each way")
    parser.add_argument("--url", help="server URL (default: DATABASE_URL, TEST_DATABASE_URL)")
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    args = parser.parse_args()
    url = args.url or os.environ.get("DATABASE_URL") or os.environ.get("TEST_DATABASE_URL")
    url, drop = fresh_database(url or DEFAULT_URL)
    print(f"database: {sa.engine.make_url(url).render_as_string(hide_password=True)}")
    app = create_app({"ENV_NAME": "development", "SQLALCHEMY_DATABASE_URI": url})
    try:
        with app.app_context():
            db.create_all()
            now = utcnow().replace(microsecond=0)
            started = time.perf_counter()
            counts = fill(args.customers, now)
            print(
                f"filled {counts['customers']:,} customers, {counts['orders']:,} orders, "
                f"{counts['tickets']:,} tickets in {time.perf_counter() - started:.1f} s"
            )
            dialect = db.engine.dialect.name
            params = raw_params(now)
            batch = loyalty.thresholds()["batch"]
            with db.engine.connect() as conn:
                lo_id, hi_id = conn.execute(
                    sa.select(sa.func.min(User.id), sa.func.max(User.id))
                ).one()

            def ours():
                return loyalty.refresh_all(now=now)

            def raw_one():
                with db.engine.begin() as conn:
                    conn.execute(raw_statement(dialect), params)

            def raw_batched():
                statement = raw_statement(dialect, batched=True)
                for lo in range(lo_id, hi_id + 1, batch):
                    with db.engine.begin() as conn:
                        conn.execute(statement, {**params, "lo": lo, "hi": lo + batch - 1})

            ways = {
                "carebox": ours,
                "raw SQL, batched alike": raw_batched,
                "raw SQL, one statement": raw_one,
            }
            times = {name: [] for name in ways}
            report = None
            for _ in range(args.runs):  # interleaved, so no way gets a warmer cache
                for name, fn in ways.items():
                    t = time.perf_counter()
                    result = fn()
                    times[name].append(time.perf_counter() - t)
                    if name == "carebox":
                        report, expected = result, snapshot()
                    elif snapshot() != expected:
                        raise SystemExit(f"{name} and refresh_all disagree: not comparable")
            print("segments: " + ", ".join(f"{k} {v:,}" for k, v in report.segments.items()))
            ours_m = statistics.median(times["carebox"])
            print(
                f"loyalty refresh of {counts['customers']:,} customers, median of {args.runs} runs"
            )
            print(f"{'way':26} {'median s':>9} {'carebox / it':>13}  runs (s)")
            for name, samples in times.items():
                median = statistics.median(samples)
                runs = ", ".join(f"{x:.2f}" for x in samples)
                print(f"{name:26} {median:9.2f} {ours_m / median:13.2f}  {runs}")
            db.session.remove()
            db.engine.dispose()
    finally:
        if args.keep:
            print(f"kept {url}")
        else:
            drop()


if __name__ == "__main__":
    main()

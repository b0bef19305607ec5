"""Tickets' parcel situations at scale: the time-driven queries against raw SQL.

Creates a fresh database on the server named by --url, DATABASE_URL or
TEST_DATABASE_URL (default: the local MariaDB) and fills it with raw INSERT … SELECT
(MariaDB's sequence engine): --orders shipments (96 % delivered over a year, 4 %
moving, their last event 0–4 days old: 1 % stuck) and --tickets tickets about them (10 % open, their
`situation_due_at` spread over ±2 days). Then, in the same run, each beside the raw
SQL doing the same work (median of 15), with MariaDB's EXPLAIN:

- "shipments with no event for 3 days" (`shipments.stuck_orders`, the stuck rule), the
  first 500 and the count;
- the situations worker's read (`situations.due_query`: open tickets whose moment has
  come) and one whole worker round (`situations.refresh_due`: read, derive, write;
  rolled back after each run so every run does the same work);
- a page of the Team list's duplicate marks (`tickets.duplicates_of` for 50 tickets).

    DATABASE_URL="mysql+pymysql://root@127.0.0.1:3306/test?charset=utf8mb4" \\
        .venv/bin/python bench/situations.py --orders 1000000 --tickets 300000

The database is dropped afterwards unless --keep.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import fresh_database, report, timed  # noqa: E402

MOVING = "('picked_up', 'in_transit')"


def fill(url: str, n_orders: int, n_tickets: int, now) -> None:
    from backoffice import create_app
    from backoffice.extensions import db
    from backoffice.seed import seed_base

    app = create_app({"ENV_NAME": "development", "SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        db.create_all()
        seed_base()
        db.session.commit()
        product = db.session.scalar(sa.text("SELECT id FROM product WHERE code = 'ECO'"))
        with db.engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO user (id, email, active, fs_uniquifier, name, locale, "
                    "marketing_consent, created_at, update_datetime, contact_only) VALUES "
                    "(100000, 'bench@example.com', 1, 'b1', 'B', 'id', 0, :t, :t, 0)"
                ),
                {"t": now},
            )
            started = time.perf_counter()
            # A year of parcels: 96 % delivered (last event up to a year ago), 4 % moving,
            # last seen 0-4 days ago (so 1 % of all are stuck: no event for 3 days).
            conn.execute(
                sa.text(
                    "INSERT INTO customer_order (id, number, resi, customer_id, product_id, "
                    "origin, destination, weight_kg, receiver_name, receiver_phone, notes, "
                    "status, price, last_event, last_event_at, created_at, updated_at) "
                    "SELECT seq, CONCAT('ORD-', seq), CONCAT('CB', LPAD(seq, 9, '0'), 'ID'), "
                    "100000, :p, 'Jakarta', 'Bandung', 1, '', '', '', "
                    "CASE WHEN seq % 100 < 96 THEN 'delivered' WHEN seq % 100 < 99 THEN "
                    "'in_transit' ELSE 'picked_up' END, 1, "
                    "CASE WHEN seq % 100 < 96 THEN 'delivered' WHEN seq % 100 < 99 THEN 'at_hub' "
                    "ELSE 'picked_up' END, "
                    "CASE WHEN seq % 100 < 96 THEN :now - INTERVAL (seq % 8760) HOUR "
                    "ELSE :now - INTERVAL (seq % 96) HOUR END, :now - INTERVAL 10 DAY, :now "
                    f"FROM seq_1_to_{n_orders}"
                ),
                {"p": product, "now": now},
            )
            # 10 % open (progress or responded: no department needed), the rest finished.
            conn.execute(
                sa.text(
                    "INSERT INTO ticket (id, number, kind, status, priority, subject, "
                    "customer_id, order_id, created_at, updated_at, last_message_at, "
                    "last_from_staff, first_response_due, resolution_due, reopen_count, "
                    "version_id, finished_at, situation_due_at) "
                    "SELECT seq, CONCAT('CX-2026-', LPAD(seq, 7, '0')), 'question', "
                    "CASE WHEN seq % 10 = 0 THEN 'progress' WHEN seq % 10 = 1 THEN 'responded' "
                    "ELSE 'finished' END, 'normal', 'Paket', 100000, "
                    f"1 + (seq * 7919) % {n_orders}, :now, :now, :now, 0, :now, :now, 0, 1, "
                    "CASE WHEN seq % 10 < 2 THEN NULL ELSE :now END, "
                    "CASE WHEN seq % 10 < 2 THEN :now - INTERVAL 2 DAY + INTERVAL (seq % 5760) "
                    "MINUTE ELSE NULL END "
                    f"FROM seq_1_to_{n_tickets}"
                ),
                {"now": now},
            )
            conn.execute(sa.text("ANALYZE TABLE customer_order, ticket"))
        print(
            f"filled {n_orders:,} shipments and {n_tickets:,} tickets "
            f"in {time.perf_counter() - started:.1f} s"
        )
        db.engine.dispose()


def explain(conn, sql: str, label: str) -> None:
    for row in conn.execute(sa.text("EXPLAIN " + sql)).mappings():
        shown = {k: row[k] for k in ("table", "type", "key", "rows", "Extra")}
        print(f"EXPLAIN {label}: {shown}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default=None)
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--tickets", type=int, default=300_000)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    server = args.url or os.environ.get("DATABASE_URL") or os.environ.get("TEST_DATABASE_URL")
    server = server or "mysql+pymysql://root@127.0.0.1:3306/test?charset=utf8mb4"
    url, drop = fresh_database(server)
    try:
        run(url, args)
    finally:
        if args.keep:
            print(f"kept {url}")
        else:
            drop()


def run(url: str, args) -> None:
    from backoffice import create_app
    from backoffice.domain import shipments, situations
    from backoffice.domain import tickets as lifecycle
    from backoffice.extensions import db
    from backoffice.models import Ticket
    from backoffice.models.base import utcnow

    now = utcnow().replace(microsecond=0)
    fill(url, args.orders, args.tickets, now)
    app = create_app({"ENV_NAME": "development", "SQLALCHEMY_DATABASE_URI": url})
    cutoff = now - timedelta(days=3)
    rows = []
    with app.app_context(), app.test_request_context():
        engine = db.engine

        def sql_of(stmt) -> str:
            return str(stmt.compile(engine, compile_kwargs={"literal_binds": True}))

        stuck = shipments.stuck_orders(3, now=now).limit(500)
        count = sa.select(sa.func.count()).select_from(
            shipments.stuck_orders(3, now=now).with_only_columns(sa.literal(1)).subquery()
        )
        raw_stuck = (
            f"SELECT * FROM customer_order WHERE status IN {MOVING} "
            f"AND last_event_at < '{cutoff}' LIMIT 500"
        )
        raw_count = (
            f"SELECT COUNT(*) FROM customer_order WHERE status IN {MOVING} "
            f"AND last_event_at < '{cutoff}'"
        )
        due = situations.due_query(now)
        raw_due = (
            "SELECT id, kind, order_id, situation, situation_due_at FROM ticket "
            "WHERE status IN ('progress', 'team', 'responded') "
            f"AND situation_due_at <= '{now}' LIMIT 500"
        )
        with engine.connect() as conn:
            n_stuck = conn.execute(sa.text(raw_count)).scalar()
            n_due = conn.execute(sa.text(raw_due.replace("LIMIT 500", ""))).rowcount
            rows.append(
                (
                    "stuck shipments, first 500 (ms)",
                    timed(lambda: db.session.scalars(stuck).all()),
                    timed(lambda: conn.execute(sa.text(raw_stuck)).all()),
                )
            )
            rows.append(
                (
                    f"stuck shipments, count ({n_stuck:,}) (ms)",
                    timed(lambda: db.session.scalar(count)),
                    timed(lambda: conn.execute(sa.text(raw_count)).scalar()),
                )
            )
            rows.append(
                (
                    "worker read: 500 due tickets (ms)",
                    timed(lambda: db.session.execute(due).all()),
                    timed(lambda: conn.execute(sa.text(raw_due)).all()),
                )
            )

            def round_trip():
                situations.refresh_due(now)
                db.session.rollback()

            raw_read = (
                "SELECT t.id, o.status, o.last_event_at FROM ticket t "
                "JOIN customer_order o ON o.id = t.order_id "
                "WHERE t.status IN ('progress', 'team', 'responded') "
                f"AND t.situation_due_at <= '{now}' LIMIT 500"
            )
            raw_write = sa.text(
                "UPDATE ticket SET situation = :s, situation_due_at = :d WHERE id = :i"
            )

            def raw_round():
                # The same work by hand: the due tickets with their parcels, the stuck
                # rule in Python, one executemany UPDATE; rolled back like ours.
                with engine.connect() as c:
                    found = c.execute(sa.text(raw_read)).all()
                    changes = []
                    for r in found:
                        moving = r.status in ("picked_up", "in_transit")
                        if moving and r.last_event_at < cutoff:
                            changes.append({"i": r.id, "s": "stuck", "d": None})
                        else:
                            due = r.last_event_at + timedelta(days=3) if moving else None
                            changes.append({"i": r.id, "s": None, "d": due})
                    if changes:
                        c.execute(raw_write, changes)
                    c.rollback()

            rows.append(
                (
                    "worker round: read+derive+write 500 (ms)",
                    timed(round_trip, 7),
                    timed(raw_round, 7),
                )
            )
            page = db.session.scalars(
                sa.select(Ticket).where(Ticket.status == "progress").limit(50)
            ).all()
            ids = sorted({t.order_id for t in page})
            raw_dup = (
                "SELECT order_id, MIN(id) FROM ticket WHERE order_id IN "
                f"({', '.join(map(str, ids))}) AND status IN ('progress', 'team', "
                "'responded') GROUP BY order_id"
            )
            rows.append(
                (
                    "duplicate marks of a 50-row page (ms)",
                    timed(lambda: lifecycle.duplicates_of(page)),
                    timed(lambda: conn.execute(sa.text(raw_dup)).all()),
                )
            )
            print(f"{n_due:,} open tickets due now")
            report(rows)
            explain(conn, sql_of(shipments.stuck_orders(3, now=now)), "stuck")
            explain(conn, sql_of(count), "stuck count")
            explain(conn, sql_of(due), "worker")
            explain(conn, raw_dup, "duplicates")


if __name__ == "__main__":
    main()

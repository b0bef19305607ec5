"""Tracking events at scale: `carebox tracking import` against raw SQL doing the same work.

Creates a fresh database on the server named by --url, DATABASE_URL or
TEST_DATABASE_URL (default: the local MariaDB), fills it with --orders shipments,
writes a CSV of --events tracking events (8 per parcel: picked up, hubs, out for
delivery, delivered), then times in the same run:

- carebox: the real `carebox tracking import FILE` as a child process (peak RSS of
  that process reported), then the same file again (everything unchanged);
- raw SQL: the same work hand-written — csv module, one SELECT of every resi into a
  dict, PyMySQL executemany of INSERT IGNORE in batches of the same size, then one
  UPDATE … JOIN moving each order to its latest event;
- the stuck-parcel query ("no event for 3 days") with its EXPLAIN, carebox's select
  against the raw SQL (median of 15).

Both imports must leave the same number of rows before any figure is printed.
The database is dropped afterwards unless --keep.

    DATABASE_URL="mysql+pymysql://root@127.0.0.1:3306/test?charset=utf8mb4" \\
        .venv/bin/python bench/tracking.py --orders 125000 --events 1000000
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import fresh_database, report, timed  # noqa: E402

KINDS = (
    "picked_up",
    "at_hub",
    "departed_hub",
    "at_hub",
    "departed_hub",
    "at_hub",
    "out_for_delivery",
    "delivered",
)
HUBS = ("Jakarta", "Hub Cakung, Jakarta", "Hub Cikarang", "Hub Bandung", "Bandung")


def _resis(rng: random.Random, n: int):
    from backoffice.domain.shipments import make_resi

    seen = set()
    while len(seen) < n:
        resi = make_resi(rng.randrange(10**8))
        if resi not in seen:
            seen.add(resi)
            yield resi


def fill(url: str, n_orders: int) -> list[str]:
    from backoffice import create_app
    from backoffice.extensions import db

    app = create_app({"ENV_NAME": "development", "SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        db.create_all()
        now = datetime(2026, 11, 1)
        with db.engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO user (id, email, active, fs_uniquifier, name, locale, "
                    "marketing_consent, created_at, update_datetime, contact_only) VALUES "
                    "(1, 'bench@example.com', 1, 'b1', 'B', 'id', 0, :t, :t, 0)"
                ),
                {"t": now},
            )
            conn.execute(
                sa.text(
                    "INSERT INTO product (id, code, kind, name_id, name_en, description_id, "
                    "description_en, base_price, price_per_kg, min_weight_kg, max_weight_kg, "
                    "eta_days, badge, badge_note_id, badge_note_en, position, active) VALUES "
                    "(1, 'REG', 'service', 'Reg', 'Reg', '', '', 0, 0, 1, 30, '2-3', 'none', "
                    "'', '', 1, 1)"
                )
            )
        resis = list(_resis(random.Random(7), n_orders))
        order = db.metadata.tables["customer_order"]
        with db.engine.begin() as conn:
            for start in range(0, n_orders, 5000):
                conn.execute(
                    order.insert(),
                    [
                        {
                            "id": i + 1,
                            "number": f"ORD-2026-{i + 1:07d}",
                            "resi": resis[i],
                            "customer_id": 1,
                            "product_id": 1,
                            "origin": "Jakarta",
                            "destination": "Bandung",
                            "weight_kg": 1,
                            "receiver_name": "",
                            "receiver_phone": "",
                            "notes": "",
                            "status": "placed",
                            "price": 1,
                            "created_at": now,
                            "updated_at": now,
                        }
                        for i in range(start, min(start + 5000, n_orders))
                    ],
                )
        db.engine.dispose()
    return resis


def write_csv(path: Path, resis: list[str], n_events: int) -> None:
    start = datetime(2026, 11, 2, 8, 0)
    per = len(KINDS)
    with path.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(("resi", "event", "occurred_at", "location", "note"))
        for n in range(n_events):
            resi = resis[(n // per) % len(resis)]
            step = n % per
            at = start + timedelta(hours=5 * step, seconds=(n // per) % 3600)
            out.writerow((resi, KINDS[step], at.isoformat() + "+07:00", HUBS[step % len(HUBS)], ""))


def carebox_import(url: str, path: Path) -> tuple[float, str, int]:
    env = {**os.environ, "DATABASE_URL": url, "CAREBOX_ENV": "development"}
    carebox = Path(sys.executable).parent / "carebox"
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    done = subprocess.run(  # noqa: S603 - our own console script, fixed arguments
        [str(carebox), "tracking", "import", str(path)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if done.returncode != 0:
        raise SystemExit(f"import failed: {done.stderr[-2000:]}")
    return seconds, done.stdout.strip(), max(rss, before)


def raw_import(url: str, path: Path, batch: int = 2000) -> float:
    import pymysql

    u = sa.engine.make_url(url)
    conn = pymysql.connect(
        host=u.host, port=u.port or 3306, user=u.username, password=u.password or "",
        database=u.database, charset="utf8mb4",
    )  # fmt: skip
    started = time.perf_counter()
    with conn.cursor() as cur:
        cur.execute("SELECT resi, id FROM customer_order")
        ids = dict(cur.fetchall())
        sql = (
            "INSERT IGNORE INTO tracking_event (order_id, event, occurred_at, utc_offset, "
            "location, note, source, actor_id, recorded_at) VALUES "
            "(%s, %s, %s, %s, %s, %s, 'import', NULL, NOW())"
        )
        rows = []
        with path.open(encoding="utf-8-sig", newline="") as f:
            reader = csv.reader(f)
            next(reader)
            for resi, event, occurred, location, note in reader:
                at = datetime.fromisoformat(occurred)
                utc = (at - at.utcoffset()).replace(tzinfo=None)
                rows.append((ids[resi], event, utc, 420, location, note))
                if len(rows) >= batch:
                    cur.executemany(sql, rows)
                    conn.commit()
                    rows = []
        if rows:
            cur.executemany(sql, rows)
        cur.execute(
            "UPDATE customer_order o JOIN (SELECT e.order_id, e.event, e.occurred_at FROM "
            "tracking_event e JOIN (SELECT order_id, MAX(occurred_at) m FROM tracking_event "
            "GROUP BY order_id) l ON l.order_id = e.order_id AND l.m = e.occurred_at) x "
            "ON x.order_id = o.id SET o.last_event = x.event, o.last_event_at = x.occurred_at, "
            "o.status = IF(x.event = 'delivered', 'delivered', IF(x.event = 'picked_up', "
            "'picked_up', 'in_transit'))"
        )
        conn.commit()
    conn.close()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--orders", type=int, default=125_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    server = (
        args.url
        or os.environ.get("TEST_DATABASE_URL")
        or "mysql+pymysql://root@127.0.0.1:3306/test?charset=utf8mb4"
    )
    url, drop = fresh_database(server)
    tmp = Path(tempfile.mkdtemp())
    try:
        resis = fill(url, args.orders)
        path = tmp / f"events-{uuid.uuid4().hex[:6]}.csv"
        write_csv(path, resis, args.events)
        size = path.stat().st_size
        print(f"{args.orders:,} shipments, {args.events:,} events, CSV {size / 1e6:.1f} MB")

        ours, summary, rss = carebox_import(url, path)
        print(f"carebox import: {summary}; peak RSS {rss / 1024:.0f} MB")
        again, summary2, _ = carebox_import(url, path)
        print(f"carebox import again: {summary2}")
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            n_ours = conn.execute(sa.text("SELECT COUNT(*) FROM tracking_event")).scalar()
            conn.execute(sa.text("DELETE FROM tracking_event"))
            conn.execute(
                sa.text(
                    "UPDATE customer_order SET status='placed', last_event=NULL, last_event_at=NULL"
                )
            )
        raw = raw_import(url, path)
        with engine.connect() as conn:
            n_raw = conn.execute(sa.text("SELECT COUNT(*) FROM tracking_event")).scalar()
        assert n_ours == n_raw == min(args.events, args.orders * len(KINDS)), (n_ours, n_raw)
        print(f"{'case':44} {'carebox':>11} {'raw SQL':>11} {'ratio':>7}")
        print(
            f"{'import 1 file (s)':44} {ours:11.1f} {raw:11.1f} {ours / raw:7.2f}\n"
            f"{'import events/s':44} {args.events / ours:11,.0f} {args.events / raw:11,.0f}\n"
            f"{'import the same file again (s)':44} {again:11.1f}"
        )
        stuck(url)
        engine.dispose()
    finally:
        for f in tmp.iterdir():
            f.unlink()
        tmp.rmdir()
        if not args.keep:
            drop()


def stuck(url: str) -> None:
    from backoffice import create_app
    from backoffice.domain import shipments
    from backoffice.extensions import db

    app = create_app({"ENV_NAME": "development", "SQLALCHEMY_DATABASE_URI": url})
    now = datetime(2026, 11, 4, 12, 0)
    with app.app_context():
        with db.engine.begin() as conn:  # some parcels stop moving
            conn.execute(
                sa.text(
                    "UPDATE customer_order SET status='in_transit', last_event='at_hub', "
                    "last_event_at = '2026-10-20 00:00:00' WHERE id % 97 = 0"
                )
            )
            conn.execute(sa.text("ANALYZE TABLE customer_order"))
        stmt = shipments.stuck_orders(3, now=now).limit(100)
        compiled = str(stmt.compile(db.engine, compile_kwargs={"literal_binds": True}))
        raw = (
            "SELECT * FROM customer_order WHERE status IN ('picked_up', 'in_transit') "
            "AND last_event_at < '2026-11-01 12:00:00' LIMIT 100"
        )
        ours = timed(lambda: db.session.scalars(stmt).all())
        with db.engine.connect() as conn:
            theirs = timed(lambda: conn.execute(sa.text(raw)).all())
            plan = conn.execute(sa.text("EXPLAIN " + compiled)).mappings().all()
        report([("stuck parcels, no event for 3 days (ms)", ours, theirs)])
        for row in plan:
            print("EXPLAIN:", {k: row[k] for k in ("table", "type", "key", "rows", "Extra")})


if __name__ == "__main__":
    main()

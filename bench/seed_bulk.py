"""`carebox seed-bulk` against raw `INSERT … SELECT` of the same rows (MariaDB).

Each run makes a fresh database, creates the schema, loads the seed catalogue, and
times `seed_bulk(--tickets)`; then, in the same database, copies every table the
loader filled into an empty `CREATE TABLE … LIKE` twin with one `INSERT … SELECT`
(same rows, same indexes; the floor for writing them). Medians over --runs, rows/s,
the ratio, and the peak RSS of the loading process.

    DATABASE_URL="mysql+pymysql://root@127.0.0.1:3306/test?charset=utf8mb4" \\
        .venv/bin/python bench/seed_bulk.py --tickets 100000 --runs 1
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import fresh_database  # noqa: E402

from backoffice import create_app  # noqa: E402

TABLES = (
    "user",
    "roles_users",
    "customer_order",
    "order_event",
    "tracking_event",
    "ticket",
    "ticket_message",
    "ticket_event",
)


def one_run(base_url: str, n_tickets: int):
    from backoffice.bulk import seed_bulk
    from backoffice.extensions import db
    from backoffice.seed import seed_base

    url, drop = fresh_database(base_url)
    try:
        app = create_app({"ENV_NAME": "development", "SQLALCHEMY_DATABASE_URI": url})
        with app.app_context():
            db.create_all()
            seed_base()
            db.session.commit()
            with db.engine.connect() as conn:
                before = {t: conn.scalar(sa.text(f"SELECT COUNT(*) FROM `{t}`")) for t in TABLES}
            stats = seed_bulk(n_tickets, progress=True)
            with db.engine.connect() as conn:
                rows = {
                    t: conn.scalar(sa.text(f"SELECT COUNT(*) FROM `{t}`")) - before[t]
                    for t in TABLES
                }
                conn.execute(sa.text("SET SESSION foreign_key_checks = 0, unique_checks = 0"))
                for t in TABLES:
                    conn.execute(sa.text(f"CREATE TABLE `raw_{t}` LIKE `{t}`"))
                conn.commit()
                started = time.perf_counter()
                for t in TABLES:
                    conn.execute(sa.text(f"INSERT INTO `raw_{t}` SELECT * FROM `{t}`"))
                    conn.commit()
                raw_seconds = time.perf_counter() - started
            db.engine.dispose()
        return stats, raw_seconds, rows
    finally:
        drop()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tickets", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--url",
        default=os.environ.get("DATABASE_URL")
        or "mysql+pymysql://root@127.0.0.1:3306/test?charset=utf8mb4",
    )
    args = parser.parse_args()
    ours, raw = [], []
    rows = {}
    for i in range(args.runs):
        stats, r, rows = one_run(args.url, args.tickets)
        s = stats.seconds
        ours.append(s)
        raw.append(r)
        total = sum(rows.values())
        print(
            f"run {i + 1}: seed-bulk {s:.2f} s ({stats.loader}), INSERT…SELECT {r:.2f} s,"
            f" {total:,} rows"
        )
    total = sum(rows.values())
    print("rows per table:", ", ".join(f"{t} {n:,}" for t, n in rows.items()))
    ms, mr = statistics.median(ours), statistics.median(raw)
    print(f"{'case':28} {'median s':>9} {'rows/s':>10} {'ratio':>6}")
    print(f"{'seed-bulk':28} {ms:9.2f} {total / ms:10,.0f} {ms / mr:6.2f}")
    print(f"{'raw INSERT … SELECT':28} {mr:9.2f} {total / mr:10,.0f} {1:6.2f}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of the loading process: {peak:.0f} MB")


if __name__ == "__main__":
    main()

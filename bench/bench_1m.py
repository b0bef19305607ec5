"""The 1M benchmark (issue 16): carebox over HTTP beside the SQL each operation needs.

    make bench-1m            # or: .venv/bin/python bench/bench_1m.py [--runs 30]

1. **Prepare** (once): the MariaDB database `carebox_bench1m` (--database) is created,
   migrated and filled by `carebox seed-bulk --tickets 1000000` (200k customers,
   1M shipments with 7.6M tracking events, 3M messages). A marker table records its
   size and the loader's data version; a later run finds it and only migrates it.
   Building took 127 s on a quiet 2-core machine with a 4 GB InnoDB buffer pool (6 minutes
   when shared); `--rebuild` forces it,
   `--measure-load` also times the raw `INSERT … SELECT` copy of the same rows.
2. **Serve**: gunicorn with 2 workers (deploy/gunicorn.conf.py) on a free port, with
   CAREBOX_COUNT_STATEMENTS=1 so each response says how many SQL statements it ran
   (backoffice/statement_count.py; off unless set).
3. **Measure**: each operation --runs times through HTTP (p50, p99) and its ideal SQL on
   one connection in the same run; then the tracking import of a 1M-event CSV
   (events/s, peak RSS) and the stuck-parcel query with its EXPLAIN. One table.

The server URL comes from --url, DATABASE_URL's server or the local MariaDB
(`mysql+pymysql://root@127.0.0.1:3306/`). Operations that write leave the dataset as
it was, so later runs measure the same rows: the filed tickets are deleted
(bench_http.cleanup_filings), and the API batch and the import add their events to
parcels without tickets, older than each parcel's latest event (no ticket's situation,
routing or SLA, and no order's status follows them); afterwards the events are deleted
and those orders written back from a copy taken before (bench_http.QUIET_PARCELS).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

DEFAULT_SERVER = "mysql+pymysql://root@127.0.0.1:3306/test?charset=utf8mb4"
MARKER = "bench_marker"
from seed_bulk import TABLES as LOADED_TABLES  # noqa: E402 (the tables seed-bulk fills)


def database_url(server: str, name: str) -> str:
    base = sa.engine.make_url(server)
    query = dict(base.query)
    query.setdefault("charset", "utf8mb4")
    return base.set(database=name, query=query).render_as_string(hide_password=False)


def _marker(engine, tickets: int) -> dict | None:
    from backoffice.bulk import DATA_VERSION

    with engine.connect() as conn:
        if not sa.inspect(conn).has_table(MARKER):
            return None
        row = conn.execute(sa.text(f"SELECT * FROM {MARKER}")).mappings().first()
    if row is None or row["tickets"] != tickets or row["data_version"] != DATA_VERSION:
        return None
    return dict(row)


def prepare(server: str, name: str, tickets: int, *, rebuild=False, measure_load=False) -> dict:
    """The dataset's database URL and marker (built when missing or stale)."""
    from backoffice import create_app
    from backoffice.bulk import DATA_VERSION, seed_bulk
    from backoffice.extensions import db
    from backoffice.seed import seed_base

    url = database_url(server, name)
    admin = sa.create_engine(database_url(server, ""))
    with admin.connect() as conn:
        exists = conn.execute(sa.text("SHOW DATABASES LIKE :n"), {"n": name}).first()
    marker = None
    if exists and not rebuild:
        engine = sa.create_engine(url)
        marker = _marker(engine, tickets)
        engine.dispose()
    app = create_app({"ENV_NAME": "development", "SQLALCHEMY_DATABASE_URI": url})
    if marker is not None:
        with app.app_context():
            from flask_migrate import upgrade

            upgrade()  # what landed on main since the dataset was built
            db.engine.dispose()
        print(
            f"dataset {name}: {tickets:,} tickets (data version {DATA_VERSION}), loaded in"
            f" {marker['load_seconds']:.0f} s on {marker['loaded_at']}; reused"
        )
        return {"url": url, **marker}

    with admin.begin() as conn:
        conn.execute(sa.text(f"DROP DATABASE IF EXISTS `{name}`"))
        conn.execute(
            sa.text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        )
    admin.dispose()
    print(f"dataset {name}: building {tickets:,} tickets (seed-bulk)...", flush=True)
    with app.app_context():
        from flask_migrate import upgrade

        upgrade()
        seed_base()
        db.session.commit()
        stats = seed_bulk(tickets, progress=True)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            "seed-bulk: "
            + ", ".join(f"{v:,} {k}" for k, v in stats.counts.items())
            + f" in {stats.seconds:.1f} s ({stats.rows_per_second:,.0f} rows/s, {stats.loader});"
            f" peak RSS {peak:.0f} MB, load average {os.getloadavg()[0]:.1f}",
            flush=True,
        )
        raw = None
        if measure_load:
            raw = raw_copy_seconds(db.engine)
            rows = sum(
                db.session.scalar(sa.text(f"SELECT COUNT(*) FROM `{t}`")) for t in LOADED_TABLES
            )
            print(
                f"raw INSERT … SELECT of the same {rows:,} rows: {raw:.1f} s;"
                f" seed-bulk ÷ raw = {stats.seconds / raw:.2f}",
                flush=True,
            )
        with db.engine.begin() as conn:
            conn.execute(
                sa.text(
                    f"CREATE TABLE {MARKER} (tickets INT NOT NULL, data_version INT NOT NULL,"
                    " load_seconds DOUBLE NOT NULL, raw_seconds DOUBLE NULL,"
                    " loaded_at DATETIME NOT NULL)"
                )
            )
            conn.execute(
                sa.text(f"INSERT INTO {MARKER} VALUES (:t, :v, :s, :r, UTC_TIMESTAMP())"),
                {"t": tickets, "v": DATA_VERSION, "s": stats.seconds, "r": raw},
            )
        db.engine.dispose()
    engine = sa.create_engine(url)
    marker = _marker(engine, tickets)
    engine.dispose()
    return {"url": url, **marker}


def raw_copy_seconds(engine) -> float:
    """Seconds to copy every loaded table into an empty twin (same indexes) with one
    INSERT … SELECT each: the floor for writing those rows. The twins are dropped."""
    with engine.connect() as conn:
        conn.execute(sa.text("SET SESSION foreign_key_checks = 0, unique_checks = 0"))
        for t in LOADED_TABLES:
            conn.execute(sa.text(f"DROP TABLE IF EXISTS `raw_{t}`"))
            conn.execute(sa.text(f"CREATE TABLE `raw_{t}` LIKE `{t}`"))
        conn.commit()
        started = time.perf_counter()
        for t in LOADED_TABLES:
            conn.execute(sa.text(f"INSERT INTO `raw_{t}` SELECT * FROM `{t}`"))
            conn.commit()
        seconds = time.perf_counter() - started
        for t in LOADED_TABLES:
            conn.execute(sa.text(f"DROP TABLE `raw_{t}`"))
        conn.commit()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default=os.environ.get("DATABASE_URL") or DEFAULT_SERVER)
    parser.add_argument("--database", default="carebox_bench1m")
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--measure-load", action="store_true")
    parser.add_argument("--prepare-only", action="store_true")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument(
        "--only",
        action="append",
        metavar="WORD",
        help="only the rows whose name holds WORD (repeatable; e.g. --only desk --only poll)",
    )
    args = parser.parse_args()
    prepared = prepare(
        args.url,
        args.database,
        args.tickets,
        rebuild=args.rebuild,
        measure_load=args.measure_load,
    )
    if args.prepare_only:
        return
    from bench_http import run_all

    run_all(prepared, runs=args.runs, only=args.only)


if __name__ == "__main__":
    main()

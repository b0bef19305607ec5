"""Shared bench helpers: an app on DATABASE_URL, timing with medians."""

from __future__ import annotations

import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

from backoffice import create_app


def bench_app(**overrides):
    url = os.environ.get("DATABASE_URL")
    if not url:
        raise SystemExit("Set DATABASE_URL to a database filled by `carebox seed-bulk`.")
    return create_app({"ENV_NAME": "development", "SQLALCHEMY_DATABASE_URI": url, **overrides})


def timed(fn, runs: int = 15, warmup: int = 2) -> float:
    """Median wall time of `fn()` in milliseconds."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def report(rows: list[tuple[str, float, float]]) -> None:
    print(f"{'case':44} {'carebox ms':>11} {'raw SQL ms':>11} {'ratio':>7}")
    for name, ours, raw in rows:
        print(f"{name:44} {ours:11.2f} {raw:11.2f} {ours / raw if raw else float('nan'):7.2f}")


def fresh_database(url: str):
    """(url of a new empty database, drop function)."""
    base = sa.engine.make_url(url)
    if base.get_backend_name() == "sqlite":
        path = Path(tempfile.mkdtemp()) / "bench.db"
        return f"sqlite:///{path}", lambda: path.unlink(missing_ok=True)
    name = f"carebox_bench_{uuid.uuid4().hex[:8]}"
    server = sa.create_engine(base)
    with server.begin() as conn:
        conn.execute(sa.text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))

    def drop():
        with server.begin() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS `{name}`"))
        server.dispose()

    query = dict(base.query)
    query.setdefault("charset", "utf8mb4")
    return base.set(database=name, query=query).render_as_string(hide_password=False), drop

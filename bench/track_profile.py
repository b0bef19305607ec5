"""Where public tracking's time goes, in-process: `/track/<resi>` and `/track?resi=` with
ten resi called as WSGI requests (no test client, no HTTP) on the bench-1m database,
rate limits on (memory storage, a limit never reached), as an anonymous visitor with a
session cookie (what a browser sends after its first page).

Usage (after `make bench-1m` has run once):
    DATABASE_URL=mysql+pymysql://root@127.0.0.1:3306/carebox_bench1m?charset=utf8mb4 \\
        .venv/bin/python bench/track_profile.py [--runs 300] [--top 25] [--only 1|10] [--redis]
Prints, per page: the median wall time and this process's CPU time, Python function
calls and SQL statements (with the driver's ROLLBACK, COMMIT and ping) per request —
with --redis, the rate limits counted in a private redis-server (tests/servers.py) and
the round trips sent to it — then cProfile's top functions by own time and by
cumulative time. The calls and statements
do not change with the machine's load; the milliseconds do.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import bench_app  # noqa: E402
from sqlalchemy import event, select  # noqa: E402
from sqlalchemy.engine import Engine  # noqa: E402
from werkzeug.test import EnvironBuilder  # noqa: E402

from backoffice.extensions import db  # noqa: E402
from backoffice.models import Order  # noqa: E402


def wsgi_call(app, path: str, cookie: str | None):
    """One request straight into the WSGI app, body read and closed: its status."""
    headers = {"User-Agent": "bench", "Accept": "text/html", "Accept-Language": "id"}
    if cookie:
        headers["Cookie"] = f"session={cookie}"
    base, _, query = path.partition("?")
    environ = EnvironBuilder(
        path=base, query_string=query, headers=headers, base_url="http://127.0.0.1:5000"
    ).get_environ()
    environ["REMOTE_ADDR"] = "127.0.0.1"
    out = {}

    def start_response(status, headers, exc_info=None):
        out["status"], out["headers"] = status, headers

    def call():
        body = app(dict(environ), start_response)
        for _ in body:
            pass
        if hasattr(body, "close"):
            body.close()
        return out["status"], out["headers"]

    return call


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--only", choices=("1", "10"))
    parser.add_argument("--redis", action="store_true")
    args = parser.parse_args()
    if args.redis:
        from tests.servers import Redis

        with Redis() as server:
            run(args, RATELIMIT_STORAGE_URI=server.url())
    else:
        run(args)


def run(args, **config) -> None:
    limits = {"RATELIMIT_TRACK": "100000000 per minute;100000000 per hour"}
    app = bench_app(RATELIMIT_ENABLED=True, **limits, **config)
    trips = [0]
    if args.redis:
        import redis.connection

        real = redis.connection.AbstractConnection.send_packed_command

        def send(self, *a, **kw):  # one write per round trip (a pipeline is one)
            trips[0] += 1
            return real(self, *a, **kw)

        redis.connection.AbstractConnection.send_packed_command = send
    with app.app_context():
        resis = list(
            db.session.scalars(
                select(Order.resi).where(Order.id % 100_003 == 7).order_by(Order.id).limit(10)
            )
        )
        db.session.rollback()
    sent: list[str] = []

    def count(conn, cursor, statement, *rest):
        sent.append(statement.split()[0].upper())

    # Every engine: the app's, and the autocommit pool of connections.one_statement_reads;
    # and what the driver sends besides statements (PyMySQL's own methods).
    event.listen(Engine, "before_cursor_execute", count)
    import pymysql.connections

    for name in ("rollback", "commit", "ping"):
        real = getattr(pymysql.connections.Connection, name)

        def spy(self, *a, _real=real, _name=name.upper(), **kw):
            sent.append(_name)
            return _real(self, *a, **kw)

        setattr(pymysql.connections.Connection, name, spy)
    pages = {"1": f"/track/{resis[0]}", "10": "/track?resi=" + ",".join(resis)}
    # The session cookie a browser has after its first pages (the language forms' token,
    # then Flask-Login's `_fresh`), which no later page changes.
    cookie = None
    for _ in range(3):
        _status, headers = wsgi_call(app, pages["1"], cookie)()
        for key, value in headers:
            if key == "Set-Cookie" and value.startswith("session="):
                cookie = value.split("session=", 1)[1].split(";", 1)[0]
    for name, path in pages.items():
        if args.only and name != args.only:
            continue
        call = wsgi_call(app, path, cookie)
        status, headers = call()
        assert status.startswith("200"), (path, status)
        assert not any(k == "Set-Cookie" for k, _v in headers), "a new cookie on every page"
        for _ in range(20):
            call()
        samples = []
        cpu = time.process_time()
        for _ in range(args.runs):
            start = time.perf_counter()
            call()
            samples.append((time.perf_counter() - start) * 1000)
        cpu_ms = (time.process_time() - cpu) * 1000 / args.runs
        sent.clear()
        trips[0] = 0
        call()
        statements = list(sent)
        redis_trips = f", {trips[0]} Redis round trips" if args.redis else ""
        profile = cProfile.Profile()
        profile.enable()
        for _ in range(50):
            call()
        profile.disable()
        stats = pstats.Stats(profile)
        calls = stats.total_calls / 50
        print(
            f"/track, {name} resi: median {statistics.median(samples):.3f} ms over {args.runs}"
            f" ({cpu_ms:.3f} ms of this process's CPU each),"
            f" {calls:,.0f} Python calls, {len(statements)} statements {statements}"
            f"{redis_trips}"
        )
        if args.top:
            for key in ("tottime", "cumulative"):
                buf = io.StringIO()
                pstats.Stats(profile, stream=buf).sort_stats(key).print_stats(args.top)
                print(buf.getvalue().split("\n", 6)[-1])


if __name__ == "__main__":
    main()

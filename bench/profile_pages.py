"""Where a back-office page's Python time goes, in-process (issue 16: measure first).

Usage: DATABASE_URL=... python bench/profile_pages.py [--runs N] [--top N] [--as agent]
           [--sql] URL...
       (signed in as one of bench_1m's accounts, made by `make bench-1m`; read-only)

For each URL: the median wall and CPU time of N requests through Flask's test client
(no HTTP, no gunicorn), the statements one request runs (--sql prints them), the
Python function calls one request makes (cProfile), and the functions with the most
own and cumulative time.
Function calls do not depend on the machine's load: compare them between versions.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import statistics
import time

from bench_http import AGENT, LIMITS, MASTER, sign_in
from common import bench_app
from sqlalchemy import event

from backoffice.extensions import db


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--sort", default="tottime", help="pstats order (tottime, cumulative)")
    parser.add_argument(
        "--focus",
        action="append",
        default=[],
        metavar="NAME",
        help="also print the cumulative time of the functions named so (file:function "
        "or function; repeatable), as a share of the request",
    )
    parser.add_argument("--as", dest="who", choices=("master", "agent"), default="master")
    parser.add_argument("--sql", action="store_true", help="print the statements of one request")
    parser.add_argument("urls", nargs="+")
    args = parser.parse_args()
    app = bench_app(**LIMITS)
    client = app.test_client()
    with app.app_context():
        engine = db.engine
    # No app context held around the requests: each gets its own `g`, as in production
    # (a held one is reused by every request, so the signed-in user, the notice count
    # and the like were loaded by the first request only and missing from the figures).
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    sign_in(client, MASTER if args.who == "master" else AGENT)
    for url in args.urls:
        for _ in range(3):  # warm: templates compiled, caches filled
            assert client.get(url).status_code == 200, url
        times, cpu = [], []
        for _ in range(args.runs):
            start, start_cpu = time.perf_counter(), time.thread_time()
            client.get(url)
            times.append((time.perf_counter() - start) * 1000)
            cpu.append((time.thread_time() - start_cpu) * 1000)
        statements.clear()
        profile = cProfile.Profile()
        profile.enable()
        resp = client.get(url)
        profile.disable()
        stats = pstats.Stats(profile, stream=io.StringIO())
        print(f"\n=== {url}")
        print(
            f"median {statistics.median(times):.2f} ms ({statistics.median(cpu):.2f} ms CPU) "
            f"over {args.runs}, {len(statements)} statements, "
            f"{stats.total_calls} function calls, "
            f"{len(resp.data) // 1024} kB"
        )
        if args.sql:
            print("\n\n".join(statements))
        total = max(stats.total_tt, 1e-9)
        for name in args.focus:
            for (path, line, func), (_cc, nc, _tt, ct, _callers) in stats.stats.items():
                if name in (func, f"{path.rsplit('/', 1)[-1]}:{func}"):
                    where = f"{path.rsplit('/', 1)[-1]}:{line}({func})"
                    print(f"  {where:60} {nc:6d} calls {ct * 1000:8.2f} ms {ct / total:6.1%}")
        if args.top:
            out = io.StringIO()
            stats.stream = out
            stats.sort_stats(args.sort).print_stats(args.top)
            print("\n".join(out.getvalue().splitlines()[6:]))


if __name__ == "__main__":
    main()

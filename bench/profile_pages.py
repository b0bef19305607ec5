"""Where a back-office page's Python time goes, in-process (issue 16: measure first).

Usage: DATABASE_URL=... python bench/profile_pages.py [--runs N] [--top N] URL...
       (signed in as bench_1m's master admin, made by `make bench-1m`; read-only)

For each URL: the median wall time of N requests through Flask's test client (no
HTTP, no gunicorn), the statements one request runs, the Python function calls one
request makes (cProfile), and the functions with the most own and cumulative time.
Function calls do not depend on the machine's load: compare them between versions.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import re
import statistics
import time

from bench_http import LIMITS, MASTER, PASSWORD
from common import bench_app
from sqlalchemy import event

from backoffice.extensions import db


def login(client) -> None:
    html = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html).group(1)
    resp = client.post("/login", data={"email": MASTER, "password": PASSWORD, "csrf_token": token})
    if resp.status_code != 302:
        raise SystemExit(f"sign-in as {MASTER} failed ({resp.status_code}): run make bench-1m once")


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
    parser.add_argument("urls", nargs="+")
    args = parser.parse_args()
    app = bench_app(**LIMITS)
    client = app.test_client()
    with app.app_context():
        statements = [0]

        def count(*_a):
            statements[0] += 1

        event.listen(db.engine, "before_cursor_execute", count)
        login(client)
        for url in args.urls:
            for _ in range(3):  # warm: templates compiled, caches filled
                assert client.get(url).status_code == 200, url
            times = []
            for _ in range(args.runs):
                start = time.perf_counter()
                client.get(url)
                times.append((time.perf_counter() - start) * 1000)
            statements[0] = 0
            profile = cProfile.Profile()
            profile.enable()
            resp = client.get(url)
            profile.disable()
            stats = pstats.Stats(profile, stream=io.StringIO())
            print(f"\n=== {url}")
            print(
                f"median {statistics.median(times):.2f} ms over {args.runs}, "
                f"{statements[0]} statements, {stats.total_calls} function calls, "
                f"{len(resp.data) // 1024} kB"
            )
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

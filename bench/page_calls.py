"""What a back-office page costs in Python, in-process (issue 16: the page shell).

    DATABASE_URL=mysql+pymysql://root@127.0.0.1:3306/carebox_bench1m?charset=utf8mb4 \\
        .venv/bin/python bench/page_calls.py [--runs 20] [--top 30] [--as master] [PATH ...]

Signs in as one of bench_1m's accounts (bench/bench_http.py makes them), then for each
page: the Python function calls one request makes (cProfile), its SQL statements and
the median wall time without the profiler (the Flask test client: no gunicorn, no
network). With --top, the functions with the most own time under the profiler.
Load-independent figures first: the calls and statements do not change with the
machine's load, the milliseconds do.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_http import AGENT, MASTER, PASSWORD  # noqa: E402 (after the path)
from common import bench_app  # noqa: E402
from sqlalchemy import event  # noqa: E402

PAGES = ("/admin/notifications/", "/admin/")
CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("paths", nargs="*", default=list(PAGES))
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--top", type=int, default=0)
    parser.add_argument("--sort", default="tottime")
    parser.add_argument("--sql", action="store_true", help="print the statements of one request")
    parser.add_argument("--as", dest="who", choices=("master", "agent"), default="master")
    args = parser.parse_args()

    app = bench_app(RATELIMIT_ENABLED=False)
    statements: list[str] = []
    with app.app_context():
        from backoffice.extensions import db

        event.listen(db.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    client = app.test_client()
    html = client.get("/login").get_data(as_text=True)
    token = CSRF.search(html).group(1)
    email = MASTER if args.who == "master" else AGENT
    resp = client.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": token})
    assert resp.status_code in (302, 303), resp.status_code

    print(f"{'page':60} {'calls':>8} {'stmts':>6} {'ms p50':>8} {'CPU ms':>8}")
    for path in args.paths:
        for _ in range(3):
            status = client.get(path).status_code
            assert status == 200, (path, status)
        statements.clear()
        client.get(path)
        stmts = len(statements)
        if args.sql:
            print("\n\n".join(statements))
        samples, cpu = [], []
        for _ in range(args.runs):
            start, start_cpu = time.perf_counter(), time.thread_time()
            client.get(path)
            samples.append((time.perf_counter() - start) * 1000)
            cpu.append((time.thread_time() - start_cpu) * 1000)
        profile = cProfile.Profile()
        for _ in range(args.runs):
            profile.enable()
            client.get(path)
            profile.disable()
        stats = pstats.Stats(profile)
        calls = stats.total_calls // args.runs
        print(
            f"{path[:60]:60} {calls:8,} {stmts:6} {statistics.median(samples):8.2f}"
            f" {statistics.median(cpu):8.2f}"
        )
        if args.top:
            stats.sort_stats(args.sort).print_stats(args.top)


if __name__ == "__main__":
    main()

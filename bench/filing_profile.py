"""Filing a ticket in-process (issue 16 item 3): the portal form's POST through the Flask
test client on a bench database, timed, its statements counted and profiled (cProfile).

Usage: .venv/bin/python bench/filing_profile.py [--database carebox_bench1m] [--runs 50]
       [--top 40] [--sort tottime] [--sql] [--focus NAME ...]

The bench customer of bench/bench_http.py files 2 × `--runs` tickets (after a few
warm-up ones), every other one profiled; printed: the median wall and CPU time of the
unprofiled POSTs, their statements, Python function calls per profiled filing and the
functions that take the most time; and, apart, the page the redirect leads to (the new
ticket's conversation: a browser's next request, which takes the flash out of the
session again; bench_http's filing row does not include it). The filed tickets are deleted
afterwards (bench_http.cleanup_filings).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import re
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_1m import DEFAULT_SERVER, database_url  # noqa: E402
from bench_http import CUSTOMER, LIMITS, PASSWORD, Raw, cleanup_filings  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database", default="carebox_bench1m")
    parser.add_argument("--server", default=os.environ.get("BENCH_SERVER", DEFAULT_SERVER))
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--sort", default="tottime")
    parser.add_argument("--sql", action="store_true", help="print the statements of one filing")
    parser.add_argument(
        "--focus",
        action="append",
        default=[],
        metavar="NAME",
        help="also print calls and cumulative ms per filing of the functions named so "
        "(file:function or function; repeatable)",
    )
    args = parser.parse_args()
    url = database_url(args.server, args.database)
    os.environ["CAREBOX_COUNT_STATEMENTS"] = "1"

    from sqlalchemy import event, func, select

    from backoffice import create_app
    from backoffice.extensions import db
    from backoffice.models import Ticket, User

    app = create_app({"ENV_NAME": "development", "SQLALCHEMY_DATABASE_URI": url, **LIMITS})
    with app.app_context():
        customer = db.session.scalar(select(User).where(User.email == CUSTOMER))
        keep = db.session.scalar(
            select(func.min(Ticket.id)).where(Ticket.customer_id == customer.id)
        )
        customer_id = customer.id
        db.session.remove()
    client = app.test_client()
    html = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html).group(1)
    resp = client.post(
        "/login", data={"email": CUSTOMER, "password": PASSWORD, "csrf_token": token}
    )
    assert resp.status_code in (302, 303), resp.status_code
    html = client.get("/tickets/new").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html).group(1)

    def file_once():
        form = {
            "csrf_token": token,
            "submission": uuid.uuid4().hex,
            "kind": "complaint",
            "subject": "Paket belum sampai (bench)",
            "body": "Paket saya belum sampai, mohon dicek.",
            "order_number": "",
        }
        resp = client.post("/tickets/new", data=form)
        assert resp.status_code in (302, 303), (resp.status_code, resp.get_data()[:300])
        return resp

    def follow(resp):
        # The redirect's page takes the flash out of the session, as a browser's would.
        page = client.get(resp.headers["Location"])
        assert page.status_code == 200, page.status_code
        return page

    statements: list[str] = []
    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    try:
        measure(args, file_once, follow, statements)
    finally:  # the filed tickets and their emails go, however the run ended
        cleanup_filings(Raw(url), customer_id, (keep,))


def measure(args, file_once, follow, statements) -> None:
    for _ in range(5):
        follow(file_once())
    times, cpu, follows, stmts, follow_stmts = [], [], [], [], []
    profile = cProfile.Profile()
    for _ in range(args.runs):
        start, started = time.perf_counter(), time.process_time()
        resp = file_once()
        times.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - started) * 1000)
        follow(resp)
        profile.enable()
        resp = file_once()
        profile.disable()
        stmts.append(int(resp.headers.get("X-Carebox-Statements", -1)))
        start = time.perf_counter()
        page = follow(resp)
        follows.append((time.perf_counter() - start) * 1000)
        follow_stmts.append(int(page.headers.get("X-Carebox-Statements", -1)))
    stats = pstats.Stats(profile)
    calls = stats.total_calls / args.runs
    print(
        f"filing POST: median {statistics.median(times):.2f} ms (min {min(times):.2f}),"
        f" CPU {statistics.median(cpu):.2f} ms (min {min(cpu):.2f}),"
        f" {statistics.median(stmts):.0f} statements, {calls:,.0f} Python calls per filing"
        f" ({args.runs} runs, then as many profiled; load {os.getloadavg()[0]:.1f})"
    )
    print(
        f"the redirect's page: median {statistics.median(follows):.2f} ms"
        f" (min {min(follows):.2f}), {statistics.median(follow_stmts):.0f} statements"
        " (not profiled, not in the bench's filing row)"
    )
    for name in args.focus:
        for (path, line, func), (_cc, nc, _tt, ct, _callers) in stats.stats.items():
            if name in (func, f"{path.rsplit('/', 1)[-1]}:{func}"):
                where = f"{path.rsplit('/', 1)[-1]}:{line}({func})"
                print(f"  {where:60} {nc / args.runs:6.1f} calls {ct * 1000 / args.runs:7.2f} ms")
    if args.sql:
        statements.clear()
        resp = file_once()
        print("\n\n".join(statements))  # the POST's own, not the redirect's page
        follow(resp)
    out = io.StringIO()
    pstats.Stats(profile, stream=out).sort_stats(args.sort).print_stats(args.top)
    print(out.getvalue())


if __name__ == "__main__":
    main()

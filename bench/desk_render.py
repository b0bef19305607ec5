"""The desk's first paint in one process, the two desk rows of bench_1m (issue 16 item 2,
issue 10's "desk with the timeline within 20 % of the desk without it"): per request,
the median wall time, the statements and the Python function calls (cProfile), which
do not depend on the machine's load the way the milliseconds do.

Usage (after `make bench-1m` has made its bench accounts and tickets once):
    DATABASE_URL=mysql+pymysql://root@127.0.0.1:3306/carebox_bench1m?charset=utf8mb4 \\
        .venv/bin/python bench/desk_render.py [--runs 30] [--profile N]

`--profile N` also prints the N functions with the most own time for each desk.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import time

from bench_http import AGENT, CUSTOMER, CUSTOMER_NO_PARCEL, NO_PARCEL_SUBJECT, sign_in
from common import bench_app
from sqlalchemy import event, select

from backoffice.extensions import db
from backoffice.models import Ticket, User


def bench_tickets() -> dict[str, str]:
    """The numbers of bench_1m's desk tickets: with the parcel, and its twin without."""
    with_parcel = (
        select(Ticket.number)
        .join(User, User.id == Ticket.customer_id)
        .where(User.email == CUSTOMER)
        .order_by(Ticket.id)
        .limit(1)
    )
    without = (
        select(Ticket.number)
        .join(User, User.id == Ticket.customer_id)
        .where(User.email == CUSTOMER_NO_PARCEL, Ticket.subject == NO_PARCEL_SUBJECT)
        .order_by(Ticket.id)
        .limit(1)
    )
    found = {"with the timeline": db.session.scalar(with_parcel)}
    found["no parcel"] = db.session.scalar(without)
    if not all(found.values()):
        raise SystemExit("No bench tickets: run `make bench-1m BENCH_ARGS='--only desk'` once.")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--profile", type=int, default=0, metavar="N")
    args = parser.parse_args()
    app = bench_app(RATELIMIT_ENABLED=False)
    with app.app_context():
        tickets = bench_tickets()
        engine = db.engine
    statements: list[int] = []
    event.listen(engine, "before_cursor_execute", lambda *a, **k: statements.append(1))
    client = app.test_client()
    sign_in(client, AGENT)
    print(f"{'desk, 20 messages':28} {'p50 ms':>8} {'stmts':>6} {'calls':>9}")
    for name, number in tickets.items():
        url = f"/admin/tickets/desk/{number}/"

        def get(url=url):
            resp = client.get(url)
            assert resp.status_code == 200, (url, resp.status_code)

        for _ in range(3):
            get()
        samples = []
        for _ in range(args.runs):
            start = time.perf_counter()
            get()
            samples.append((time.perf_counter() - start) * 1000)
        statements.clear()
        profile = cProfile.Profile()
        profile.runcall(get)
        stats = pstats.Stats(profile)
        print(
            f"{name:28} {statistics.median(samples):8.2f} {len(statements):6d}"
            f" {stats.total_calls:9,d}"
        )
        if args.profile:
            stats.sort_stats("tottime").print_stats(args.profile)


if __name__ == "__main__":
    main()

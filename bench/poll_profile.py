"""Where an idle poll's time goes, in-process: the chat's and the desk's 304 called as
WSGI requests (no test client, no HTTP), timed, then profiled, on the bench-1m database.

Usage (after `make bench-1m` has made its accounts and ticket once):
    DATABASE_URL=mysql+pymysql://root@127.0.0.1:3306/carebox_bench1m?charset=utf8mb4 \
        .venv/bin/python bench/poll_profile.py [--runs 300] [--top 25] [--only chat|desk]
Prints, per poll: the median wall and CPU time, Python function calls and SQL statements per
request, then cProfile's top functions by own and by cumulative CPU time.
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

from bench_http import AGENT, CUSTOMER, sign_in  # noqa: E402
from common import bench_app  # noqa: E402
from sqlalchemy import event, select  # noqa: E402
from sqlalchemy.engine import Engine  # noqa: E402
from werkzeug.test import EnvironBuilder  # noqa: E402

from backoffice.extensions import db  # noqa: E402
from backoffice.models import Ticket, User  # noqa: E402


def login(app, email: str) -> str:
    """The session cookie of `email` signed in (through the login form)."""
    client = app.test_client()
    client.environ_base["HTTP_USER_AGENT"] = "bench"  # as wsgi_call's (session protection)
    sign_in(client, email)
    return client.get_cookie("session").value


def wsgi_call(app, path: str, cookie: str, etag: str | None):
    """One request straight into the WSGI app: (status, headers)."""
    headers = {"Cookie": f"session={cookie}", "User-Agent": "bench", "Accept": "*/*"}
    if etag:
        headers["If-None-Match"] = etag
    base, _, query = path.partition("?")
    environ = EnvironBuilder(
        path=base, query_string=query, headers=headers, base_url="http://127.0.0.1:5000"
    ).get_environ()
    environ["REMOTE_ADDR"] = "127.0.0.1"
    out = {}

    def start_response(status, headers, exc_info=None):
        out["status"], out["headers"] = status, dict(headers)

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
    parser.add_argument("--only", choices=("chat", "desk"))
    parser.add_argument("--dump", metavar="PREFIX", help="also write PREFIX-chat.pstats etc.")
    args = parser.parse_args()

    app = bench_app()
    with app.app_context():
        customer = db.session.scalar(select(User).where(User.email == CUSTOMER))
        number = db.session.scalar(
            select(Ticket.number)
            .where(Ticket.customer_id == customer.id)
            .order_by(Ticket.id)
            .limit(1)
        )
    statements = []
    # every engine: the idle polls read on their own (backoffice/idle_polls.py)
    event.listen(Engine, "before_cursor_execute", lambda *a, **k: statements.append(a[2]))
    polls = {
        "chat": (CUSTOMER, f"/tickets/{number}/messages"),
        "desk": (AGENT, f"/admin/tickets/desk/{number}/poll?after=999999999"),
    }
    for name, (email, path) in polls.items():
        if args.only and name != args.only:
            continue
        cookie = login(app, email)
        status, headers = wsgi_call(app, path, cookie, None)()
        assert status.startswith("200"), status
        poll = wsgi_call(app, path, cookie, headers["ETag"])
        for _ in range(20):
            status, headers = poll()
        assert status.startswith("304"), status
        statements.clear()
        poll()
        sent = list(statements)
        times, cpu = [], []
        for _ in range(args.runs):
            start, start_cpu = time.perf_counter(), time.process_time()
            poll()
            cpu.append((time.process_time() - start_cpu) * 1000)
            times.append((time.perf_counter() - start) * 1000)
        # CPU time, not wall time: on a loaded machine the wall time of a poll is mostly
        # waiting for a CPU, and the profile would blame whatever ran before the wait.
        profile = cProfile.Profile(time.process_time)
        profile.enable()
        for _ in range(args.runs):
            poll()
        profile.disable()
        if args.dump:
            profile.dump_stats(f"{args.dump}-{name}.pstats")
        stats = pstats.Stats(profile)
        calls = stats.total_calls / args.runs
        print(
            f"\n== {name} poll 304: {statistics.median(times):.3f} ms median in-process "
            f"({statistics.median(cpu):.3f} ms CPU), "
            f"{calls:,.0f} function calls, {len(sent)} statements; headers: "
            f"{sorted(k for k in headers if k.lower() not in ('content-security-policy',))}"
        )
        for sql in sent:
            print("   SQL:", " ".join(sql.split())[:300])
        for key in ("tottime", "cumulative"):
            out = io.StringIO()
            pstats.Stats(profile, stream=out).sort_stats(key).print_stats(args.top)
            text = out.getvalue()
            print(text[text.find("   ncalls") :])


if __name__ == "__main__":
    main()

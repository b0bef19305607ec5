"""bench_1m's measuring half: carebox under gunicorn (2 workers) over HTTP, each operation
beside its ideal SQL on one PyMySQL connection, in the same run. See bench/bench_1m.py.

"Ideal SQL" is the fewest statements a hand-written program would run to produce what the
page shows — the signed-in user with their roles, then the page's rows through the
index that fits (and the capped count where the page shows one) — not the app's own
statements. The HTTP figures are taken by the client (http.client, keep-alive), so they
include the loopback round trip and the client's parsing (~0.1 ms).
"""

from __future__ import annotations

import contextlib
import csv
import http.client
import json
import math
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import date, datetime, timedelta
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import quote, quote_plus, urlencode

import pymysql
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="csrf_token"')
PASSWORD = "bench-1m-" + "x" * 16  # noqa: S105 (the bench's own throwaway accounts)


def sign_in(client, email: str) -> None:
    """Sign `email` in through the login form of a Flask test client (the in-process
    profilers): one of the bench's accounts, made by `make bench-1m`."""
    match = CSRF_RE.search(client.get("/login").get_data(as_text=True))
    token = match.group(1) or match.group(2)
    resp = client.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": token})
    if resp.status_code != 302:
        raise SystemExit(f"sign-in as {email} failed ({resp.status_code}): run make bench-1m once")


MASTER = "bench1m-master@carebox.example"
AGENT = "bench1m-agent@carebox.example"
CUSTOMER = "bench1m-customer@carebox.example"
CUSTOMER_NO_PARCEL = "bench1m-customer2@carebox.example"
NO_PARCEL_SUBJECT = "Bench: keluhan tanpa paket"
PAGE = 25
LIMITS = {  # the bench clients are one address and a few accounts
    "RATELIMIT_LOGIN": "100000 per minute",
    "RATELIMIT_PASSWORD_ACCOUNT": "100000 per minute",  # noqa: S105 (a rate)
    "RATELIMIT_TICKET_FILE": "1000000 per hour",
    "RATELIMIT_TICKET_REPLY": "1000000 per hour",
    "RATELIMIT_TRACK": "1000000 per minute",
    "RATELIMIT_API": "1000000 per minute",
}
TARGETS = {
    "list": "≤ 20 ms, ≤ 2.5×",
    "desk": "≤ 15 ms, ≤ 6 stmts",
    "file": "≤ 10 ms",
    "poll": "≤ 2 ms",
    "search": "≤ 5 ms",
    "word": "≤ 30 ms",
    "dashboard": "≤ 50 ms",
    "track1": "≤ 5 ms, ≤ 3×",
    "track10": "≤ 15 ms",
    "api": "≤ 250 ms",
}


# -- the HTTP client and the server ------------------------------------------------------


class Client:
    """One keep-alive connection with its cookies (enough for a session and CSRF)."""

    def __init__(self, port: int):
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=900)
        self.cookies: dict[str, str] = {}
        self.last_headers = None

    def request(self, method, path, form=None, headers=None, json_body=None):
        h = dict(headers or {})
        if self.cookies:
            h["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if form is not None:
            body = urlencode(form).encode()
            h["Content-Type"] = "application/x-www-form-urlencoded"
        if json_body is not None:
            body = json.dumps(json_body).encode()
            h["Content-Type"] = "application/json"
        for attempt in (1, 2):
            try:
                self.conn.request(method, path, body=body, headers=h)
                resp = self.conn.getresponse()
                data = resp.read()
                break
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=900)
                if attempt == 2:
                    raise
        for value in resp.headers.get_all("Set-Cookie") or []:
            jar = SimpleCookie()
            jar.load(value)
            for key, morsel in jar.items():
                self.cookies[key] = morsel.value
        self.last_headers = resp.headers
        return resp.status, resp.headers, data

    def get(self, path, headers=None):
        return self.request("GET", path, headers=headers)

    def csrf(self, path) -> str:
        status, _h, data = self.get(path)
        assert status == 200, (path, status)
        match = CSRF_RE.search(data.decode())
        assert match, f"no csrf_token on {path}"
        return match.group(1) or match.group(2)

    def login(self, email):
        token = self.csrf("/login")
        status, _h, data = self.request(
            "POST", "/login", {"email": email, "password": PASSWORD, "csrf_token": token}
        )
        assert status in (302, 303), (status, data[:500])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """gunicorn with 2 workers on a free port, the bench's settings in its environment."""

    def __init__(self, url: str, app: str = "backoffice:create_app()", ready: str = "/track"):
        self.app, self.ready = app, ready
        self.port = free_port()
        self.env = {
            **os.environ,
            "DATABASE_URL": url,
            "CAREBOX_ENV": "development",
            "CAREBOX_COUNT_STATEMENTS": "1",
            "CAREBOX_BASE_URL": f"http://127.0.0.1:{self.port}",
            "CAREBOX_TRUSTED_HOSTS": "127.0.0.1,localhost",
            "GUNICORN_BIND": f"127.0.0.1:{self.port}",
            "GUNICORN_WORKERS": "2",
            "GUNICORN_TIMEOUT": "900",
            # As deployed (deploy/carebox.env.example): the limits live in Redis, shared by
            # the workers. memory:// would count per worker and start a timer thread on
            # most requests; a database of its own keeps the bench's keys apart.
            "RATELIMIT_STORAGE_URI": os.environ.get(
                "BENCH_RATELIMIT_STORAGE_URI", "redis://127.0.0.1:6379/15"
            ),
            **LIMITS,
        }
        self.proc = None
        self.peaks: dict[int, float] = {}  # worker pid -> its highest VmHWM, MB

    def __enter__(self):
        storage = self.env["RATELIMIT_STORAGE_URI"]
        if storage.startswith("redis://"):  # the bench's own database: an earlier run's
            import redis  # counts (logins per account) would refuse this run's

            redis.Redis.from_url(storage).flushdb()
        self.proc = subprocess.Popen(  # noqa: S603 (our own gunicorn, fixed arguments)
            [str(BIN / "gunicorn"), "-c", "deploy/gunicorn.conf.py", self.app],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=open(Path(tempfile.gettempdir()) / "carebox-bench1m-gunicorn.log", "w"),  # noqa: SIM115
        )
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                status, _h, _d = Client(self.port).get(self.ready)
                if status == 200:
                    return self
            except OSError:
                time.sleep(0.3)
        raise SystemExit("gunicorn did not answer within 60 s (see carebox-bench1m-gunicorn.log)")

    def workers(self) -> list[int]:
        out = subprocess.run(  # noqa: S603
            ["ps", "-o", "pid=", "--ppid", str(self.proc.pid)],  # noqa: S607
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        return [int(p) for p in out.split()]

    def phase_rss(self) -> dict[int, tuple[float, float]]:
        """{worker pid: (peak, current RSS) in MB} since the previous call, as
        /proc/PID/status says (VmHWM, VmRSS); each peak is then reset to the current RSS
        (clear_refs 5, Linux 4.0+), so that each phase's own peak shows. peak_rss_mb keeps
        the highest of all phases. Where the reset is refused the peaks are cumulative."""
        out = {}
        for pid in self.workers():
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except FileNotFoundError:  # a worker that has just exited
                continue
            hwm, rss = (
                int(re.search(rf"{key}:\s+(\d+)", status).group(1)) / 1024
                for key in ("VmHWM", "VmRSS")
            )
            out[pid] = (hwm, rss)
            self.peaks[pid] = max(self.peaks.get(pid, 0.0), hwm)
            with contextlib.suppress(OSError):
                Path(f"/proc/{pid}/clear_refs").write_text("5")
        return out

    def peak_rss_mb(self) -> list[float]:
        """Each worker's highest RSS since it started, in MB (VmHWM over every phase)."""
        self.phase_rss()
        return [self.peaks[pid] for pid in sorted(self.peaks)]

    def __exit__(self, *exc):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


# -- timing --------------------------------------------------------------------------------


class Failed(Exception):
    """An operation answered something else than it should: its row says so."""


def attempt(fn):
    """fn()'s result, or {"error": why} (the table is printed whatever fails)."""
    try:
        return fn()
    except (Failed, AssertionError, SystemExit, OSError, pymysql.err.MySQLError) as exc:
        print(f"  FAILED: {exc!r}"[:500], flush=True)
        return {"error": repr(exc)[:300]}


BUDGET = 40.0  # seconds one row may take; a slower operation gets fewer runs (at least 5)


def sample(fn, runs: int, warmup: int = 3) -> list[float]:
    """Sorted wall times (ms) of `runs` calls after `warmup` ones; fewer runs (never below
    5) when the warm-ups say the row would take more than BUDGET seconds."""
    started = time.perf_counter()
    for _ in range(warmup):
        fn()
    each = (time.perf_counter() - started) / max(1, warmup)
    if each * runs > BUDGET:
        runs = max(5, int(BUDGET / each))
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return sorted(out)


def p50(samples):
    return statistics.median(samples)


def p99(samples):
    return samples[max(0, math.ceil(0.99 * len(samples)) - 1)]


class Raw:
    """The ideal SQL's connection (PyMySQL, no ORM), autocommit like a reader."""

    def __init__(self, url: str):
        u = sa.engine.make_url(url)
        self.conn = pymysql.connect(
            host=u.host or "127.0.0.1",
            port=u.port or 3306,
            user=u.username,
            password=u.password or "",
            database=u.database,
            charset="utf8mb4",
            autocommit=True,
        )

    def run(self, statements):
        """Execute [(sql, params)] in order; a callable item gets the previous rows and
        returns its (sql, params) (a page read by the ids found before)."""
        rows = None
        with self.conn.cursor() as cur:
            for item in statements:
                sql, params = item(rows) if callable(item) else item
                cur.execute(sql, params)
                rows = cur.fetchall()
        return rows

    def one(self, sql, params=()):
        with self.conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchone()


# -- the data the operations use -----------------------------------------------------------


def setup(url: str) -> dict:
    """Bench accounts (made once), a customer ticket with 20 messages about a loaded
    parcel, and the loaded rows the operations look up."""
    from flask_security.utils import hash_password
    from sqlalchemy import func, select

    from backoffice import create_app
    from backoffice.domain import permissions as perm
    from backoffice.domain import tickets as lifecycle
    from backoffice.extensions import db
    from backoffice.models import Order, Ticket, TicketKind, TicketMessage, TicketStatus, User
    from backoffice.security_setup import ensure_roles
    from backoffice.seed import ensure_user
    from backoffice.views.queues import queue_order

    app = create_app({"ENV_NAME": "development", "SQLALCHEMY_DATABASE_URI": url})
    info: dict = {}
    with app.app_context(), app.test_request_context():
        ensure_roles()
        master = ensure_user(MASTER, PASSWORD, perm.MASTER_ADMIN, name="Bench Master")
        agent = ensure_user(AGENT, PASSWORD, perm.CUSTOMER_SERVICE, name="Bench Agent")
        customer = ensure_user(CUSTOMER, PASSWORD, perm.CUSTOMER, name="Bench Customer")
        db.session.commit()
        ticket = db.session.scalar(
            select(Ticket).where(Ticket.customer_id == customer.id).order_by(Ticket.id).limit(1)
        )
        if ticket is None:
            order = db.session.scalar(select(Order).order_by(Order.id).offset(123_456).limit(1))
            order = order or db.session.scalar(select(Order).limit(1))
            order.customer_id = customer.id
            ticket = lifecycle.file_ticket(
                customer,
                TicketKind.COMPLAINT,
                "Paket belum sampai",
                "Di mana paket saya?",
                order=order,
            )
            db.session.commit()
        # Its twin without a parcel (issue 10: the desk with the timeline within 20 % of
        # the desk without it): the same 20 messages, from a customer of its own so that
        # no bench's cleanup of the filings (the first customer's other tickets) takes it.
        other = ensure_user(CUSTOMER_NO_PARCEL, PASSWORD, perm.CUSTOMER, name="Bench Customer 2")
        # Each account's hash with the served code's argon2 parameters: another branch's
        # run may have rehashed it with its own, and each sign-in would then verify with
        # that branch's memory cost (seen in the RSS by phase), not this one's.
        hasher = app.extensions["security"].pwd_context
        for user in (master, agent, customer, other):
            if hasher.needs_update(user.password):
                user.password = hash_password(PASSWORD)
        db.session.commit()
        plain = db.session.scalar(
            select(Ticket)
            .where(Ticket.customer_id == other.id, Ticket.subject == NO_PARCEL_SUBJECT)
            .order_by(Ticket.id)
            .limit(1)
        )
        if plain is None:
            plain = lifecycle.file_ticket(
                other, TicketKind.COMPLAINT, NO_PARCEL_SUBJECT, "Di mana paket saya?"
            )
            db.session.commit()
        for one, writer in ((ticket, customer), (plain, other)):
            have = db.session.scalar(
                select(func.count())
                .select_from(TicketMessage)
                .where(TicketMessage.ticket_id == one.id)
            )
            for i in range(have, 20):
                author = writer if i % 2 == 0 else master  # progress: the master admin's
                lifecycle.post_message(one, author, f"Pesan ke-{i + 1} tentang paket ini.")
                db.session.commit()
        info["ticket"] = ticket.number
        info["ticket_id"] = ticket.id
        info["plain_ticket"] = plain.number
        info["plain_ticket_id"] = plain.id
        info["ids"] = {"master": master.id, "agent": agent.id, "customer": customer.id}
        info["uniq"] = {
            "master": master.fs_uniquifier,
            "agent": agent.fs_uniquifier,
            "customer": customer.fs_uniquifier,
        }
        info["department"] = db.session.execute(sa.text("SELECT MIN(id) FROM department")).scalar()
        view = next(
            v
            for v in app.extensions["admin"][0]._views
            if getattr(v, "endpoint", "") == "tickets_team"
        )
        info["dept_filter"] = next(
            f"flt0_{view.get_filter_arg(i, f)}"
            for i, f in enumerate(view._filters)
            if type(f).__name__ == "DepartmentFilter"
        )
        mysql = sa.dialects.mysql.dialect()
        info["order"] = {
            s.value: ", ".join(str(c.compile(dialect=mysql)) for c in queue_order(s))
            for s in TicketStatus
        }
        info["finished_number"] = db.session.execute(
            sa.text(
                "SELECT number FROM ticket WHERE status='finished' ORDER BY id LIMIT 1 OFFSET 4321"
            )
        ).scalar()
        row = db.session.execute(
            sa.text(
                "SELECT t.status, o.resi, u.email, u.phone, u.phone_key FROM ticket t"
                " JOIN customer_order o ON o.id = t.order_id JOIN user u ON u.id = t.customer_id"
                " WHERE t.status = 'team' AND u.phone IS NOT NULL ORDER BY t.id LIMIT 1 OFFSET 999"
            )
        ).first()
        info["team_resi"], info["team_email"] = row.resi, row.email
        info["team_phone"], info["team_phone_key"] = row.phone, row.phone_key
        info["resis"] = list(
            db.session.scalars(
                select(Order.resi).where(Order.id % 100_003 == 7).order_by(Order.id).limit(10)
            )
        )
        from backoffice.domain import api_tokens

        _token, info["api_secret"] = api_tokens.create(
            f"bench-1m-{uuid.uuid4().hex[:8]}", ["tracking:write"]
        )
        info["api_token"] = _token.name
        info["snapshot"] = sa.inspect(db.engine).has_table("dashboard_snapshot")
        from backoffice.views import sqlhelpers

        info["cap"] = getattr(sqlhelpers, "COUNT_CAP", 10_000)
        db.session.commit()
        db.engine.dispose()
    _ = User
    return info


# -- the operations --------------------------------------------------------------------------


USER_SQL = (
    "SELECT u.*, r.name FROM user u LEFT JOIN roles_users ru ON ru.user_id = u.id"
    " LEFT JOIN role r ON r.id = ru.role_id WHERE u.fs_uniquifier = %s"
)
ROWS_SQL = (
    "SELECT t.*, u.email, u.name, d.code, a.email, o.number, o.resi FROM ticket t"
    " LEFT JOIN user u ON u.id = t.customer_id LEFT JOIN department d ON d.id = t.department_id"
    " LEFT JOIN user a ON a.id = t.assignee_id LEFT JOIN customer_order o ON o.id = t.order_id"
    " WHERE t.id IN ({ids})"
)


def _rows_by_ids(rows):
    ids = ",".join(str(r[0]) for r in rows) or "0"
    return ROWS_SQL.format(ids=ids), ()


def list_ops(info, raw: Raw):
    """The four lists, unfiltered and by department, page 1 and the deepest the pager offers."""
    ops = []
    for status in ("progress", "team", "responded", "finished"):
        for dept in (None, info["department"]):
            where = "status = %s" + (" AND department_id = %s" if dept else "")
            params = (status, dept) if dept else (status,)
            count = raw.one(
                f"SELECT COUNT(*) FROM (SELECT id FROM ticket WHERE {where} LIMIT %s) c",
                (*params, info["cap"] + 1),
            )[0]
            deepest = max(0, math.ceil(min(count, info["cap"]) / PAGE) - 1)
            for page in sorted({0, deepest}):
                query = {}
                if dept:
                    query[info["dept_filter"]] = dept
                if page:
                    query["page"] = page
                url = f"/admin/tickets/{status}/" + (f"?{urlencode(query)}" if query else "")
                name = f"list {status}{' by department' if dept else ''}, page {page + 1}"
                ideal = [
                    (USER_SQL, (info["uniq"]["master"],)),
                    (
                        f"SELECT id FROM ticket WHERE {where} ORDER BY {info['order'][status]}"
                        f" LIMIT {PAGE} OFFSET {page * PAGE}",
                        params,
                    ),
                    _rows_by_ids,
                    (
                        f"SELECT COUNT(*) FROM (SELECT id FROM ticket WHERE {where} LIMIT %s) c",
                        (*params, info["cap"] + 1),
                    ),
                ]
                ops.append(("list", name, "master", ("GET", url), ideal))
    return ops


def search_ops(info):
    def ideal(status, find, params):
        return [
            (USER_SQL, (info["uniq"]["master"],)),
            (find, params),
            _rows_by_ids,
        ]

    since = datetime.utcnow() - timedelta(days=30)  # noqa: DTZ003 (naive UTC, as stored)
    number = info["finished_number"]
    return [
        (
            "search",
            "search by ticket number",
            "master",
            ("GET", f"/admin/tickets/finished/?search={quote_plus(number)}"),
            ideal(
                "finished",
                "SELECT id FROM ticket WHERE status = 'finished' AND number LIKE %s"
                " ORDER BY created_at DESC LIMIT 1001",
                (number + "%",),
            ),
        ),
        (
            "search",
            "search by resi",
            "master",
            ("GET", f"/admin/tickets/team/?search={info['team_resi']}"),
            ideal(
                "team",
                "SELECT t.id FROM customer_order o JOIN ticket t ON t.order_id = o.id"
                " WHERE o.resi = %s AND t.status = 'team'",
                (info["team_resi"],),
            ),
        ),
        (
            "search",
            "search by e-mail",
            "master",
            ("GET", f"/admin/tickets/team/?search={quote_plus(info['team_email'])}"),
            ideal(
                "team",
                "SELECT t.id FROM user u JOIN ticket t ON t.customer_id = u.id WHERE u.email"
                " LIKE %s AND t.status = 'team' ORDER BY t.created_at DESC LIMIT 1001",
                (info["team_email"] + "%",),
            ),
        ),
        (
            "search",
            "search by phone",
            "master",
            ("GET", f"/admin/tickets/team/?search={quote_plus(info['team_phone'])}"),
            ideal(
                "team",
                "SELECT t.id FROM user u JOIN ticket t ON t.customer_id = u.id WHERE u.phone_key"
                " = %s AND t.status = 'team' ORDER BY t.created_at DESC LIMIT 1001",
                (info["team_phone_key"],),
            ),
        ),
        (
            "word",
            "search by a word (rusak)",
            "master",
            ("GET", "/admin/tickets/finished/?search=rusak"),
            [
                (USER_SQL, (info["uniq"]["master"],)),
                (
                    "SELECT id FROM ticket WHERE status = 'finished' AND created_at >= %s"
                    " AND subject LIKE '%%rusak%%' ORDER BY created_at DESC LIMIT 1001",
                    (since,),
                ),
                lambda rows: _rows_by_ids(rows[:PAGE]),
            ],
        ),
    ]


def other_ops(info):
    n, tid = info["ticket"], info["ticket_id"]

    def desk_ideal(number, ticket_id, parcel=True):
        return [
            (USER_SQL, (info["uniq"]["agent"],)),
            (
                "SELECT t.*, u.*, d.*, o.* FROM ticket t JOIN user u ON u.id = t.customer_id"
                " LEFT JOIN department d ON d.id = t.department_id"
                " LEFT JOIN customer_order o ON o.id = t.order_id WHERE t.number = %s",
                (number,),
            ),
            (
                "SELECT m.*, u.name, u.email FROM ticket_message m"
                " LEFT JOIN user u ON u.id = m.author_id WHERE m.ticket_id = %s ORDER BY m.id",
                (ticket_id,),
            ),
            (
                "SELECT * FROM ticket_event WHERE ticket_id = %s ORDER BY id DESC LIMIT 50",
                (ticket_id,),
            ),
        ] + (
            [
                (
                    "SELECT e.* FROM tracking_event e JOIN ticket t ON t.order_id = e.order_id"
                    " WHERE t.id = %s ORDER BY e.occurred_at, e.id",
                    (ticket_id,),
                )
            ]
            if parcel
            else []
        )

    track_sql = (
        "SELECT o.id, o.resi, o.status, o.last_event, o.last_event_at, o.created_at, p.eta_days"
        " FROM customer_order o JOIN product p ON p.id = o.product_id WHERE o.resi IN ({})"
    )
    events_sql = (
        "SELECT * FROM tracking_event WHERE order_id IN ({}) ORDER BY order_id, occurred_at, id"
    )

    def track_ideal(resis):
        marks = ",".join(["%s"] * len(resis))
        return [
            (track_sql.format(marks), tuple(resis)),
            lambda rows: (events_sql.format(",".join(str(r[0]) for r in rows) or "0"), ()),
        ]

    return [
        (
            "desk",
            "desk, 20 messages and the timeline",
            "agent",
            ("GET", f"/admin/tickets/desk/{n}/"),
            desk_ideal(n, tid),
        ),
        (
            "desk",
            "desk, 20 messages, no parcel",
            "agent",
            ("GET", f"/admin/tickets/desk/{info['plain_ticket']}/"),
            desk_ideal(info["plain_ticket"], info["plain_ticket_id"], parcel=False),
        ),
        (
            "poll",
            "chat poll, nothing new (304)",
            "customer",
            ("POLL", f"/tickets/{n}/messages"),
            [
                (USER_SQL, (info["uniq"]["customer"],)),
                ("SELECT id, status, version_id, customer_id FROM ticket WHERE number = %s", (n,)),
            ],
        ),
        (
            "poll",
            "desk poll, nothing new (304)",
            "agent",
            ("POLL", f"/admin/tickets/desk/{n}/poll?after=999999999"),
            [
                (USER_SQL, (info["uniq"]["agent"],)),
                ("SELECT id, status, version_id FROM ticket WHERE number = %s", (n,)),
                (
                    "INSERT INTO ticket_viewer (ticket_id, user_id, opened_at, seen_at) VALUES"
                    " (%s, %s, UTC_TIMESTAMP(), UTC_TIMESTAMP())"
                    " ON DUPLICATE KEY UPDATE seen_at = UTC_TIMESTAMP()",
                    (tid, info["ids"]["agent"]),
                ),
                (
                    "SELECT user_id, typing_at FROM ticket_viewer WHERE ticket_id = %s"
                    " AND seen_at > UTC_TIMESTAMP() - INTERVAL 30 SECOND",
                    (tid,),
                ),
            ],
        ),
        (
            "dashboard",
            "master dashboard",
            "master",
            ("GET", "/admin/"),
            dashboard_ideal(info),
        ),
        (
            "track1",
            "public tracking, 1 resi",
            None,
            ("GET", f"/track/{info['resis'][0]}"),
            track_ideal(info["resis"][:1]),
        ),
        (
            "track10",
            "public tracking, 10 resi",
            None,
            ("GET", "/track?resi=" + quote(",".join(info["resis"]))),
            track_ideal(info["resis"]),
        ),
    ]


BREACHED = (
    "(first_response_at IS NULL AND first_response_due < UTC_TIMESTAMP()"
    " OR first_response_at > first_response_due"
    " OR finished_at IS NULL AND sla_paused_at IS NULL AND resolution_due < UTC_TIMESTAMP()"
    " OR finished_at IS NULL AND sla_paused_at > resolution_due OR finished_at > resolution_due)"
)
SOON = "sla_warn_at <= UTC_TIMESTAMP() AND next_due_at > UTC_TIMESTAMP()"


def dashboard_ideal(info):
    """What the master's home page reads, hand-written: the user; each list's count and,
    for the open lists, its SLA breaches and breaching-soon tickets, capped like the
    page's (one UNION ALL of the nine counts, written plainly: each read up to the cap;
    a responded ticket is never breaching soon); the master's open tickets (count, first
    ten); the unread notices; the stored 30-day figures (or, without them, the 30 days
    grouped); the departments. Until session 6 the ideal was the user and the snapshot
    alone, leaving out the counts, the page's costliest statement."""
    since = datetime.utcnow() - timedelta(days=30)  # noqa: DTZ003 (naive UTC, as stored)
    cap = info["cap"] + 1
    counts, params = [], []
    for k, (status, extra) in enumerate(
        [(s, "") for s in ("progress", "team", "responded", "finished")]
        + [(s, f" AND {BREACHED}") for s in ("progress", "team", "responded")]
        + [(s, f" AND {SOON}") for s in ("progress", "team")]
    ):
        counts.append(
            f"SELECT {k}, COUNT(*) FROM (SELECT id FROM ticket WHERE status = %s{extra} LIMIT %s) c"
        )
        params += [status, cap]
    mine = "assignee_id = %s AND status IN ('progress', 'team', 'responded')"
    master = info["ids"]["master"]
    return [
        (USER_SQL, (info["uniq"]["master"],)),
        (" UNION ALL ".join(counts), tuple(params)),
        (f"SELECT COUNT(*) FROM ticket WHERE {mine}", (master,)),
        (
            f"SELECT id, number, subject, status, priority FROM ticket WHERE {mine}"
            " ORDER BY resolution_due, id LIMIT 10",
            (master,),
        ),
        (
            "SELECT COUNT(*) FROM staff_notice n JOIN ticket t ON t.id = n.ticket_id"
            " WHERE n.user_id = %s AND n.read_at IS NULL",
            (master,),
        ),
        ("SELECT * FROM dashboard_snapshot LIMIT 1", ())
        if info["snapshot"]
        else (
            "SELECT DATE(created_at), status, COUNT(*) FROM ticket WHERE created_at >= %s"
            " GROUP BY 1, 2",
            (since,),
        ),
        ("SELECT id, code FROM department", ()),
    ]


def filing_ideal(info):
    """What filing writes, hand-written: the ticket, its message and event, one commit."""
    cust = info["ids"]["customer"]

    def run(raw: Raw):
        number = f"BX-{uuid.uuid4().hex[:17]}"
        with raw.conn.cursor() as cur:
            cur.execute(USER_SQL, (info["uniq"]["customer"],))
            cur.fetchall()
            cur.execute("BEGIN")
            cur.execute(
                "INSERT INTO ticket (number, kind, status, priority, subject, customer_id,"
                " created_at, updated_at, last_message_at, last_from_staff, first_response_due,"
                " resolution_due, next_due_at, reopen_count, version_id) VALUES (%s, 'complaint',"
                " 'progress', 'normal', 'Bench', %s, UTC_TIMESTAMP(), UTC_TIMESTAMP(),"
                " UTC_TIMESTAMP(), 0, UTC_TIMESTAMP(), UTC_TIMESTAMP(), UTC_TIMESTAMP(), 0, 1)",
                (number, cust),
            )
            tid = cur.lastrowid
            cur.execute(
                "INSERT INTO ticket_message (ticket_id, author_id, from_staff, internal, body,"
                " created_at) VALUES (%s, %s, 0, 0, 'Bench', UTC_TIMESTAMP())",
                (tid, cust),
            )
            cur.execute(
                "INSERT INTO ticket_event (ticket_id, actor_id, action, to_status, note,"
                " created_at) VALUES (%s, %s, 'filed', 'progress', '', UTC_TIMESTAMP())",
                (tid, cust),
            )
            cur.execute("COMMIT")

    return run


# The parcels the writing benches add events to (the API batch, the import): events
# older than each parcel's latest move no status, and with no ticket about the parcel no
# situation, routing or SLA follows. What the writes still change of these orders (the
# import's claim writes `updated_at`) is kept in a temporary table of the raw connection
# and written back after, with the events deleted: every run measures the same dataset.
QUIET_PARCELS = (
    "CREATE TEMPORARY TABLE bench_kept_orders (PRIMARY KEY (id)) AS"
    " SELECT o.id, o.resi, o.created_at, o.status, o.last_event, o.last_event_at, o.updated_at"
    " FROM customer_order o WHERE o.id %% {modulo} = {rest} AND o.last_event_at IS NOT NULL"
    " AND o.status <> 'cancelled' AND NOT EXISTS (SELECT 1 FROM ticket t WHERE t.order_id = o.id)"
    " ORDER BY o.id LIMIT %s"
)


def keep_quiet_parcels(raw: Raw, modulo: int, rest: int, limit: int) -> list[tuple]:
    """(resi, created_at) of up to `limit` quiet parcels (QUIET_PARCELS), their orders kept."""
    with raw.conn.cursor() as cur:
        cur.execute("DROP TEMPORARY TABLE IF EXISTS bench_kept_orders")
        cur.execute(QUIET_PARCELS.format(modulo=modulo, rest=rest), (limit,))
        cur.execute("SELECT resi, created_at FROM bench_kept_orders ORDER BY id")
        return list(cur.fetchall())


def restore_quiet_parcels(raw: Raw, first_event: int) -> None:
    """The events after `first_event` deleted, the kept orders written back as they were."""
    _delete_events_after(raw, first_event)
    with raw.conn.cursor() as cur:
        cur.execute(
            "UPDATE customer_order o JOIN bench_kept_orders k ON k.id = o.id"
            " SET o.status = k.status, o.last_event = k.last_event,"
            " o.last_event_at = k.last_event_at, o.updated_at = k.updated_at"
        )
        cur.execute("DROP TEMPORARY TABLE bench_kept_orders")


def api_batch(info, port: int, raw: Raw, runs: int):
    """POST /api/v1/tracking-events with 500 new events (older than each parcel's latest,
    so no status moves; parcels without tickets) per request, beside the same writes by
    hand; the events deleted after and the orders as they were (QUIET_PARCELS)."""
    first = raw.one("SELECT COALESCE(MAX(id), 0) FROM tracking_event")[0]
    parcels = keep_quiet_parcels(raw, 499, 5, 500)
    client = Client(port)
    headers = {"Authorization": f"Bearer {info['api_secret']}"}
    counter = iter(range(1, 10**6))

    def events():
        minute = next(counter)
        return [
            {
                "resi": resi,
                "event": "at_hub",
                "occurred_at": (created - timedelta(days=3, minutes=minute)).isoformat() + "Z",
                "location": "Hub Bench",
            }
            for resi, created in parcels
        ]

    def call():
        status, _h, data = client.request(
            "POST", "/api/v1/tracking-events", headers=headers, json_body={"events": events()}
        )
        assert status == 200, (status, data[:300])

    ours = sample(call, runs)
    stmts = client.last_headers.get("X-Carebox-Statements", "?")
    # Only placeholders in VALUES: PyMySQL then sends one multi-row INSERT per executemany.
    sql = (
        "INSERT IGNORE INTO tracking_event (order_id, event, occurred_at, utc_offset, location,"
        " note, source, actor_id, recorded_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
    )

    def by_hand():
        batch = events()
        resis = [e["resi"] for e in batch]
        with raw.conn.cursor() as cur:
            cur.execute(
                "SELECT resi, id FROM customer_order WHERE resi IN ("
                + ",".join(["%s"] * len(resis))
                + ")",
                resis,
            )
            ids = dict(cur.fetchall())
            rows = [(ids[e["resi"]], datetime.fromisoformat(e["occurred_at"][:-1])) for e in batch]
            now = datetime.utcnow()  # noqa: DTZ003 (naive UTC, as stored)
            cur.execute(
                "SELECT order_id FROM tracking_event WHERE (order_id, occurred_at, event) IN ("
                + ",".join(["(%s, %s, 'at_hub')"] * len(rows))
                + ")",
                [v for r in rows for v in r],
            )
            cur.fetchall()
            cur.execute("BEGIN")
            cur.executemany(
                sql, [(o, "at_hub", at, 0, "Hub Bench", "", "api", None, now) for o, at in rows]
            )
            cur.execute("COMMIT")

    theirs = sample(by_hand, runs)
    restore_quiet_parcels(raw, first)
    print("  measured: API batch", flush=True)
    name = f"API batch of {len(parcels)} tracking events"
    return (name, ours, theirs, stmts, TARGETS["api"])


def cleanup_filings(raw: Raw, customer_id: int, keep: tuple[int, ...], tries: int = 5):
    """Tickets filed by the bench (the customer's, past its own first one) go again
    (tried again on a deadlock: other benches write the same tables meanwhile)."""
    for attempt in range(tries):
        try:
            return _cleanup_filings(raw, customer_id, keep)
        except pymysql.err.OperationalError as exc:
            if exc.args[0] != 1213 or attempt == tries - 1:
                raise
            time.sleep(1 + attempt)


def _cleanup_filings(raw: Raw, customer_id: int, keep: tuple[int, ...]):
    with raw.conn.cursor() as cur:
        cur.execute("SET SESSION foreign_key_checks = 0")
        marks = ", ".join(["%s"] * len(keep))
        where = f"SELECT id FROM ticket WHERE customer_id = %s AND id NOT IN ({marks})"
        for table in ("ticket_message", "ticket_event", "outbox", "ticket_viewer"):
            with contextlib.suppress(pymysql.err.MySQLError):  # a table without ticket_id
                cur.execute(
                    f"DELETE FROM {table} WHERE ticket_id IN (SELECT id FROM ({where}) x)",
                    (customer_id, *keep),
                )
        cur.execute(
            f"DELETE FROM ticket WHERE id IN (SELECT id FROM ({where}) x)", (customer_id, *keep)
        )
        # Their emails: outbox_email has no ticket_id; each names the customer's address.
        cur.execute(
            "DELETE FROM outbox_email WHERE recipient LIKE"
            " CONCAT('%%<', (SELECT email FROM user WHERE id = %s), '>')",
            (customer_id,),
        )
        cur.execute("SET SESSION foreign_key_checks = 1")


# -- running them ----------------------------------------------------------------------------


SKIPPED = {"error": "not run (--only)"}


def run_all(prepared: dict, runs: int = 30, only: list[str] | None = None) -> None:
    """Every row, or with `only` just the rows whose name holds one of those words
    (the extra steps answer to "file", "rate", "API", "export", "import", "stuck")."""

    def wanted(name: str) -> bool:
        return not only or any(word.lower() in name.lower() for word in only)

    url = prepared["url"]
    load_before = os.getloadavg()
    info = setup(url)
    raw = Raw(url)
    ops = [op for op in list_ops(info, raw) + search_ops(info) + other_ops(info) if wanted(op[1])]
    table = []
    with Server(url) as server:
        phases = [("start-up (the app loaded, one tracking page)", server.phase_rss())]
        clients = {}
        for role, email in (("master", MASTER), ("agent", AGENT), ("customer", CUSTOMER)):
            clients[role] = Client(server.port)
            clients[role].login(email)
        clients[None] = Client(server.port)
        phases.append(("three sign-ins", server.phase_rss()))
        for kind, name, role, (method, path), ideal in ops:
            client = clients[role]
            etag = {}

            def call(client=client, path=path, etag=etag, name=name, method=method):
                status, _h, _d = client.get(path, headers=etag)
                want = 304 if method == "POLL" else 200
                if status != want:
                    raise Failed(f"HTTP {status} (wanted {want})")

            try:
                if method == "POLL":
                    status, headers, _d = client.get(path)
                    if status != 200:
                        raise Failed(f"HTTP {status} on the first poll")
                    etag["If-None-Match"] = headers["ETag"]
                ours = sample(call, runs)
            except Failed as exc:
                table.append((name, None, str(exc), "", TARGETS.get(kind, "")))
                print(f"  FAILED: {name}: {exc}", flush=True)
                phases.append((name, server.phase_rss()))
                continue
            phases.append((name, server.phase_rss()))
            stmts = client.last_headers.get("X-Carebox-Statements", "?")
            theirs = sample(lambda ideal=ideal: raw.run(ideal), runs)
            table.append((name, ours, theirs, stmts, TARGETS.get(kind, "")))
            print(f"  measured: {name}", flush=True)
        for word, step in (
            ("file", lambda: filing(info, clients["customer"], raw, runs)),
            ("API", lambda: api_batch(info, server.port, raw, runs)),
        ):
            if not wanted(word):
                continue
            row = attempt(step)
            if isinstance(row, dict):
                table.append(("(filing or API batch)", None, row["error"], "", ""))
            else:
                table.append(row)
            phases.append((table[-1][0], server.phase_rss()))
        rate = SKIPPED
        if wanted("rate"):
            rate = attempt(
                lambda: filing_rate(
                    info,
                    server.port,
                    signed_in=lambda: phases.append(
                        ("filing throughput: 8 customers sign in", server.phase_rss())
                    ),
                )
            )
            phases.append(("filing throughput: they file for 5 s", server.phase_rss()))
        export = (
            attempt(lambda: export_job(info, clients["master"], url))
            if wanted("export")
            else SKIPPED
        )
        if export is not SKIPPED:
            phases.append(
                (
                    "export job (report page, queue it; `exports run` is not a worker)",
                    server.phase_rss(),
                )
            )
        rss = server.peak_rss_mb()
    floor = attempt(lambda: measure_floor(url, runs)) if wanted("poll") or wanted("track") else None
    cleanup_filings(raw, info["ids"]["customer"], (info["ticket_id"],))
    with raw.conn.cursor() as cur:  # the bench's API token goes (no secret lingers)
        cur.execute("DELETE FROM api_token WHERE name = %s", (info["api_token"],))
    imported = attempt(lambda: tracking_import(url, raw)) if wanted("import") else SKIPPED
    stuck = attempt(lambda: stuck_query(url)) if wanted("stuck") else SKIPPED
    print_table(prepared, table, rate, export, rss, imported, stuck, load_before, runs, floor)
    print_phases(phases)


def print_phases(phases) -> None:
    """Each phase's peak RSS per worker (and its RSS at the phase's end), so the operation
    that raises a worker's peak can be seen; workers numbered by pid."""
    pids = sorted({pid for _name, rss in phases for pid in rss})
    print()
    print("gunicorn workers' RSS by phase, MB: the phase's peak (VmHWM) / RSS at its end")
    print()
    print("| phase | " + " | ".join(f"worker {i + 1}" for i in range(len(pids))) + " |")
    print("|---|" + "---:|" * len(pids))
    for name, rss in phases:
        cells = (f"{rss[p][0]:.0f} / {rss[p][1]:.0f}" if p in rss else "—" for p in pids)
        print(f"| {name} | " + " | ".join(cells) + " |")
    print(f"- load average at the end: {os.getloadavg()[0]:.1f}")


def measure_floor(url: str, runs: int) -> dict:
    """A trivial Flask route (bench/floor_app.py) under the same gunicorn settings, as a
    304 and as a 200: what any request costs here before carebox does anything."""
    with Server(url, app="bench.floor_app:app", ready="/floor") as server:
        client = Client(server.port)
        out = {}
        for name, headers, want in (("304", {"If-None-Match": '"floor"'}, 304), ("200", {}, 200)):

            def call(headers=headers, want=want):
                status, _h, _d = client.get("/floor", headers=headers)
                if status != want:
                    raise Failed(f"floor: HTTP {status}")

            out[name] = sample(call, max(runs, 200))
        return out


def filing(info, client: Client, raw: Raw, runs: int):
    token = client.csrf("/tickets/new")
    session = dict(client.cookies)

    def call():
        form = {
            "csrf_token": token,
            "submission": uuid.uuid4().hex,
            "kind": "complaint",
            "subject": "Paket belum sampai (bench)",
            "body": "Paket saya belum sampai, mohon dicek.",
            "order_number": "",
        }
        status, _h, data = client.request("POST", "/tickets/new", form)
        # A browser follows the redirect, whose page takes the flashed "thank you" out of
        # the session again; kept, 30 of them grow the cookie every request signs and reads.
        client.cookies = dict(session)
        assert status in (302, 303), (status, data[:300])

    ours = sample(call, runs)
    stmts = client.last_headers.get("X-Carebox-Statements", "?")
    run = filing_ideal(info)
    theirs = sample(lambda: run(raw), runs)
    print("  measured: file a ticket", flush=True)
    return ("file a ticket (portal form)", ours, theirs, stmts, TARGETS["file"])


def filing_rate(info, port: int, clients: int = 8, seconds: float = 5.0, signed_in=None) -> float:
    """Filings per second with `clients` concurrent customers' browsers; `signed_in()` is
    called once they have all signed in, before they file (the RSS phases)."""
    done = []
    ready = threading.Barrier(clients + 1)
    stop = [0.0]

    errors = []

    def worker():
        try:
            c = Client(port)
            c.login(CUSTOMER)
            token = c.csrf("/tickets/new")
            session = dict(c.cookies)
        except Exception as exc:  # noqa: BLE001 (said below, not hidden)
            errors.append(repr(exc))
            ready.abort()
            return
        ready.wait()
        n = 0
        while time.perf_counter() < stop[0]:
            form = {
                "csrf_token": token,
                "submission": uuid.uuid4().hex,
                "kind": "question",
                "subject": "Bench rate",
                "body": "Bench rate",
                "order_number": "",
            }
            status, _h, data = c.request("POST", "/tickets/new", form)
            c.cookies = dict(session)  # the flash the redirect's page would take (see filing)
            n += status in (302, 303)
            if status not in (302, 303) and len(errors) < 3:
                errors.append(f"{status}: {data[:200]!r}")
        done.append(n)

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    # Until the barrier opens nobody stops: a worker may pass it before the line below runs,
    # and on a loaded machine eight sign-ins (Argon2) can take longer than `seconds`.
    stop[0] = math.inf
    ready.wait()  # every client signed in, with its form's token
    started = time.perf_counter()
    if signed_in is not None:
        signed_in()
    stop[0] = started + seconds
    for t in threads:
        t.join()
    print("  measured: filings/s", *errors[:3], flush=True)
    return sum(done) / (time.perf_counter() - started)


RAW_EXPORT = """
SELECT t.number, t.subject, t.created_at, t.first_response_at, t.finished_at, t.kind,
       t.status, d.code, t.priority, t.rating
FROM ticket t LEFT JOIN department d ON d.id = t.department_id
WHERE t.created_at >= %s ORDER BY t.id
"""


# The statement the job itself runs (views/reports.py export_rows, Asia/Jakarta), streamed
# and written the same way as RAW_EXPORT: the floor of like with like. The database shifts
# the times and measures the durations, so its rows are cheaper to read than RAW_EXPORT's
# datetimes; the job's own cost over it is labels, neutralising, the hours and progress.
SAME_EXPORT = """
SELECT t.id, t.number, t.subject,
  DATE_FORMAT(DATE_ADD(t.created_at, INTERVAL 420 MINUTE), '%%Y-%%m-%%d %%H:%%i:%%s'),
  DATE_FORMAT(DATE_ADD(t.first_response_at, INTERVAL 420 MINUTE), '%%Y-%%m-%%d %%H:%%i:%%s'),
  DATE_FORMAT(DATE_ADD(t.finished_at, INTERVAL 420 MINUTE), '%%Y-%%m-%%d %%H:%%i:%%s'),
  t.kind, t.status, d.code, t.priority,
  TIMESTAMPDIFF(MICROSECOND, t.created_at, t.first_response_at),
  TIMESTAMPDIFF(MICROSECOND, t.created_at, t.finished_at),
  CASE WHEN (t.first_response_at IS NULL AND t.first_response_due < %(now)s
    OR t.first_response_at > t.first_response_due
    OR t.finished_at IS NULL AND t.sla_paused_at IS NULL AND t.resolution_due < %(now)s
    OR t.finished_at IS NULL AND t.sla_paused_at > t.resolution_due
    OR t.finished_at > t.resolution_due) THEN 1 ELSE 0 END,
  t.rating
FROM ticket t LEFT OUTER JOIN department d ON t.department_id = d.id
WHERE t.created_at >= %(start)s AND t.created_at < %(end)s ORDER BY t.id
"""


def stream_floor(raw: Raw, sql: str, params, path: Path) -> float:
    """Seconds to stream `sql` through a server-side cursor into a CSV file, nothing else."""
    t0 = time.perf_counter()
    with (
        raw.conn.cursor(pymysql.cursors.SSCursor) as cur,
        open(path, "w", newline="", encoding="utf-8") as out,
    ):
        cur.execute(sql, params)
        writer = csv.writer(out)
        while batch := cur.fetchmany(2000):
            writer.writerows(batch)
    return time.perf_counter() - t0


def export_job(info, client: Client, url: str) -> dict:
    """The report page queues the job (HTTP), `carebox exports run` writes it; beside the raw
    streaming floor (server-side cursor, csv.writer) over the same rows, before and after
    the job (the machine's load drifts), and the job's own statement streamed the same way."""
    out_dir = Path(tempfile.mkdtemp(prefix="carebox-bench1m-exports-"))
    today = date.today()
    start = today - timedelta(days=3 * 365 - 2)
    query = f"date_from={start}&date_to={today + timedelta(days=1)}"
    token = client.csrf("/admin/reports/")
    t0 = time.perf_counter()
    status, _h, _d = client.request(
        "POST", "/admin/reports/exports/", {"csrf_token": token, "format": "csv", "query": query}
    )
    request_ms = (time.perf_counter() - t0) * 1000
    assert status in (302, 303), status
    env = {**os.environ, "DATABASE_URL": url, "CAREBOX_ENV": "development"}
    env["CAREBOX_EXPORT_DIR"] = str(out_dir)
    raw = Raw(url)
    floors = [stream_floor(raw, RAW_EXPORT, (datetime(1000, 1, 1),), out_dir / "raw.csv")]
    load = [os.getloadavg()[0]]
    seconds, rss, _out = child([str(BIN / "carebox"), "exports", "run"], env)
    load.append(os.getloadavg()[0])
    rows = sa.create_engine(url)
    with rows.begin() as conn:
        job = conn.execute(
            sa.text(
                "SELECT id, rows_written, status, TIMESTAMPDIFF(MICROSECOND, started_at,"
                " finished_at) / 1e6 AS own FROM export_job WHERE requested_by_id = :u"
                " ORDER BY id DESC LIMIT 1"
            ),
            {"u": info["ids"]["master"]},
        ).first()
        conn.execute(
            sa.text("DELETE FROM export_job WHERE requested_by_id = :u"),
            {"u": info["ids"]["master"]},
        )
    rows.dispose()
    floors.append(stream_floor(raw, RAW_EXPORT, (datetime(1000, 1, 1),), out_dir / "raw.csv"))
    # The job's range: the local days of the form, Asia/Jakarta (UTC+7).
    bounds = {
        "now": datetime.utcnow(),  # noqa: DTZ003 (naive UTC, as stored)
        "start": datetime.combine(start, datetime.min.time()) - timedelta(hours=7),
        "end": datetime.combine(today + timedelta(days=2), datetime.min.time())
        - timedelta(hours=7),
    }
    same = stream_floor(raw, SAME_EXPORT, bounds, out_dir / "same.csv")
    shutil.rmtree(out_dir, ignore_errors=True)
    print("  measured: export job", flush=True)
    return {
        "request_ms": request_ms,
        "seconds": seconds,
        "floor": statistics.mean(floors),
        "floors": floors,
        "same": same,
        "load": load,
        "rows": job.rows_written if job else None,
        "status": job.status if job else None,
        "own": float(job.own) if job is not None and job.own is not None else None,
        "rss": rss,
    }


CPU: dict[str, float] = {}  # CPU seconds (user + system) of the last child, by command


def child(argv, env) -> tuple[float, float, str]:
    """(seconds, peak RSS in MB, stdout) of one child process (its CPU time in CPU)."""
    started = time.perf_counter()
    proc = subprocess.Popen(  # noqa: S603 (our own console script, fixed arguments)
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    out_chunks = []
    reader = threading.Thread(target=lambda: out_chunks.append(proc.stdout.read()))
    reader.start()
    _pid, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    reader.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    CPU[argv[1]] = usage.ru_utime + usage.ru_stime
    err = proc.stderr.read()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv[-3:])} failed: {err[-2000:]}")
    return seconds, usage.ru_maxrss / 1024, "".join(out_chunks).strip()


# -- tracking import and the stuck parcels ----------------------------------------------------

IMPORT_KINDS = (
    "picked_up",
    "at_hub",
    "departed_hub",
    "at_hub",
    "departed_hub",
    "at_hub",
    "out_for_delivery",
    "at_hub",
)


def tracking_import(url: str, raw: Raw, n_events: int = 1_000_000) -> dict:
    """`carebox tracking import` of a 1M-event CSV (8 events for each of 125,000 loaded
    parcels without tickets, dated before their orders, so no status moves), against the
    same work done by hand; after each, the imported rows are deleted and the orders
    written back as they were (QUIET_PARCELS)."""
    per = len(IMPORT_KINDS)
    n_orders = n_events // per
    path = Path(tempfile.mkdtemp(prefix="carebox-bench1m-import-")) / "events.csv"
    first_event = raw.one("SELECT COALESCE(MAX(id), 0) FROM tracking_event")[0]
    parcels = keep_quiet_parcels(raw, 2, 1, n_orders)
    with path.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(("resi", "event", "occurred_at", "location", "note"))
        written = 0
        for resi, created in parcels:
            written += per
            base = created - timedelta(days=2)
            for step, kind in enumerate(IMPORT_KINDS):
                at = base + timedelta(hours=step + 7)  # WIB
                out.writerow((resi, kind, at.isoformat() + "+07:00", "Hub Bench", ""))
    n_events = written
    env = {**os.environ, "DATABASE_URL": url, "CAREBOX_ENV": "development"}
    seconds, rss, summary = child([str(BIN / "carebox"), "tracking", "import", str(path)], env)
    inserted = raw.one("SELECT COUNT(*) FROM tracking_event WHERE id > %s", (first_event,))[0]
    _delete_events_after(raw, first_event)
    floor = raw_import(raw, path)
    inserted_raw = raw.one("SELECT COUNT(*) FROM tracking_event WHERE id > %s", (first_event,))[0]
    restore_quiet_parcels(raw, first_event)
    path.unlink()
    path.parent.rmdir()
    print("  measured: tracking import", flush=True)
    return {
        "cpu": CPU.get("tracking"),
        "events": n_events,
        "seconds": seconds,
        "rss": rss,
        "summary": summary.splitlines()[-1] if summary else "",
        "inserted": inserted,
        "floor": floor,
        "inserted_raw": inserted_raw,
    }


def _delete_events_after(raw: Raw, first_event: int) -> None:
    with raw.conn.cursor() as cur:
        while cur.execute("DELETE FROM tracking_event WHERE id > %s LIMIT 100000", (first_event,)):
            pass


def raw_import(raw: Raw, path: Path, batch: int = 5000) -> float:
    """The same work by hand: csv module, the batch's resis looked up in one SELECT,
    INSERT IGNORE executemany, the touched orders moved to their latest event (a no-op
    here, as in carebox: the events are older)."""
    started = time.perf_counter()
    # Only placeholders in VALUES: PyMySQL then sends one multi-row INSERT per executemany.
    sql = (
        "INSERT IGNORE INTO tracking_event (order_id, event, occurred_at, utc_offset, location,"
        " note, source, actor_id, recorded_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
    )
    with raw.conn.cursor() as cur, path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f)
        next(reader)

        def flush(rows):
            resis = sorted({r[0] for r in rows})
            cur.execute(
                "SELECT resi, id FROM customer_order WHERE resi IN ("
                + ",".join(["%s"] * len(resis))
                + ")",
                resis,
            )
            ids = dict(cur.fetchall())
            values = []
            now = datetime.utcnow()  # noqa: DTZ003 (naive UTC, as stored)
            for resi, event, occurred, location, note in rows:
                at = datetime.fromisoformat(occurred)
                utc = (at - at.utcoffset()).replace(tzinfo=None)
                values.append((ids[resi], event, utc, 420, location, note, "import", None, now))
            cur.execute("BEGIN")
            cur.executemany(sql, values)
            touched = ",".join(str(i) for i in sorted(ids.values()))
            cur.execute(
                "UPDATE customer_order o JOIN (SELECT order_id, MAX(occurred_at) m FROM"
                f" tracking_event WHERE order_id IN ({touched}) GROUP BY order_id) l"
                " ON l.order_id = o.id SET o.updated_at = o.updated_at WHERE l.m > o.last_event_at"
            )
            cur.execute("COMMIT")

        rows = []
        for row in reader:
            rows.append(row)
            if len(rows) >= batch:
                flush(rows)
                rows = []
        if rows:
            flush(rows)
    return time.perf_counter() - started


def stuck_query(url: str) -> dict:
    from backoffice import create_app
    from backoffice.domain import shipments
    from backoffice.extensions import db

    app = create_app({"ENV_NAME": "development", "SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        stmt = shipments.stuck_orders(3).limit(100)
        compiled = str(stmt.compile(db.engine, compile_kwargs={"literal_binds": True}))
        ours = sample(lambda: db.session.scalars(stmt).all(), 15)
        raw = Raw(url)
        cutoff = datetime.utcnow() - timedelta(days=3)  # noqa: DTZ003
        theirs = sample(
            lambda: raw.run(
                [
                    (
                        "SELECT * FROM customer_order WHERE status IN ('picked_up', 'in_transit')"
                        " AND last_event_at < %s LIMIT 100",
                        (cutoff,),
                    )
                ]
            ),
            15,
        )
        with db.engine.connect() as conn:
            plan = conn.execute(sa.text("EXPLAIN " + compiled)).mappings().all()
        found = len(db.session.scalars(stmt).all())
        db.engine.dispose()
    return {"ours": ours, "theirs": theirs, "plan": [dict(r) for r in plan], "found": found}


# -- the table -------------------------------------------------------------------------------


def met(target: str, ms: float, ratio: float, stmts: str) -> str:
    """Whether a row meets its target ("≤ 20 ms, ≤ 2.5×, ≤ 6 stmts")."""
    ok = True
    for number, unit in re.findall(r"≤ ([\d.]+) ?(ms|×| stmts)", target):
        limit = float(number)
        if unit == "ms":
            ok &= ms <= limit
        elif unit == "×":
            ok &= ratio <= limit
        elif stmts.isdigit():
            ok &= int(stmts) <= limit
    return "yes" if ok else "no"


def print_table(prepared, table, rate, export, rss, imported, stuck, load_before, runs, floor=None):
    load_after = os.getloadavg()
    print()
    print(
        f"carebox at {prepared['tickets']:,} tickets (MariaDB, gunicorn 2 workers × 4 threads,"
        f" {runs} requests per row after 3 warm-up; load average {load_before[0]:.1f} before,"
        f" {load_after[0]:.1f} after, {os.cpu_count()} CPUs)"
    )
    print()
    print(
        "| operation | carebox p50 | p99 | ideal SQL p50 | p99 | ratio (p50) | statements"
        " | target | met |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---|---|")
    for name, ours, theirs, stmts, target in table:
        if ours is None:
            print(f"| {name} | failed: {theirs} | | | | | | {target} | no |")
            continue
        ratio = p50(ours) / p50(theirs) if p50(theirs) else float("nan")
        if len(ours) < runs:
            name += f" ({len(ours)} runs)"
        print(
            f"| {name} | {p50(ours):.1f} ms | {p99(ours):.1f} ms | {p50(theirs):.2f} ms |"
            f" {p99(theirs):.2f} ms | {ratio:.1f}× | {stmts} | {target} |"
            f" {met(target, p50(ours), ratio, stmts)} |"
        )
    if "error" not in stuck:
        s_ours, s_raw = p50(stuck["ours"]), p50(stuck["theirs"])
        print(
            f"| shipments with no event for 3 days (first 100 of them, in-process) |"
            f" {s_ours:.1f} ms | {p99(stuck['ours']):.1f} ms | {s_raw:.2f} ms |"
            f" {p99(stuck['theirs']):.2f} ms | {s_ours / s_raw:.1f}× | 1 | no full scan |"
        )
    print()
    if isinstance(floor, dict) and "error" not in floor:
        print(
            "- floor (a trivial Flask route, bench/floor_app.py, same gunicorn settings):"
            f" 304 p50 {p50(floor['304']):.2f} ms, 200 p50 {p50(floor['200']):.2f} ms"
        )
    if rate is SKIPPED:
        pass
    elif isinstance(rate, dict):
        print(f"- filing throughput: failed ({rate['error']})")
    else:
        print(f"- filing throughput, 8 concurrent customers for 5 s: {rate:.0f} filings/s (≥ 150)")
    if export is SKIPPED:
        pass
    elif "error" in export:
        print(f"- export job: failed ({export['error']})")
    else:
        print_export(export)
    if imported is SKIPPED:
        pass
    elif "error" in imported:
        print(f"- tracking import: failed ({imported['error']})")
    else:
        print_import(imported)
    print(f"- gunicorn workers' peak RSS: {', '.join(f'{r:.0f} MB' for r in rss)} (target ≤ 150)")
    print(f"- stuck parcels found: {stuck.get('found', stuck.get('error'))} (limit 100); EXPLAIN:")
    for row in stuck.get("plan", []):
        print(f"    { ({k: row.get(k) for k in ('table', 'type', 'key', 'rows', 'Extra')}) }")
    if prepared.get("load_seconds"):
        raw = prepared.get("raw_seconds")
        print(
            f"- dataset: seed-bulk took {prepared['load_seconds']:.0f} s"
            + (f", raw INSERT … SELECT of the same rows {raw:.0f} s" if raw else "")
            + f" (built {prepared['loaded_at']})"
        )


def print_export(export):
    own = export["own"] or export["seconds"]
    print(
        f"- export job, every ticket as CSV: request {export['request_ms']:.0f} ms; the job"
        f" {own:.1f} s from claim to done ({export['rows']:,} rows, {export['status']};"
        f" `carebox exports run` {export['seconds']:.1f} s with its start-up), raw streaming"
        f" floor {export['floor']:.1f} s (mean of {export['floors'][0]:.1f} s before the job and"
        f" {export['floors'][1]:.1f} s after), ratio {own / export['floor']:.2f} (target ≤ 1.5);"
        f" the job's own statement streamed the same way {export['same']:.1f} s, ratio"
        f" {own / export['same']:.2f}; load average {export['load'][0]:.1f} at the job's start,"
        f" {export['load'][1]:.1f} at its end; worker peak RSS {export['rss']:.0f} MB"
    )


def print_import(imported):
    found = re.search(r"rows in ([\d.]+) s", imported["summary"])
    own = float(found.group(1)) if found else imported["seconds"]
    n = imported["events"]
    print(
        f"- `carebox tracking import` of a {n:,}-event CSV: {own:.1f} s = {n / own:,.0f}"
        f" events/s (target ≥ 20,000; the process with its start-up {imported['seconds']:.1f} s),"
        f" peak RSS {imported['rss']:.0f} MB, {imported['inserted']:,} rows written"
        f" ({imported['summary']}); the same work by hand {imported['floor']:.1f} s ="
        f" {n / imported['floor']:,.0f} events/s; carebox ÷ by hand {own / imported['floor']:.2f};"
        f" the import process used {imported['cpu']:.1f} CPU-seconds"
        f" ({n / imported['cpu']:,.0f} events per CPU-second: what one idle core would do"
        " if the database kept up)"
    )

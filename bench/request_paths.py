"""The single-ticket paths of issue 16 over HTTP, each beside the raw SQL doing the same
data work, in the same run: the desk (20 messages), the desk's and the portal chat's
poll when nothing is new (304), filing a ticket, the list search by ticket number,
resi, e-mail, phone and a word, and the master admin's dashboard.

Usage: DATABASE_URL=... python bench/request_paths.py   (after `carebox seed-bulk`)
Prints, per case, the median of 15 requests (the Flask test client, one process),
the median of the raw SQL, their ratio and the statements one request runs; then
the process's peak RSS (the bench is one worker doing every operation in turn).
"""

from __future__ import annotations

import re
import resource
import statistics
import time
import uuid
from urllib.parse import quote_plus

from common import bench_app, timed
from sqlalchemy import event, select, text

from backoffice.domain import permissions as perm
from backoffice.domain import tickets as lifecycle
from backoffice.domain.phones import normalise_phone
from backoffice.extensions import db
from backoffice.models import TicketKind, User
from backoffice.security_setup import ensure_roles
from backoffice.seed import ensure_user

MESSAGES = 20

RAW_DESK = [
    # the user and roles, the ticket with its customer, department and order, the
    # messages with their authors' names, the events with their actors' names.
    "SELECT u.id, u.fs_uniquifier, u.active, r.name FROM user u JOIN roles_users ru "
    "ON ru.user_id = u.id JOIN role r ON r.id = ru.role_id WHERE u.fs_uniquifier = :q",
    "SELECT t.*, c.name, c.email, c.phone, d.code, o.number FROM ticket t "
    "JOIN user c ON c.id = t.customer_id LEFT JOIN department d ON d.id = t.department_id "
    "LEFT JOIN customer_order o ON o.id = t.order_id WHERE t.number = :n",
    "SELECT m.*, a.name FROM ticket_message m LEFT JOIN user a ON a.id = m.author_id "
    "WHERE m.ticket_id = :t ORDER BY m.id DESC LIMIT 300",
    "SELECT e.*, a.name FROM ticket_event e LEFT JOIN user a ON a.id = e.actor_id "
    "WHERE e.ticket_id = :t ORDER BY e.id DESC LIMIT 200",
]
RAW_POLL = [
    "SELECT u.id, u.active, r.name FROM user u JOIN roles_users ru ON ru.user_id = u.id "
    "JOIN role r ON r.id = ru.role_id WHERE u.fs_uniquifier = :q",
    "SELECT id, version_id FROM ticket WHERE number = :n AND customer_id = :c",
]
RAW_FILE = [
    "SELECT u.id, u.active, r.name FROM user u JOIN roles_users ru ON ru.user_id = u.id "
    "JOIN role r ON r.id = ru.role_id WHERE u.fs_uniquifier = :q",
    "INSERT INTO ticket (number, kind, status, priority, subject, customer_id, created_at, "
    "updated_at, last_message_at, last_from_staff, version_id, first_response_due, "
    "resolution_due, reopen_count) VALUES (:num, 'complaint', 'progress', 'normal', 's', :c, "
    "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 0, 1, CURRENT_TIMESTAMP, "
    "CURRENT_TIMESTAMP, 0)",
    "INSERT INTO ticket_message (ticket_id, author_id, from_staff, internal, body, channel, "
    "created_at) SELECT id, customer_id, 0, 0, 'b', 'portal', CURRENT_TIMESTAMP FROM ticket "
    "WHERE number = :num",
    "INSERT INTO ticket_event (ticket_id, actor_id, action, to_status, note, created_at) "
    "SELECT id, customer_id, 'filed', 'progress', '', CURRENT_TIMESTAMP FROM ticket "
    "WHERE number = :num",
]


def login(client, email: str, password: str) -> None:
    html = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html).group(1)
    resp = client.post("/login", data={"email": email, "password": password, "csrf_token": token})
    assert resp.status_code == 302, resp.status_code


def main() -> None:  # noqa: PLR0915 - one linear script
    app = bench_app(RATELIMIT_ENABLED=False)  # one client files many tickets
    password = uuid.uuid4().hex
    tag = password[:8]
    with app.app_context():
        ensure_roles()
        staff = ensure_user(f"bench-{tag}@carebox.example", password, perm.MASTER_ADMIN)
        customer = ensure_user(f"bench-c-{tag}@carebox.example", password, perm.CUSTOMER)
        db.session.flush()
        ticket = lifecycle.file_ticket(customer, TicketKind.COMPLAINT, "Paket rusak", "Halo")
        for i in range(MESSAGES - 1):
            author = staff if i % 2 else customer
            lifecycle.post_message(ticket, author, f"Pesan {i}")
        db.session.commit()
        number, ticket_id, customer_id = ticket.number, ticket.id, customer.id
        staff_q, customer_q = staff.fs_uniquifier, customer.fs_uniquifier
        total = db.session.execute(text("SELECT COUNT(*) FROM ticket")).scalar()
        probe = (
            db.session.execute(
                text(
                    "SELECT t.number, o.resi, u.email, u.phone FROM ticket t JOIN user u "
                    "ON u.id = t.customer_id JOIN customer_order o ON o.id = t.order_id "
                    "WHERE t.status = 'team' ORDER BY t.id LIMIT 1 OFFSET 321"
                )
            )
            .one()
            ._asdict()
        )
        if not probe["phone"]:  # seed-bulk leaves phones out: give this customer one
            owner = db.session.scalar(select(User).where(User.email == probe["email"]))
            owner.phone = f"0812{owner.id:08d}"
            db.session.commit()
            probe["phone"] = owner.phone
        print(f"{db.engine.dialect.name}: {total:,} tickets")

    desk_client, portal_client = app.test_client(), app.test_client()
    login(desk_client, f"bench-{tag}@carebox.example", password)
    login(portal_client, f"bench-c-{tag}@carebox.example", password)

    statements: list[int] = []
    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", lambda *a, **k: statements.append(1))

    def count(fn) -> int:
        statements.clear()
        fn()
        return len(statements)

    def get(client, url, status=200, **kw):
        def run():
            r = client.get(url, **kw)
            assert r.status_code == status, (url, r.status_code)

        return run

    # Requests run outside any app context, as under gunicorn: each gets its own
    # context, session and `g` (a shared one would carry the user between clients).
    with app.app_context():
        engine = db.engine

    def raw(sqls, **params):
        def run():
            with engine.connect() as conn:
                for sql in sqls:
                    conn.execute(text(sql), params).all()

        return run

    def raw_write(sqls):
        def run():
            with engine.begin() as conn:
                params = {"num": f"BX-{uuid.uuid4().hex[:12]}", "c": customer_id, "q": customer_q}
                for sql in sqls:
                    conn.execute(text(sql), params)

        return run

    rows = []

    def case(name, ours, theirs, runs=15):
        n = count(ours)
        rows.append((name, timed(ours, runs=runs), timed(theirs, runs=runs), n))

    desk = f"/admin/tickets/desk/{number}/"
    etag = desk_client.get(desk + "poll?after=0").headers["ETag"].strip('"')
    portal_poll = f"/tickets/{number}/messages"
    portal_etag = portal_client.get(portal_poll).headers["ETag"].strip('"')

    def file_once() -> tuple[float, int]:
        """(ms, statements) of one filing's POST; the form's GET is not timed."""
        html = portal_client.get("/tickets/new").get_data(as_text=True)
        form = {
            "csrf_token": re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html).group(1),
            "submission": re.search(r'name="submission"[^>]*value="([^"]+)"', html).group(1),
            "kind": "complaint",
            "subject": "Paket belum sampai",
            "body": "Sudah lima hari.",
        }
        statements.clear()
        start = time.perf_counter()
        r = portal_client.post("/tickets/new", data=form)
        took = (time.perf_counter() - start) * 1000
        assert r.status_code == 302, r.status_code
        return took, len(statements)

    case(
        "desk, 20 messages",
        get(desk_client, desk),
        raw(RAW_DESK, q=staff_q, n=number, t=ticket_id),
    )
    case(
        "desk poll, nothing new (304)",
        get(desk_client, desk + "poll?after=0", 304, headers={"If-None-Match": f'"{etag}"'}),
        raw(RAW_POLL, q=staff_q, n=number, c=customer_id),
    )
    case(
        "portal chat poll, nothing new (304)",
        get(portal_client, portal_poll, 304, headers={"If-None-Match": f'"{portal_etag}"'}),
        raw(RAW_POLL, q=customer_q, n=number, c=customer_id),
    )
    filings = [file_once() for _ in range(17)][2:]
    rows.append(
        (
            "file a ticket (POST)",
            statistics.median(ms for ms, _n in filings),
            timed(raw_write(RAW_FILE)),
            filings[-1][1],
        )
    )
    searches = [
        (
            "search ticket number",
            probe["number"],
            "SELECT id FROM ticket WHERE number = :v AND status = 'team'",
        ),
        (
            "search resi",
            probe["resi"],
            "SELECT t.id FROM ticket t JOIN customer_order o ON o.id = t.order_id "
            "WHERE o.resi = :v AND t.status = 'team'",
        ),
        (
            "search e-mail",
            probe["email"],
            "SELECT t.id FROM ticket t JOIN user u ON u.id = t.customer_id "
            "WHERE u.email = :v AND t.status = 'team'",
        ),
        (
            "search phone",
            probe["phone"],
            "SELECT t.id FROM ticket t JOIN user u ON u.id = t.customer_id "
            "WHERE u.phone_key = :k AND t.status = 'team'",
        ),
        (
            "search a word (rusak)",
            "rusak",
            "SELECT id FROM ticket WHERE status = 'team' AND subject LIKE '%rusak%' "
            "ORDER BY created_at DESC LIMIT 50",
        ),
    ]
    for name, term, sql in searches:
        case(
            name,
            get(desk_client, f"/admin/tickets/team/?search={quote_plus(term)}"),
            raw([sql], v=term, k=normalise_phone(term)),
            runs=9,
        )
    case(
        "master dashboard",
        get(desk_client, "/admin/"),
        raw(["SELECT status, COUNT(*) FROM ticket GROUP BY status"]),
        runs=5,
    )

    print(f"{'case':40} {'carebox ms':>11} {'raw SQL ms':>11} {'ratio':>7} {'stmts':>6}")
    for name, ours, theirs, n in rows:
        print(f"{name:40} {ours:11.2f} {theirs:11.2f} {ours / theirs:7.2f} {n:6d}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of this one process: {peak:.0f} MB")


if __name__ == "__main__":
    main()

"""Back-office pages over HTTP (the Flask test client) on a bulk database.

Usage: DATABASE_URL=... python bench/admin_pages.py   (after `carebox seed-bulk`)
For each page: the median of 9 requests (5 for the home page), the SQL
statements one request runs, and hand-written raw SQL doing the same data work
(page rows plus an exact count) in the same run. The raw search SQL is the
best plain SQL for each kind of match; the pages count up to 10,000 and look
for words inside subjects in the last 30 days only (views/ticket_search.py).
"""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from urllib.parse import quote_plus

from common import bench_app, report, timed
from sqlalchemy import event, text

from backoffice.domain import permissions as perm
from backoffice.extensions import db
from backoffice.models.base import utcnow
from backoffice.security_setup import ensure_roles
from backoffice.seed import ensure_user

RAW_LIST = (
    "SELECT t.*, u.email, u.name, d.code, a.email, o.number FROM ticket t "
    "LEFT JOIN user u ON u.id = t.customer_id LEFT JOIN department d ON d.id = t.department_id "
    "LEFT JOIN user a ON a.id = t.assignee_id LEFT JOIN customer_order o ON o.id = t.order_id "
    "WHERE t.status = :s{where} ORDER BY t.created_at DESC, t.id DESC LIMIT :n"
)
RAW_COUNT = "SELECT COUNT(*) FROM ticket t WHERE t.status = :s{where}"
BY_CUSTOMER = " AND t.customer_id IN (SELECT id FROM user WHERE {column} LIKE :p)"
RAW_WHERE = {
    None: "",
    "number": " AND t.number LIKE :p",
    "email": BY_CUSTOMER.format(column="email"),
    "name": BY_CUSTOMER.format(column="name"),
    "subject": " AND t.subject LIKE :p",
    "recent subject": " AND t.created_at >= :since AND t.subject LIKE :p",
}


def main() -> None:
    app = bench_app()
    password = uuid.uuid4().hex
    with app.app_context():
        ensure_roles()
        email = f"bench-{password[:8]}@carebox.example"
        ensure_user(email, password, perm.MASTER_ADMIN)
        db.session.commit()
        total = db.session.execute(text("SELECT COUNT(*) FROM ticket")).scalar()
        print(f"{db.engine.dialect.name}: {total:,} tickets")

    client = app.test_client()
    html = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html).group(1)
    resp = client.post("/login", data={"email": email, "password": password, "csrf_token": token})
    assert resp.status_code == 302, resp.status_code

    with app.app_context():
        finished_number = db.session.execute(
            text(
                "SELECT number FROM ticket WHERE status = 'finished' ORDER BY id LIMIT 1 OFFSET 777"
            )
        ).scalar()
        customer_email = db.session.execute(
            text("SELECT email FROM user WHERE email LIKE 'c1234-%'")
        ).scalar()

    since = utcnow() - timedelta(days=30)
    statements = []
    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", lambda *a, **k: statements.append(1))

    def page(url):
        def run():
            r = client.get(url)
            assert r.status_code == 200, (url, r.status_code)

        return run

    def raw(status, n, kind=None, pattern=None):
        where = RAW_WHERE[kind]

        def run():
            with app.app_context():
                params = {"s": status, "n": n, "p": pattern, "since": since}
                db.session.execute(text(RAW_LIST.format(where=where)), params).all()
                db.session.execute(text(RAW_COUNT.format(where=where)), params).scalar()

        return run

    def cost(url) -> int:
        page(url)()  # warm, then count the statements of one request
        statements.clear()
        page(url)()
        return len(statements)

    T, F = "/admin/tickets/team/", "/admin/tickets/finished/"
    cases = [
        ("team list, 25 rows", T, ("team", 25)),
        ("team list, 100 rows", T + "?page_size=100", ("team", 100)),
        ("finished list, page 200", F + "?page=200", ("finished", 25)),
        ("progress list, 25 rows", "/admin/tickets/progress/", ("progress", 25)),
        (
            "search number, exact",
            F + f"?search={finished_number}",
            ("finished", 25, "number", finished_number),
        ),
        (
            "search number, start",
            F + "?search=CX-2026-0001",
            ("finished", 25, "number", "CX-2026-0001%"),
        ),
        (
            "search e-mail, exact",
            T + f"?search={quote_plus(customer_email)}",
            ("team", 25, "email", customer_email),
        ),
        ("search e-mail, start", T + "?search=c1234", ("team", 25, "email", "c1234%")),
        ("search name", T + "?search=Pelanggan+1234", ("team", 25, "name", "Pelanggan 1234%")),
        (
            "search subject, start",
            T + "?search=Paket+rusak",
            ("team", 25, "subject", "Paket rusak%"),
        ),
        (
            "search subject, word (30 d)",
            F + "?search=rusak",
            ("finished", 25, "recent subject", "%rusak%"),
        ),
    ]
    rows = []
    for name, url, args in cases:
        count = cost(url)
        rows.append(
            (f"{name} [{count} stmts]", timed(page(url), runs=9), timed(raw(*args), runs=9))
        )
    report(rows)
    count = cost("/admin/")
    print(
        f"{'home (master dashboard) [' + str(count) + ' stmts]':44} "
        f"{timed(page('/admin/'), runs=5):11.2f}"
    )
    print("(raw SQL for the lists counts exactly; raw 'page 200' has no OFFSET)")


if __name__ == "__main__":
    main()

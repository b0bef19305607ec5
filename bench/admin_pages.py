"""Back-office pages over HTTP (the Flask test client) on a bulk database.

Usage: DATABASE_URL=... python bench/admin_pages.py   (after `carebox seed-bulk`)
For each page: the median of 9 requests, the SQL statements it ran, and the
raw SQL doing the same data work (page rows plus count) in the same run.
"""

from __future__ import annotations

import re
import uuid

from common import bench_app, report, timed
from sqlalchemy import event, text

from backoffice.domain import permissions as perm
from backoffice.extensions import db
from backoffice.security_setup import ensure_roles
from backoffice.seed import ensure_user

RAW_LIST = (
    "SELECT t.*, u.email, u.name, d.code, a.email, o.number FROM ticket t "
    "LEFT JOIN user u ON u.id = t.customer_id LEFT JOIN department d ON d.id = t.department_id "
    "LEFT JOIN user a ON a.id = t.assignee_id LEFT JOIN customer_order o ON o.id = t.order_id "
    "WHERE t.status = :s ORDER BY t.created_at DESC, t.id DESC LIMIT :n"
)
RAW_COUNT = "SELECT COUNT(*) FROM ticket WHERE status = :s"


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

    statements = []
    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", lambda *a, **k: statements.append(1))

    def page(url):
        def run():
            r = client.get(url)
            assert r.status_code == 200, (url, r.status_code)

        return run

    def raw(status, n):
        def run():
            with app.app_context():
                db.session.execute(text(RAW_LIST), {"s": status, "n": n}).all()
                db.session.execute(text(RAW_COUNT), {"s": status}).scalar()

        return run

    cases = [
        ("team list, 25 rows", "/admin/tickets/team/", ("team", 25)),
        ("team list, 100 rows", "/admin/tickets/team/?page_size=100", ("team", 100)),
        ("finished list, page 200", "/admin/tickets/finished/?page=200", ("finished", 25)),
        ("progress list, 25 rows", "/admin/tickets/progress/", ("progress", 25)),
    ]
    rows = []
    for name, url, (status, n) in cases:
        statements.clear()
        page(url)()
        count = len(statements)
        rows.append(
            (f"{name} [{count} stmts]", timed(page(url), runs=9), timed(raw(status, n), runs=9))
        )
    report(rows)
    for name, url in [
        ("home (master dashboard)", "/admin/"),
        ("search by number", "/admin/tickets/finished/?search=CX-2026-0001"),
        ("search by customer e-mail", "/admin/tickets/team/?search=c1234"),
    ]:
        statements.clear()
        page(url)()
        print(f"{name:44} {timed(page(url), runs=5):11.2f} ms  [{len(statements)} stmts]")


if __name__ == "__main__":
    main()

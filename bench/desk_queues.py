"""The desk's queues (issue 13): the lists in their default order (most urgent first,
by the stored next_due_at), with the assignee filter and the "who spoke last" filter,
over HTTP, against hand-written SQL doing the same data work in the same run.

Usage: DATABASE_URL=... python bench/desk_queues.py   (after `carebox seed-bulk`)
Prints the median of 9 requests per page, the raw SQL's median (page rows plus a
count capped like the pages'), the ratio, and the EXPLAIN of the raw queue query.
"""

from __future__ import annotations

import re
import uuid

from common import bench_app, report, timed
from sqlalchemy import text

from backoffice.domain import permissions as perm
from backoffice.extensions import db
from backoffice.security_setup import ensure_roles
from backoffice.seed import ensure_user

RAW_PAGE = (
    "SELECT t.*, u.email, u.name, d.code, a.email, o.number, v.opened_at FROM ticket t "
    "LEFT JOIN user u ON u.id = t.customer_id LEFT JOIN department d ON d.id = t.department_id "
    "LEFT JOIN user a ON a.id = t.assignee_id LEFT JOIN customer_order o ON o.id = t.order_id "
    "LEFT JOIN ticket_viewer v ON v.ticket_id = t.id AND v.user_id = t.assignee_id "
    "WHERE t.status = 'team'{where} ORDER BY t.next_due_at, t.id LIMIT 50"
)
RAW_COUNT = (
    "SELECT COUNT(*) FROM (SELECT t.id FROM ticket t WHERE t.status = 'team'{where} LIMIT 10001) c"
)


def main() -> None:
    app = bench_app()
    password = uuid.uuid4().hex
    with app.app_context():
        ensure_roles()
        email = f"bench-{password[:8]}@carebox.example"
        ensure_user(email, password, perm.MASTER_ADMIN)
        db.session.commit()
        total = db.session.execute(text("SELECT COUNT(*) FROM ticket")).scalar()
        assignee = db.session.execute(
            text("SELECT assignee_id FROM ticket WHERE assignee_id IS NOT NULL LIMIT 1")
        ).scalar()
        print(f"{db.engine.dialect.name}: {total:,} tickets")

    client = app.test_client()
    html = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html).group(1)
    resp = client.post("/login", data={"email": email, "password": password, "csrf_token": token})
    assert resp.status_code == 302, resp.status_code

    cases = [
        ("team, most urgent first", "", ""),
        ("team, assignee=none", "assignee=none", " AND t.assignee_id IS NULL"),
        (f"team, assignee={assignee}", f"assignee={assignee}", f" AND t.assignee_id = {assignee}"),
        ("team, spoke=customer", "spoke=customer", " AND t.last_from_staff = 0"),
    ]
    rows = []
    with app.app_context():
        for name, query, where in cases:

            def page(query=query):
                r = client.get(f"/admin/tickets/team/?page_size=50&{query}")
                assert r.status_code == 200, r.status_code

            def raw(where=where):
                with db.engine.connect() as conn:
                    conn.execute(text(RAW_PAGE.format(where=where))).all()
                    conn.execute(text(RAW_COUNT.format(where=where))).scalar()

            rows.append((name, timed(page, runs=9), timed(raw, runs=9)))
        report(rows)
        with db.engine.connect() as conn:
            explain = "EXPLAIN QUERY PLAN " if db.engine.dialect.name == "sqlite" else "EXPLAIN "
            for name, _query, where in cases:
                print(f"\nEXPLAIN {name}:")
                for line in conn.execute(text(explain + RAW_PAGE.format(where=where))):
                    print("  ", tuple(line))


if __name__ == "__main__":
    main()

"""The four ticket lists (issue 16 target 1, issue 13 "Speed") over HTTP beside their SQL.

Usage: DATABASE_URL=... python bench/ticket_lists.py [--runs N]   (after `carebox seed-bulk`)

Each case is a list URL as an agent opens it: the default order (most urgent first:
next_due_at, resolution_due, or newest for Finished), filtered by department, by
assignee (`none`, a colleague), by "breaching soon", by who spoke last, page 1 and
the deepest page the pager offers (the count stops at COUNT_CAP). Beside it, in the
same run, the ideal SQL doing the same data work on one connection: the session's
user row, the page's ids in the list's order (LIMIT/OFFSET), those rows with their
customer, assignee, department, order and the assignee's last opening, and the
capped count. Prints medians, the ratio and the statements one request runs; on
MariaDB also the EXPLAIN of each case's ids query (the one that can scan).
Read-only apart from one bench staff user.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import statistics
import time
import uuid

from common import bench_app
from sqlalchemy import event, text

from backoffice.domain import permissions as perm
from backoffice.extensions import db
from backoffice.models.base import utcnow
from backoffice.security_setup import ensure_roles
from backoffice.seed import ensure_user
from backoffice.views.filters import BreachingSoonFilter, DepartmentFilter

ORDER = {
    "progress": "next_due_at, id",
    "team": "next_due_at, id",
    "responded": "resolution_due, id",
    "finished": "created_at DESC, id DESC",
}
USER_SQL = (
    "SELECT u.*, r.name FROM user u LEFT JOIN roles_users ru ON ru.user_id = u.id"
    " LEFT JOIN role r ON r.id = ru.role_id WHERE u.fs_uniquifier = :uniq"
)
ROWS_SQL = (
    "SELECT t.*, u.email, u.name, d.code, a.email, o.number, v.opened_at FROM ticket t"
    " LEFT JOIN user u ON u.id = t.customer_id LEFT JOIN department d ON d.id = t.department_id"
    " LEFT JOIN user a ON a.id = t.assignee_id LEFT JOIN customer_order o ON o.id = t.order_id"
    " LEFT JOIN ticket_viewer v ON v.ticket_id = t.id AND v.user_id = t.assignee_id"
    " WHERE t.id IN ({ids})"
)
PAGE = 25


def interleaved(ours, raw, runs: int) -> tuple[float, float]:
    """Medians (ms) of `ours` and `raw`, run in turns so that a busy machine slows
    both alike (the ratio is the figure to read)."""
    ours(), raw()
    a, b = [], []
    for _ in range(runs):
        for fn, out in ((ours, a), (raw, b)):
            start = time.perf_counter()
            fn()
            out.append((time.perf_counter() - start) * 1000)
    return statistics.median(a), statistics.median(b)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    app = bench_app()
    password = uuid.uuid4().hex
    with app.app_context():
        ensure_roles()
        email = f"bench-{password[:8]}@carebox.example"
        ensure_user(email, password, perm.MASTER_ADMIN)
        db.session.commit()
        q = lambda sql, **p: db.session.execute(text(sql), p).scalar()  # noqa: E731
        total = q("SELECT COUNT(*) FROM ticket")
        uniq = q("SELECT fs_uniquifier FROM user WHERE email = :e", e=email)
        department = q("SELECT department_id FROM ticket WHERE status = 'team' LIMIT 1")
        colleague = q("SELECT assignee_id FROM ticket WHERE status = 'responded' LIMIT 1")
        view = next(v for v in app.extensions["admin"][0]._views if v.endpoint == "tickets_team")
        dept_arg, soon_arg = view.filter_arg(DepartmentFilter), view.filter_arg(BreachingSoonFilter)
        from backoffice.views import sqlhelpers

        cap = sqlhelpers.COUNT_CAP
        dialect = db.engine.dialect.name
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        print(f"{dialect}: {total:,} tickets, {args.runs} runs per case (median ms), load {load}")

    client = app.test_client()
    html = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html).group(1)
    resp = client.post("/login", data={"email": email, "password": password, "csrf_token": token})
    assert resp.status_code == 302, resp.status_code

    now = utcnow()
    soon = "status IN ('progress', 'team') AND sla_warn_at <= :now AND next_due_at > :now"
    cases = []  # (name, status, url query, SQL condition)
    for status in ORDER:
        cases.append((f"{status}", status, "", ""))
        cases.append((f"{status}, department", status, f"{dept_arg}={department}",
                      " AND department_id = :dept"))  # fmt: skip
    cases += [
        ("team, assignee=none", "team", "assignee=none", " AND assignee_id IS NULL"),
        ("team, breaching soon", "team", f"{soon_arg}=1", f" AND {soon}"),
        ("team, spoke=customer", "team", "spoke=customer", " AND last_from_staff = 0"),
        (
            "responded, assignee=colleague",
            "responded",
            f"assignee={colleague}",
            " AND assignee_id = :who",
        ),  # fmt: skip
    ]
    params = {"dept": department, "who": colleague, "now": now, "cap": cap + 1, "uniq": uniq}
    statements: list[str] = []
    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", lambda *a, **k: statements.append(a[2]))

    def deepest(status: str, where: str) -> int:
        with app.app_context():
            sql = f"SELECT COUNT(*) FROM (SELECT id FROM ticket WHERE status = :s{where}"
            sql += " LIMIT :cap) c"
            count = db.session.execute(text(sql), {**params, "s": status}).scalar()
        return max(0, math.ceil(min(count, cap) / PAGE) - 1)

    rows, plans = [], []
    for name, status, query, where in cases:
        for page in sorted({0, deepest(status, where)}):
            url = f"/admin/tickets/{status}/?{query}" + (f"&page={page}" if page else "")
            ids_sql = (
                f"SELECT id FROM ticket WHERE status = :s{where} ORDER BY {ORDER[status]}"
                f" LIMIT {PAGE} OFFSET {page * PAGE}"
            )
            count_sql = (
                f"SELECT COUNT(*) FROM (SELECT id FROM ticket WHERE status = :s{where}"
                " LIMIT :cap) c"
            )

            def get(url=url):
                r = client.get(url)
                assert r.status_code == 200, (url, r.status_code)

            def raw(ids_sql=ids_sql, count_sql=count_sql, status=status):
                p = {**params, "s": status}
                with db.engine.connect() as conn:
                    conn.execute(text(USER_SQL), p).all()
                    ids = [r[0] for r in conn.execute(text(ids_sql), p)]
                    conn.execute(text(ROWS_SQL.format(ids=",".join(map(str, ids)) or "0"))).all()
                    conn.execute(text(count_sql), p).scalar()

            get()
            statements.clear()
            get()
            cost = len(statements)
            label = f"{name}, page {page + 1}"
            with app.app_context():
                rows.append((label, cost, *interleaved(get, raw, args.runs)))
            plans.append((label, ids_sql, status))

    print(f"{'case':44} {'stmts':>5} {'carebox':>8} {'raw SQL':>8} {'ratio':>6}")
    for label, cost, ours, ideal in rows:
        print(f"{label:44} {cost:5} {ours:8.2f} {ideal:8.2f} {ours / ideal:6.2f}")
    print("load at the end:", ", ".join(f"{x:.1f}" for x in os.getloadavg()))
    if dialect != "sqlite":
        with app.app_context(), db.engine.connect() as conn:
            for label, sql, status in plans:
                print(f"\nEXPLAIN {label}: {sql}")
                for line in conn.execute(text("EXPLAIN " + sql), {**params, "s": status}):
                    print("  ", tuple(line))


if __name__ == "__main__":
    main()

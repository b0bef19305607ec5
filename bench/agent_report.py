"""The per-agent report (issue 13 item 9): `agent_report.agent_rows` over the last 30 days
and over everything, against hand-written SQL doing the same data work in the same run
(the same grouped counts and the same window-function medians, as text).

Usage: DATABASE_URL=... python bench/agent_report.py   (after `carebox seed-bulk`)
Read-only: it signs nobody in and writes nothing. Prints the median of 9 runs each,
the raw SQL's median, the ratio, and the EXPLAIN of the raw replies query.
"""

from __future__ import annotations

from datetime import timedelta

from common import bench_app, report, timed
from sqlalchemy import text

from backoffice.extensions import db
from backoffice.models import Ticket
from backoffice.models.base import utcnow
from backoffice.views.agent_report import agent_rows

SCOPE = "t.created_at >= :start"
REPLIES = (
    "SELECT {author}, COUNT(*) FROM ticket t JOIN ticket_message m ON m.ticket_id = t.id"
    " WHERE {scope} AND m.from_staff = 1 AND m.internal = 0 AND m.by_system = 0"
    " GROUP BY {author}"
)
FIRST = (
    "SELECT g, AVG(v) FROM (SELECT {author} AS g, t.first_response_work AS v,"
    " ROW_NUMBER() OVER (PARTITION BY {author} ORDER BY t.first_response_work) AS rn,"
    " COUNT(*) OVER (PARTITION BY {author}) AS cnt"
    " FROM ticket t JOIN ticket_message m ON m.ticket_id = t.id"
    " WHERE {scope} AND t.first_response_at IS NOT NULL AND m.from_staff = 1"
    " AND m.internal = 0 AND m.by_system = 0 AND m.created_at = t.first_response_at"
    " AND t.first_response_work IS NOT NULL) x"
    " WHERE 2 * rn IN (cnt, cnt + 1, cnt + 2) GROUP BY g"
)
FINISHED = (
    "SELECT {actor}, COUNT(*), COUNT(CASE WHEN t.first_response_at IS NOT NULL"
    " THEN t.rating END), SUM(CASE WHEN t.first_response_at IS NOT NULL THEN t.rating END)"
    " FROM ticket t JOIN ticket_event e ON e.ticket_id = t.id"
    " WHERE {scope} AND t.finished_at IS NOT NULL AND e.action = 'finished'"
    " AND e.created_at = t.finished_at AND e.actor_id <> t.customer_id GROUP BY {actor}"
)
RESOLUTION = (
    "SELECT g, AVG(v) FROM (SELECT {actor} AS g, t.resolution_work AS v,"
    " ROW_NUMBER() OVER (PARTITION BY {actor} ORDER BY t.resolution_work) AS rn,"
    " COUNT(*) OVER (PARTITION BY {actor}) AS cnt"
    " FROM ticket t JOIN ticket_event e ON e.ticket_id = t.id"
    " WHERE {scope} AND t.finished_at IS NOT NULL AND e.action = 'finished'"
    " AND e.created_at = t.finished_at AND e.actor_id <> t.customer_id"
    " AND t.resolution_work IS NOT NULL) x"
    " WHERE 2 * rn IN (cnt, cnt + 1, cnt + 2) GROUP BY g"
)

GROUP_AGENT = {"author": "m.author_id", "actor": "e.actor_id"}
GROUP_DEPARTMENT = {"author": "t.department_id", "actor": "t.department_id"}


def main() -> None:
    app = bench_app()
    with app.app_context():
        total = db.session.execute(text("SELECT COUNT(*) FROM ticket")).scalar()
        print(f"{db.engine.dialect.name}: {total:,} tickets")
        rows = []
        for name, days in (("last 30 days", 30), ("everything (10 years)", 3650)):
            start = utcnow() - timedelta(days=days)

            def ours(start=start):
                with app.test_request_context():
                    agent_rows([Ticket.created_at >= start])

            def raw(start=start):
                with db.engine.connect() as conn:
                    # Per agent, then per (ticket's) department: the same shapes.
                    for keys in (GROUP_AGENT, GROUP_DEPARTMENT):
                        for sql in (REPLIES, FIRST, FINISHED, RESOLUTION):
                            stmt = text(sql.format(scope=SCOPE, **keys))
                            conn.execute(stmt, {"start": start}).all()

            with app.test_request_context():
                agents, departments = agent_rows([Ticket.created_at >= start])
            print(f"{name}: {len(agents)} agents, {len(departments)} departments")
            rows.append((f"agent report, {name}", timed(ours, runs=9), timed(raw, runs=9)))
        report(rows)
        with db.engine.connect() as conn:
            explain = "EXPLAIN QUERY PLAN " if db.engine.dialect.name == "sqlite" else "EXPLAIN "
            start = utcnow() - timedelta(days=30)
            print("\nEXPLAIN replies per agent, last 30 days:")
            stmt = text(explain + REPLIES.format(scope=SCOPE, **GROUP_AGENT))
            for line in conn.execute(stmt, {"start": start}):
                print("  ", tuple(line))


if __name__ == "__main__":
    main()

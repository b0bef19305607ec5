"""Working-time SLA: what computing due times costs, against raw SQL in the same run.

Creates a fresh database on --url (default: SQLite in a temporary file; a MariaDB URL
works the same), seeds the departments with their seed hours, files --tickets running
tickets spread over the last weeks, then times (medians):

- due times of one new ticket: the calendar load (departments, hours, company days)
  and both `Calendar.add` calls, as `sla.start` does on filing — against a raw SQL read
  of one ticket's stored `next_due_at` (what the lists do: they never compute);
- recomputing every running ticket after a calendar change (`sla.calendar_changed`,
  ORM rows, one DUE_MOVED event per moved ticket) — against one raw SQL UPDATE that
  shifts the same rows' due times by an hour.

    .venv/bin/python bench/sla_worktime.py --tickets 5000
    .venv/bin/python bench/sla_worktime.py --url "mysql+pymysql://root@127.0.0.1:3306/test" \\
        --tickets 20000
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import fresh_database, report, timed  # noqa: E402

from backoffice import create_app  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", default="sqlite://")
    ap.add_argument("--tickets", type=int, default=5000)
    args = ap.parse_args()
    url, drop = fresh_database(args.url if args.url != "sqlite://" else "sqlite:///x.db")
    app = create_app({"ENV_NAME": "development", "SQLALCHEMY_DATABASE_URI": url})
    try:
        with app.app_context():
            run(args.tickets)
    finally:
        drop()


def run(n: int) -> None:
    from backoffice.domain import sla
    from backoffice.extensions import db
    from backoffice.models import Priority, Ticket, TicketKind, TicketStatus, User
    from backoffice.models.base import utcnow
    from backoffice.seed import seed_base

    db.create_all()
    seed_base()
    customer = User(email="bench@example.com", password="x", active=True, fs_uniquifier="b")
    db.session.add(customer)
    db.session.flush()
    ops = db.session.scalar(sa.text("SELECT id FROM department WHERE code = 'OPS'"))
    now = utcnow()
    started = time.perf_counter()
    for i in range(n):
        t = Ticket(
            kind=TicketKind.COMPLAINT,
            subject=f"bench {i}",
            customer_id=customer.id,
            status=TicketStatus.TEAM,
            priority=Priority.NORMAL,
            department_id=ops,
            created_at=now - timedelta(minutes=7 * i % 20000),
        )
        sla.start(t, t.created_at)
        t.next_due_at = sla.next_due(t)
        db.session.add(t)
        if i % 1000 == 999:
            db.session.flush()
    db.session.commit()
    print(f"filled {n} running tickets in {time.perf_counter() - started:.1f} s")
    one = db.session.scalar(sa.select(Ticket).limit(1))

    def due_times_of_a_new_ticket():
        t = Ticket(priority=Priority.NORMAL, department_id=ops, created_at=now)
        sla.start(t, now)

    def raw_read():
        with db.engine.connect() as conn:
            conn.execute(sa.text("SELECT next_due_at FROM ticket WHERE id = :i"), {"i": one.id})

    def recompute():
        sla.calendar_changed("bench")
        db.session.rollback()

    def raw_update():
        with db.engine.begin() as conn:
            conn.execute(
                sa.text(
                    "UPDATE ticket SET resolution_due = resolution_due, "
                    "first_response_due = first_response_due, version_id = version_id + 1 "
                    "WHERE status IN ('progress', 'team')"
                )
            )

    rows = [
        ("due times of one new ticket (calendar + add)", timed(due_times_of_a_new_ticket, 50),
         timed(raw_read, 50)),
        (f"recompute {n} running tickets", timed(recompute, 3, 1), timed(raw_update, 3, 1)),
    ]  # fmt: skip
    report(rows)


if __name__ == "__main__":
    main()

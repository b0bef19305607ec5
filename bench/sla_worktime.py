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

With --seeded, on DATABASE_URL filled by `carebox seed-bulk --tickets N` instead (its
running tickets are first put on working time by one UPDATE, as if just filed; the
database keeps that): `carebox sla recompute`'s set-based path over every running
ticket (domain/sla_bulk.py) against the raw UPDATE, and filing one ticket through the
lifecycle (`tickets.file_ticket`, rolled back) against a raw INSERT of its three rows.

    DATABASE_URL=mysql+pymysql://... .venv/bin/python bench/sla_worktime.py --seeded
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import bench_app, fresh_database, report, timed  # noqa: E402

from backoffice import create_app  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", default="sqlite://")
    ap.add_argument("--tickets", type=int, default=5000)
    ap.add_argument("--seeded", action="store_true", help="DATABASE_URL after seed-bulk")
    args = ap.parse_args()
    if args.seeded:
        with bench_app().app_context():
            run_seeded()
        return
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


PUT_ON_WORKING_TIME = """
UPDATE ticket SET sla_since = created_at, sla_paused_at = NULL,
  first_response_left = CASE priority WHEN 'urgent' THEN 3600 WHEN 'high' THEN 14400
    WHEN 'normal' THEN 28800 ELSE 86400 END,
  resolution_left = CASE priority WHEN 'urgent' THEN 28800 WHEN 'high' THEN 86400
    WHEN 'normal' THEN 259200 ELSE 432000 END
WHERE status IN ('progress', 'team') AND sla_since IS NULL
"""


def run_seeded() -> None:
    from backoffice.domain import sla, tickets
    from backoffice.extensions import db
    from backoffice.models import CompanyDay, TicketKind, User
    from backoffice.models.base import utcnow

    tomorrow = (utcnow() + timedelta(days=1)).date()
    moved: list[int] = []
    with db.engine.begin() as conn:
        adopted = conn.execute(sa.text(PUT_ON_WORKING_TIME)).rowcount
        counts = dict(
            conn.execute(sa.text("SELECT status, COUNT(*) FROM ticket GROUP BY status")).all()
        )
    running = counts.get("progress", 0) + counts.get("team", 0)
    print(
        f"{sum(counts.values()):,} tickets, {running:,} running"
        f" ({adopted:,} just put on working time)"
    )
    customer = db.session.scalar(
        sa.select(User).where(User.roles.any(name="customer")).order_by(User.id).limit(1)
    )

    def recompute():  # nothing moves: the nightly run on unchanged calendars
        sla.calendar_changed("bench")
        db.session.rollback()

    def day_off_tomorrow():  # the master admin closes tomorrow: most running tickets move
        db.session.add(CompanyDay(day=tomorrow, closed=True, name="bench"))
        db.session.flush()
        moved.append(sla.calendar_changed("bench: company day", days=[tomorrow]))
        db.session.rollback()

    def raw_update():
        with db.engine.connect() as conn, conn.begin() as tx:
            conn.execute(
                sa.text(
                    "UPDATE ticket SET resolution_due = resolution_due + INTERVAL 1 HOUR, "
                    "first_response_due = first_response_due + INTERVAL 1 HOUR "
                    "WHERE status IN ('progress', 'team') AND sla_since IS NOT NULL"
                )
            )
            tx.rollback()

    def file_one():
        tickets.file_ticket(customer, TicketKind.QUESTION, "Bench", "Halo, paket saya?")
        db.session.rollback()

    def raw_insert():
        with db.engine.connect() as conn, conn.begin() as tx:
            tid = conn.execute(
                sa.text(
                    "INSERT INTO ticket (kind, subject, customer_id, status, priority, "
                    "created_at, updated_at, last_message_at, last_from_staff, "
                    "first_response_due, resolution_due, next_due_at, reopen_count, "
                    "version_id, situation) VALUES ('question', 'Bench', :c, 'progress', 'normal', "
                    "NOW(), NOW(), NOW(), 0, NOW(), NOW(), NOW(), 0, 1, NULL)"
                ),
                {"c": customer.id},
            ).lastrowid
            conn.execute(
                sa.text(
                    "INSERT INTO ticket_message (ticket_id, author_id, from_staff, by_system, "
                    "internal, body, channel, created_at) VALUES (:t, :c, 0, 0, 0, "
                    "'Halo, paket saya?', 'portal', NOW())"
                ),
                {"t": tid, "c": customer.id},
            )
            conn.execute(
                sa.text(
                    "INSERT INTO ticket_event (ticket_id, actor_id, action, to_status, note, "
                    "created_at) VALUES (:t, :c, 'filed', 'progress', '', NOW())"
                ),
                {"t": tid, "c": customer.id},
            )
            tx.rollback()

    started = time.perf_counter()
    first = sla.calendar_changed("bench (first run: writes the moves)")
    db.session.commit()
    print(f"first recompute: {first:,} moved in {time.perf_counter() - started:.1f} s")
    raw = timed(raw_update, 3, 1)
    rows = [
        (f"recompute {running:,} running, none move", timed(recompute, 3, 1), raw),
        ("  … a day off added: tickets move, events", timed(day_off_tomorrow, 3, 1), raw),
        ("file one ticket (lifecycle, rolled back)", timed(file_one, 31, 3),
         timed(raw_insert, 31, 3)),
    ]  # fmt: skip
    report(rows)
    print(f"tickets moved by the day off: {moved[-1]:,} (each with its DUE_MOVED event)")


if __name__ == "__main__":
    main()

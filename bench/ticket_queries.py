"""The list queries of the back office and portal: ORM scoping vs the raw SQL.

Usage: DATABASE_URL=... python bench/ticket_queries.py   (after `carebox seed-bulk`)
Prints the median of 15 runs per case and the ratio to hand-written SQL doing
the same work in the same run.
"""

from __future__ import annotations

import uuid

from common import bench_app, report, timed
from sqlalchemy import func, select, text
from sqlalchemy.orm import joinedload

from backoffice.domain import permissions as perm
from backoffice.extensions import db
from backoffice.models import Ticket, TicketMessage, TicketStatus
from backoffice.security_setup import ensure_roles
from backoffice.seed import ensure_user

PAGE = 50


def main() -> None:
    app = bench_app()
    with app.app_context():
        ensure_roles()
        master = ensure_user("bench-master@carebox.example", uuid.uuid4().hex, perm.MASTER_ADMIN)
        db.session.commit()
        total = db.session.scalar(select(func.count(Ticket.id)))
        dept = db.session.scalar(
            select(Ticket.department_id).where(Ticket.department_id.is_not(None)).limit(1)
        )
        customer = db.session.scalar(select(Ticket.customer_id).order_by(Ticket.id.desc()))
        busy_ticket = db.session.scalar(select(Ticket.id).order_by(Ticket.id.desc()))
        print(f"{db.engine.dialect.name}: {total:,} tickets")

        def orm_page(status, department=None):
            stmt = (
                perm.visible_tickets(master)
                .where(Ticket.status == status)
                .options(
                    joinedload(Ticket.customer),
                    joinedload(Ticket.department),
                    joinedload(Ticket.assignee),
                    joinedload(Ticket.order),
                )
                .order_by(Ticket.created_at.desc())
                .limit(PAGE)
            )
            if department:
                stmt = stmt.where(Ticket.department_id == department)

            def run():
                rows = db.session.scalars(stmt).unique().all()
                assert len(rows) == PAGE, len(rows)  # the page is real, not empty
                db.session.expunge_all()

            return run

        def raw_page(status, department=None):
            sql = text(
                "SELECT t.*, u.email, u.name, d.code, a.email, o.number FROM ticket t "
                "LEFT JOIN user u ON u.id = t.customer_id "
                "LEFT JOIN department d ON d.id = t.department_id "
                "LEFT JOIN user a ON a.id = t.assignee_id "
                "LEFT JOIN customer_order o ON o.id = t.order_id "
                "WHERE t.status = :s"
                + (" AND t.department_id = :d" if department else "")
                + " ORDER BY t.created_at DESC LIMIT :n"
            )
            params = {"s": status.value, "d": department, "n": PAGE}
            return lambda: db.session.execute(sql, params).all()

        def orm_count(status):
            stmt = select(func.count(Ticket.id)).where(
                perm.ticket_scope(master), Ticket.status == status
            )
            return lambda: db.session.scalar(stmt)

        def raw_count(status):
            sql = text("SELECT COUNT(*) FROM ticket WHERE status = :s")
            return lambda: db.session.execute(sql, {"s": status.value}).scalar()

        own = (
            select(Ticket)
            .where(Ticket.customer_id == customer)
            .order_by(Ticket.created_at.desc())
            .limit(PAGE)
        )
        own_raw = text(
            "SELECT * FROM ticket WHERE customer_id = :c ORDER BY created_at DESC LIMIT 50"
        )
        convo = (
            select(TicketMessage)
            .where(TicketMessage.ticket_id == busy_ticket, TicketMessage.internal.is_(False))
            .order_by(TicketMessage.id)
        )
        convo_raw = text(
            "SELECT * FROM ticket_message WHERE ticket_id = :t AND internal = 0 ORDER BY id"
        )
        rows = []
        for status in TicketStatus:
            rows.append(
                (
                    f"list page {status.value} (50 rows, 4 joins)",
                    timed(orm_page(status)),
                    timed(raw_page(status)),
                )
            )
        rows.append(
            (
                "list page team, one department",
                timed(orm_page(TicketStatus.TEAM, dept)),
                timed(raw_page(TicketStatus.TEAM, dept)),
            )
        )
        rows.append(
            ("count team", timed(orm_count(TicketStatus.TEAM)), timed(raw_count(TicketStatus.TEAM)))
        )
        rows.append(
            (
                "customer's own tickets",
                timed(lambda: (db.session.scalars(own).all(), db.session.expunge_all())),
                timed(lambda: db.session.execute(own_raw, {"c": customer}).all()),
            )
        )
        rows.append(
            (
                "conversation (public messages)",
                timed(lambda: (db.session.scalars(convo).all(), db.session.expunge_all())),
                timed(lambda: db.session.execute(convo_raw, {"t": busy_ticket}).all()),
            )
        )
        report(rows)


if __name__ == "__main__":
    main()

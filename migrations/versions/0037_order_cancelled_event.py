"""order cancelled event: a cancellation is a tracking event, and the customer a source

Revision ID: 0037_order_cancelled_event
Revises: 0036_outbox_templates

`orders.cancel` records a `cancelled` tracking event (the order's status follows it, so
every timeline and the polls' ETag show the cancellation); a customer cancelling their
own placed order is the event's source `customer`. Orders cancelled before this revision
get their event here, at the time of the cancellation in their status history (UTC,
offset 0, like 0008's), or just after their latest event if that was later.
"""

from datetime import timedelta

import sqlalchemy as sa
from alembic import op

revision = "0037_order_cancelled_event"
down_revision = "0036_outbox_templates"
branch_labels = None
depends_on = None

OLD_KINDS = (
    "picked_up", "at_hub", "departed_hub", "out_for_delivery", "delivered",
    "delivery_failed", "returned", "on_hold",
)  # fmt: skip
NEW_KINDS = (*OLD_KINDS, "cancelled")
OLD_SOURCES = ("import", "api", "staff", "migration", "seed")
NEW_SOURCES = (*OLD_SOURCES, "customer")
CHECKS = {  # table: (constraint name (the enum's), column, kinds or sources)
    "tracking_event": (("tracking_event_kind", "event", 0), ("tracking_source", "source", 1)),
    "customer_order": (("order_last_event", "last_event", 0),),
}


def _in(column, values):
    return "{} IN ({})".format(column, ", ".join(f"'{v}'" for v in values))


def _checks(kinds, sources):
    """The enums' check constraints, one ALTER per table on MariaDB: adding a CHECK copies
    the table (measured: 5 s per 1M rows on 10.11), so tracking_event's two in two
    statements would copy its 8M rows twice."""
    values = (kinds, sources)
    mysql = op.get_bind().dialect.name == "mysql"
    for table, checks in CHECKS.items():
        if mysql:
            parts = []
            for name, column, which in checks:
                ck = f"ck_{table}_{name}"
                check = _in(column, values[which])
                parts += [f"DROP CONSTRAINT {ck}", f"ADD CONSTRAINT {ck} CHECK ({check})"]
            op.execute(f"ALTER TABLE {table} " + ", ".join(parts))
            continue
        with op.batch_alter_table(table, schema=None) as batch_op:
            for name, column, which in checks:
                batch_op.drop_constraint(op.f(f"ck_{table}_{name}"), type_="check")
                batch_op.create_check_constraint(
                    op.f(f"ck_{table}_{name}"), _in(column, values[which])
                )


def upgrade():
    _checks(NEW_KINDS, NEW_SOURCES)
    conn = op.get_bind()
    order = sa.table(
        "customer_order",
        sa.column("id", sa.Integer()),
        sa.column("status", sa.String()),
        sa.column("last_event", sa.String()),
        sa.column("last_event_at", sa.DateTime()),
        sa.column("updated_at", sa.DateTime()),
    )
    history = sa.table(
        "order_event",
        sa.column("order_id", sa.Integer()),
        sa.column("actor_id", sa.Integer()),
        sa.column("to_status", sa.String()),
        sa.column("created_at", sa.DateTime()),
    )
    tracking = sa.table(
        "tracking_event",
        *(
            sa.column(c)
            for c in (
                "order_id",
                "event",
                "occurred_at",
                "utc_offset",
                "location",
                "note",
                "source",
                "actor_id",
                "recorded_at",
            )
        ),  # fmt: skip
    )
    # Cancelled orders are few (an index on status), and each has one cancellation.
    rows = conn.execute(
        sa.select(
            order.c.id,
            order.c.last_event_at,
            order.c.updated_at,
            history.c.actor_id,
            history.c.created_at,
        )
        .select_from(order)
        .outerjoin(
            history,
            sa.and_(history.c.order_id == order.c.id, history.c.to_status == "cancelled"),
        )
        .where(order.c.status == "cancelled")
        .order_by(order.c.id)
    ).all()
    events, done = [], set()
    for r in rows:
        if r.id in done:
            continue
        done.add(r.id)
        at = r.created_at or r.updated_at
        if r.last_event_at is not None and r.last_event_at >= at:
            at = r.last_event_at + timedelta(seconds=1)  # it must be the latest
        events.append(
            {
                "order_id": r.id,
                "event": "cancelled",
                "occurred_at": at,
                "utc_offset": 0,
                "location": "",
                "note": "",
                "source": "migration",
                "actor_id": r.actor_id,
                "recorded_at": at,
            }
        )
    for start in range(0, len(events), 1000):
        chunk = events[start : start + 1000]
        conn.execute(tracking.insert(), chunk)
        conn.execute(
            order.update()
            .where(order.c.id == sa.bindparam("oid"))
            .values(last_event="cancelled", last_event_at=sa.bindparam("at")),
            [{"oid": e["order_id"], "at": e["occurred_at"]} for e in chunk],
        )


def downgrade():
    conn = op.get_bind()
    conn.execute(sa.text("DELETE FROM tracking_event WHERE event = 'cancelled'"))
    # The cancelled orders' latest event is again their latest one left (or none).
    latest = (
        "(SELECT e.{} FROM tracking_event e WHERE e.order_id = customer_order.id "
        "ORDER BY e.occurred_at DESC, e.id DESC LIMIT 1)"
    )
    conn.execute(
        sa.text(
            f"UPDATE customer_order SET last_event = {latest.format('event')}, "
            f"last_event_at = {latest.format('occurred_at')} WHERE last_event = 'cancelled'"
        )
    )
    _checks(OLD_KINDS, OLD_SOURCES)

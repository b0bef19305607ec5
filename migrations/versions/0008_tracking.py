"""tracking events: every parcel's timeline, the order status following its latest event

Revision ID: 0008_tracking
Revises: 0007_channels

Tracking events are appended, never edited; (order, occurred_at, event) is unique so
imports and the API are idempotent, and it is also the index of a resi's timeline.
The order keeps its latest event and when it happened, indexed with the status for
"shipments with no event for N days".

The order status changes made before this revision become events here: picked up
-> picked_up, in transit -> departed_hub, delivered -> delivered, at the time they
were made (UTC, offset 0), with no location (the order's addresses are personal).
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_tracking"
down_revision = "0007_channels"
branch_labels = None
depends_on = None

KINDS = (
    "picked_up",
    "at_hub",
    "departed_hub",
    "out_for_delivery",
    "delivered",
    "delivery_failed",
    "returned",
    "on_hold",
)
SOURCES = ("import", "api", "staff", "migration", "seed")
FROM_STATUS = {"picked_up": "picked_up", "in_transit": "departed_hub", "delivered": "delivered"}


def _kind(name):
    return sa.Enum(*KINDS, name=name, native_enum=False, create_constraint=True)


def upgrade():
    op.create_table(
        "tracking_event",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("event", _kind("tracking_event_kind"), nullable=False),
        sa.Column("occurred_at", sa.DateTime(), nullable=False),
        sa.Column("utc_offset", sa.SmallInteger(), nullable=False),
        sa.Column("location", sa.String(length=120), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=False),
        sa.Column(
            "source",
            sa.Enum(*SOURCES, name="tracking_source", native_enum=False, create_constraint=True),
            nullable=False,
        ),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("recorded_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["customer_order.id"],
            name=op.f("fk_tracking_event_order_id_customer_order"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["actor_id"],
            ["user.id"],
            name=op.f("fk_tracking_event_actor_id_user"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tracking_event")),
        sa.UniqueConstraint("order_id", "occurred_at", "event", name="uq_tracking_event_key"),
    )
    with op.batch_alter_table("customer_order", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_event", _kind("order_last_event"), nullable=True))
        batch_op.add_column(sa.Column("last_event_at", sa.DateTime(), nullable=True))
        batch_op.create_index("ix_order_status_last_event", ["status", "last_event_at"])

    conn = op.get_bind()
    order_event = sa.table(
        "order_event",
        sa.column("order_id", sa.Integer()),
        sa.column("actor_id", sa.Integer()),
        sa.column("to_status", sa.String()),
        sa.column("note", sa.String()),
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
        ),
    )
    order = sa.table(
        "customer_order",
        sa.column("id", sa.Integer()),
        sa.column("last_event", sa.String()),
        sa.column("last_event_at", sa.DateTime()),
    )
    rows = conn.execute(
        sa.select(order_event)
        .where(order_event.c.to_status.in_(list(FROM_STATUS)))
        .order_by(order_event.c.order_id, order_event.c.created_at)
    ).all()
    seen, latest, batch = set(), {}, []
    for r in rows:
        key = (r.order_id, r.created_at, FROM_STATUS[r.to_status])
        if key in seen:
            continue
        seen.add(key)
        batch.append(
            {
                "order_id": r.order_id,
                "event": key[2],
                "occurred_at": r.created_at,
                "utc_offset": 0,
                "location": "",
                "note": (r.note or "")[:500],
                "source": "migration",
                "actor_id": r.actor_id,
                "recorded_at": r.created_at,
            }
        )
        latest[r.order_id] = (key[2], r.created_at)
    for start in range(0, len(batch), 1000):
        conn.execute(tracking.insert(), batch[start : start + 1000])
    if latest:
        conn.execute(
            order.update()
            .where(order.c.id == sa.bindparam("oid"))
            .values(last_event=sa.bindparam("k"), last_event_at=sa.bindparam("t")),
            [{"oid": oid, "k": k, "t": t} for oid, (k, t) in latest.items()],
        )


def downgrade():
    with op.batch_alter_table("customer_order", schema=None) as batch_op:
        batch_op.drop_index("ix_order_status_last_event")
        batch_op.drop_constraint(op.f("ck_customer_order_order_last_event"), type_="check")
        batch_op.drop_column("last_event_at")
        batch_op.drop_column("last_event")
    op.drop_table("tracking_event")

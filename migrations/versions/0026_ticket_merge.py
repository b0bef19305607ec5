"""ticket merge: a duplicate ticket points to the one it was merged into

Revision ID: 0026_ticket_merge
Revises: 0025_staff_notices

A second open ticket on the same parcel can be merged into the first
(domain/tickets.py `merge`): its messages and events move there, it is finished
and points to the survivor (`merged_into_id`), and both timelines get a `merged`
event.
"""

import sqlalchemy as sa
from alembic import op

revision = "0026_ticket_merge"
down_revision = "0025_staff_notices"
branch_labels = None
depends_on = None

OLD_ACTIONS = (
    "filed", "routed", "dispatched", "escalated", "replied", "customer_replied", "note",
    "priority", "assigned", "finished", "reopened", "rated", "due_moved", "finish_warned",
)  # fmt: skip
NEW_ACTIONS = (*OLD_ACTIONS, "merged")


def _actions_check(values):
    return "action IN ({})".format(", ".join(f"'{v}'" for v in values))


def upgrade():
    with op.batch_alter_table("ticket", schema=None) as batch_op:
        batch_op.add_column(sa.Column("merged_into_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_ticket_merged_into_id"), ["merged_into_id"])
        batch_op.create_foreign_key(
            batch_op.f("fk_ticket_merged_into_id_ticket"),
            "ticket",
            ["merged_into_id"],
            ["id"],
            ondelete="SET NULL",
        )
    with op.batch_alter_table("ticket_event", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_ticket_event_event_action"), type_="check")
        batch_op.create_check_constraint(
            op.f("ck_ticket_event_event_action"), _actions_check(NEW_ACTIONS)
        )


def downgrade():
    op.execute("DELETE FROM ticket_event WHERE action = 'merged'")
    with op.batch_alter_table("ticket_event", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_ticket_event_event_action"), type_="check")
        batch_op.create_check_constraint(
            op.f("ck_ticket_event_event_action"), _actions_check(OLD_ACTIONS)
        )
    with op.batch_alter_table("ticket", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_ticket_merged_into_id_ticket"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_ticket_merged_into_id"))
        batch_op.drop_column("merged_into_id")

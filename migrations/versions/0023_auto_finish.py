"""auto finish: the system's warning message, its timeline event, the worker's index

Revision ID: 0023_auto_finish
Revises: 0022_shipment_situation

A ticket waiting for the customer for CAREBOX_AUTO_FINISH_DAYS working days is
warned, then finished, by carebox itself (domain/autofinish.py): its warning is a
message `by_system` (no author), recorded by a `finish_warned` event. The worker
reads responded tickets by the start of their wait (`last_message_at`).
"""

import sqlalchemy as sa
from alembic import op

revision = "0023_auto_finish"
down_revision = "0022_shipment_situation"
branch_labels = None
depends_on = None

OLD_ACTIONS = (
    "filed", "routed", "dispatched", "escalated", "replied", "customer_replied", "note",
    "priority", "assigned", "finished", "reopened", "rated", "due_moved",
)  # fmt: skip
NEW_ACTIONS = (*OLD_ACTIONS, "finish_warned")


def _actions_check(values):
    return "action IN (%s)" % ", ".join(f"'{v}'" for v in values)


def upgrade():
    with op.batch_alter_table("ticket_message", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("by_system", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    with op.batch_alter_table("ticket", schema=None) as batch_op:
        batch_op.create_index("ix_ticket_status_last_message", ["status", "last_message_at", "id"])
    with op.batch_alter_table("ticket_event", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_ticket_event_event_action"), type_="check")
        batch_op.create_check_constraint(
            op.f("ck_ticket_event_event_action"), _actions_check(NEW_ACTIONS)
        )


def downgrade():
    op.execute("DELETE FROM ticket_event WHERE action = 'finish_warned'")
    with op.batch_alter_table("ticket_event", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_ticket_event_event_action"), type_="check")
        batch_op.create_check_constraint(
            op.f("ck_ticket_event_event_action"), _actions_check(OLD_ACTIONS)
        )
    with op.batch_alter_table("ticket", schema=None) as batch_op:
        batch_op.drop_index("ix_ticket_status_last_message")
    with op.batch_alter_table("ticket_message", schema=None) as batch_op:
        batch_op.drop_column("by_system")

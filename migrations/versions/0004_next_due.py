"""the due time that matters now, stored and indexed

Revision ID: 0004_next_due
Revises: 0003
Create Date: 2026-11-28 09:00:00

`ticket.next_due_at` is the first response's due time until the ticket is
answered, then the resolution's; NULL while it waits for the customer
(responded) or is finished. The lists sort by it within a status (and a
department, or an assignee).
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_next_due"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("ticket", schema=None) as batch_op:
        batch_op.add_column(sa.Column("next_due_at", sa.DateTime(), nullable=True))
    op.execute(
        "UPDATE ticket SET next_due_at = CASE"
        " WHEN status IN ('responded', 'finished') THEN NULL"
        " WHEN first_response_at IS NULL THEN first_response_due"
        " ELSE resolution_due END"
    )
    with op.batch_alter_table("ticket", schema=None) as batch_op:
        batch_op.create_index("ix_ticket_status_next_due", ["status", "next_due_at", "id"])
        batch_op.create_index(
            "ix_ticket_status_dept_next_due", ["status", "department_id", "next_due_at", "id"]
        )
        # Created before the old one goes: MariaDB keeps an index on assignee_id for its FK.
        batch_op.create_index(
            "ix_ticket_assignee_next_due", ["assignee_id", "status", "next_due_at", "id"]
        )
    with op.batch_alter_table("ticket", schema=None) as batch_op:
        batch_op.drop_index("ix_ticket_assignee_status")


def downgrade():
    with op.batch_alter_table("ticket", schema=None) as batch_op:
        batch_op.create_index("ix_ticket_assignee_status", ["assignee_id", "status"])
    with op.batch_alter_table("ticket", schema=None) as batch_op:
        batch_op.drop_index("ix_ticket_assignee_next_due")
        batch_op.drop_index("ix_ticket_status_dept_next_due")
        batch_op.drop_index("ix_ticket_status_next_due")
        batch_op.drop_column("next_due_at")

"""working medians: the working time each SLA clock had used when it was met

Revision ID: 0024_working_medians
Revises: 0023_auto_finish

`ticket.first_response_work` / `resolution_work` are kept by domain/sla.py at the first
response and at each finish; the dashboard's and reports' medians read them (tickets
from before working time, NULL here, on the wall clock). The covering index of the
date-range reads gains both, so the medians stay index-only.
"""

import sqlalchemy as sa
from alembic import op

revision = "0024_working_medians"
down_revision = "0023_auto_finish"
branch_labels = None
depends_on = None

OLD_COVER = [
    "created_at", "status", "kind", "department_id", "rating", "first_response_at", "finished_at",
]  # fmt: skip


def upgrade():
    with op.batch_alter_table("ticket", schema=None) as batch_op:
        batch_op.add_column(sa.Column("first_response_work", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("resolution_work", sa.Integer(), nullable=True))
        batch_op.drop_index("ix_ticket_created_cover")
        batch_op.create_index(
            "ix_ticket_created_cover", [*OLD_COVER, "first_response_work", "resolution_work"]
        )


def downgrade():
    with op.batch_alter_table("ticket", schema=None) as batch_op:
        batch_op.drop_index("ix_ticket_created_cover")
        batch_op.create_index("ix_ticket_created_cover", OLD_COVER)
        batch_op.drop_column("resolution_work")
        batch_op.drop_column("first_response_work")

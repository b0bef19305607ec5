"""sla warning: when the running clock reaches 80 % of its allowance

Revision ID: 0019_sla_warning
Revises: 0018_ticket_submission

`ticket.sla_warn_at` is kept with the due times (domain/sla.py); the warning worker
and the "breaching soon" filter read it by status.
"""

import sqlalchemy as sa
from alembic import op

revision = "0019_sla_warning"
down_revision = "0018_ticket_submission"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("ticket", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sla_warn_at", sa.DateTime(), nullable=True))
        batch_op.create_index("ix_ticket_status_warn", ["status", "sla_warn_at", "id"])


def downgrade():
    with op.batch_alter_table("ticket", schema=None) as batch_op:
        batch_op.drop_index("ix_ticket_status_warn")
        batch_op.drop_column("sla_warn_at")

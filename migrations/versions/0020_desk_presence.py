"""desk presence: when each staff member's open desk last polled, and last typed

Revision ID: 0020_desk_presence
Revises: 0019_sla_warning
"""

import sqlalchemy as sa
from alembic import op

revision = "0020_desk_presence"
down_revision = "0019_sla_warning"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("ticket_viewer", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seen_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("typing_at", sa.DateTime(), nullable=True))


def downgrade():
    with op.batch_alter_table("ticket_viewer", schema=None) as batch_op:
        batch_op.drop_column("typing_at")
        batch_op.drop_column("seen_at")

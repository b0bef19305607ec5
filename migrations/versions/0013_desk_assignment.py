"""desk assignment: round-robin per department, agents marked away

Revision ID: 0013_desk_assignment
Revises: 0012_inbound_email
"""

import sqlalchemy as sa
from alembic import op

revision = "0013_desk_assignment"
down_revision = "0012_inbound_email"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("department", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("round_robin", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    with op.batch_alter_table("user", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("away", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(
            sa.Column("round_robin_turn", sa.Integer(), server_default="0", nullable=False)
        )


def downgrade():
    with op.batch_alter_table("user", schema=None) as batch_op:
        batch_op.drop_column("round_robin_turn")
        batch_op.drop_column("away")
    with op.batch_alter_table("department", schema=None) as batch_op:
        batch_op.drop_column("round_robin")

"""dashboard snapshot: the master dashboard's 30-day figures, computed ahead of the page

Revision ID: 0026_dashboard_snapshot
Revises: 0025_staff_notices
"""

import sqlalchemy as sa
from alembic import op

revision = "0026_dashboard_snapshot"
down_revision = "0025_staff_notices"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "dashboard_snapshot",
        sa.Column("key", sa.String(length=32), nullable=False),
        sa.Column("computed_at", sa.DateTime(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )


def downgrade():
    op.drop_table("dashboard_snapshot")

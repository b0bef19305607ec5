"""dashboard snapshot: the master dashboard's 30-day figures, computed ahead of the page

Revision ID: 0029_dashboard_snapshot
Revises: 0028_shipment_notices
"""

import sqlalchemy as sa
from alembic import op

revision = "0029_dashboard_snapshot"
down_revision = "0028_shipment_notices"
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

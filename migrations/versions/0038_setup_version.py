"""setup version: a token that changes with every change of the desk's setup

Revision ID: 0038_setup_version
Revises: 0037_order_cancelled_event

Filing a ticket read the routing rules, the departments' hours and the company days on
every request (issue 16 item 3). Processes now keep copies of them under this token,
which every change of those tables (and of departments and products) replaces in the
same transaction (backoffice/domain/setup_cache.py).
"""

import sqlalchemy as sa
from alembic import op

revision = "0038_setup_version"
down_revision = "0037_order_cancelled_event"
branch_labels = None
depends_on = None


def upgrade():
    table = op.create_table(
        "setup_version",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("token", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_setup_version")),
    )
    op.bulk_insert(table, [{"id": 1, "token": "migrated"}])


def downgrade():
    op.drop_table("setup_version")

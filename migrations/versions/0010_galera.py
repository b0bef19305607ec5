"""a counter row for confirming an announcement's send (Galera-safe)

Revision ID: 0010_galera
Revises: 0009_desk_queues
Create Date: 2026-12-01 12:30:00

Confirming a send used to lock the announcement's row (SELECT … FOR UPDATE) so
that two confirmations ran one after the other. Under Galera that lock binds
one node only; `announcement.send_count`, incremented by every confirmation,
makes the row part of each confirmation's write set, so certification lets
one of two racing nodes through (backoffice/transactions.py).
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_galera"
down_revision = "0009_desk_queues"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("announcement", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("send_count", sa.Integer(), nullable=False, server_default="0")
        )
    op.execute(
        "UPDATE announcement SET send_count ="
        " (SELECT COUNT(*) FROM announcement_send"
        " WHERE announcement_send.announcement_id = announcement.id)"
    )


def downgrade():
    with op.batch_alter_table("announcement", schema=None) as batch_op:
        batch_op.drop_column("send_count")

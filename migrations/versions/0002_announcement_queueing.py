"""announcement sends are queued by the outbox worker

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 01:40:00

Sends logged before this revision were queued in the request that confirmed
them: they count as fully queued.
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("announcement_send", schema=None) as batch_op:
        batch_op.add_column(sa.Column("queued", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(
            sa.Column("queued_through", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(sa.Column("queued_at", sa.DateTime(), nullable=True))
    send = sa.table(
        "announcement_send",
        sa.column("targeted", sa.Integer()),
        sa.column("queued", sa.Integer()),
        sa.column("created_at", sa.DateTime()),
        sa.column("queued_at", sa.DateTime()),
    )
    op.execute(send.update().values(queued=send.c.targeted, queued_at=send.c.created_at))


def downgrade():
    with op.batch_alter_table("announcement_send", schema=None) as batch_op:
        batch_op.drop_column("queued_at")
        batch_op.drop_column("queued_through")
        batch_op.drop_column("queued")

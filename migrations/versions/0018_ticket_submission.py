"""ticket.submission: the portal form's one-time token, unique (idempotent filing)

Revision ID: 0018_ticket_submission
Revises: 0017_canned_replies
"""

import sqlalchemy as sa
from alembic import op

revision = "0018_ticket_submission"
down_revision = "0017_canned_replies"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("ticket", schema=None) as batch_op:
        batch_op.add_column(sa.Column("submission", sa.String(length=32), nullable=True))
        batch_op.create_unique_constraint("uq_ticket_submission", ["submission"])


def downgrade():
    with op.batch_alter_table("ticket", schema=None) as batch_op:
        batch_op.drop_constraint("uq_ticket_submission", type_="unique")
        batch_op.drop_column("submission")

"""faq votes per account

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 01:21:25

A signed-in user's "Was this helpful?" answer is a row, one per user and entry.
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "faq_vote",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("entry_id", sa.Integer(), nullable=False),
        sa.Column("helpful", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["entry_id"],
            ["faq_entry.id"],
            name=op.f("fk_faq_vote_entry_id_faq_entry"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["user.id"], name=op.f("fk_faq_vote_user_id_user"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_faq_vote")),
        sa.UniqueConstraint("user_id", "entry_id", name=op.f("uq_faq_vote_user_id")),
    )
    with op.batch_alter_table("faq_vote", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_faq_vote_entry_id"), ["entry_id"], unique=False)


def downgrade():
    op.drop_table("faq_vote")  # its indexes go with it (MariaDB refuses to drop an FK's index)

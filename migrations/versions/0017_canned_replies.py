"""canned replies: shared (everyone or one department) and personal texts for the desk

Revision ID: 0017_canned_replies
Revises: 0016_export_jobs
"""

import sqlalchemy as sa
from alembic import op

revision = "0017_canned_replies"
down_revision = "0016_export_jobs"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "canned_reply",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=120), nullable=False),
        sa.Column("shortcut", sa.String(length=40), nullable=False),
        sa.Column("body_id", sa.Text(), nullable=False),
        sa.Column("body_en", sa.Text(), nullable=True),
        sa.Column("owner_id", sa.Integer(), nullable=True),
        sa.Column("department_id", sa.Integer(), nullable=True),
        sa.Column("active", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("usage_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("seeded", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint(
            "owner_id IS NULL OR department_id IS NULL",
            name=op.f("ck_canned_reply_personal_has_no_department"),
        ),
        sa.ForeignKeyConstraint(
            ["department_id"],
            ["department.id"],
            name=op.f("fk_canned_reply_department_id_department"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["user.id"], name=op.f("fk_canned_reply_owner_id_user"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_canned_reply")),
    )
    with op.batch_alter_table("canned_reply", schema=None) as batch_op:
        batch_op.create_index("ix_canned_owner_shortcut", ["owner_id", "shortcut"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_canned_reply_department_id"), ["department_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_canned_reply_owner_id"), ["owner_id"], unique=False)


def downgrade():
    op.drop_table("canned_reply")

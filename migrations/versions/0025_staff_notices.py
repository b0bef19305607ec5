"""agent notifications: staff_notice, and the user's digest switch

Revision ID: 0025_staff_notices
Revises: 0024_working_medians
"""

import sqlalchemy as sa
from alembic import op

revision = "0025_staff_notices"
down_revision = "0024_working_medians"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "staff_notice",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "customer_reply",
                "department",
                name="notice_kind",
                native_enum=False,
                create_constraint=True,
                length=14,
            ),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("read_at", sa.DateTime(), nullable=True),
        sa.Column("emailed_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["ticket_id"], ["ticket.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["user.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("staff_notice", schema=None) as batch_op:
        batch_op.create_index("ix_staff_notice_ticket_id", ["ticket_id"], unique=False)
        batch_op.create_index(
            "ix_staff_notice_user_read", ["user_id", "read_at", "ticket_id"], unique=False
        )
    with op.batch_alter_table("user", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("notice_digest", sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade():
    with op.batch_alter_table("user", schema=None) as batch_op:
        batch_op.drop_column("notice_digest")
    op.drop_table("staff_notice")  # its indexes with it (MariaDB refuses to drop an
    # index a foreign key needs)

"""inbound email: every delivered message stored raw before it is processed

Revision ID: 0012_inbound_email
Revises: 0011_worktime

`carebox mail receive` writes the raw message first (nothing acknowledged to the
mail server is lost if processing fails), then processes it; held messages wait
here for staff review.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0012_inbound_email"
down_revision = "0011_worktime"
branch_labels = None
depends_on = None

STATUSES = ("received", "posted", "held", "ignored", "rejected")
REASONS = (
    "auto_reply",
    "bounce",
    "bulk",
    "loop",
    "throttled",
    "empty",
    "bad_token",
    "wrong_sender",
    "staff_sender",
    "not_authentic",
    "no_sender",
)


def upgrade():
    op.create_table(
        "inbound_email",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dedup_key", sa.String(length=64), nullable=False),
        sa.Column("message_id", sa.String(length=255), nullable=True),
        sa.Column("mail_from", sa.String(length=255), nullable=False),
        sa.Column("recipients", sa.Text(), nullable=False),
        sa.Column("sender", sa.String(length=255), nullable=True),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column(
            "raw",
            sa.LargeBinary().with_variant(mysql.LONGBLOB(), "mysql", "mariadb"),
            nullable=False,
        ),
        sa.Column(
            "status",
            sa.Enum(
                *STATUSES,
                name="inbound_status",
                native_enum=False,
                create_constraint=True,
                length=max(map(len, STATUSES)),
            ),
            nullable=False,
        ),
        sa.Column(
            "reason",
            sa.Enum(
                *REASONS,
                name="inbound_reason",
                native_enum=False,
                create_constraint=True,
                length=max(map(len, REASONS)),
            ),
            nullable=True,
        ),
        sa.Column("ticket_id", sa.Integer(), nullable=True),
        sa.Column("ticket_message_id", sa.Integer(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("processed_at", sa.DateTime(), nullable=True),
        sa.Column("reviewed_by_id", sa.Integer(), nullable=True),
        sa.Column("reviewed_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint(
            "status = 'received' OR processed_at IS NOT NULL",
            name=op.f("ck_inbound_email_processed_has_time"),
        ),
        sa.ForeignKeyConstraint(
            ["reviewed_by_id"],
            ["user.id"],
            name=op.f("fk_inbound_email_reviewed_by_id_user"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["ticket.id"],
            name=op.f("fk_inbound_email_ticket_id_ticket"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["ticket_message_id"],
            ["ticket_message.id"],
            name=op.f("fk_inbound_email_ticket_message_id_ticket_message"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbound_email")),
        sa.UniqueConstraint("dedup_key", name=op.f("uq_inbound_email_dedup_key")),
    )
    with op.batch_alter_table("inbound_email", schema=None) as batch_op:
        batch_op.create_index("ix_inbound_sender_received", ["sender", "received_at"])
        batch_op.create_index("ix_inbound_status_received", ["status", "received_at"])
        batch_op.create_index(batch_op.f("ix_inbound_email_ticket_id"), ["ticket_id"])


def downgrade():
    # Dropping the table drops its indexes (MariaDB refuses to drop an index a
    # foreign key still needs).
    op.drop_table("inbound_email")

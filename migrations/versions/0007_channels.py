"""channels: each message's channel, contact-only customers, follow-up tickets

Revision ID: 0007_channels
Revises: 0006_hardening

A message records where it was written (portal, email, WhatsApp) and the
channel's own id of it; a customer record made from an inbound message is
contact-only until claimed; a ticket may follow up an older, finished one.
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_channels"
down_revision = "0006_hardening"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("ticket_message", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "channel",
                sa.Enum(
                    "portal",
                    "email",
                    "whatsapp",
                    name="message_channel",
                    native_enum=False,
                    create_constraint=True,
                ),
                server_default="portal",
                nullable=False,
            )
        )
        batch_op.add_column(sa.Column("external_id", sa.String(length=255), nullable=True))
        batch_op.create_index("uq_message_channel_ref", ["channel", "external_id"], unique=True)
    with op.batch_alter_table("user", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("contact_only", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    with op.batch_alter_table("ticket", schema=None) as batch_op:
        batch_op.add_column(sa.Column("follow_up_of_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_ticket_follow_up_of_id"), ["follow_up_of_id"])
        batch_op.create_foreign_key(
            batch_op.f("fk_ticket_follow_up_of_id_ticket"),
            "ticket",
            ["follow_up_of_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade():
    with op.batch_alter_table("ticket", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_ticket_follow_up_of_id_ticket"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_ticket_follow_up_of_id"))
        batch_op.drop_column("follow_up_of_id")
    with op.batch_alter_table("user", schema=None) as batch_op:
        batch_op.drop_column("contact_only")
    with op.batch_alter_table("ticket_message", schema=None) as batch_op:
        batch_op.drop_index("uq_message_channel_ref")
        batch_op.drop_constraint(batch_op.f("ck_ticket_message_message_channel"), type_="check")
        batch_op.drop_column("external_id")
        batch_op.drop_column("channel")

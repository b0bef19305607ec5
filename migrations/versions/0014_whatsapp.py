"""whatsapp: raw webhook deliveries, their queue, outgoing messages; phones in E.164

Revision ID: 0014_whatsapp
Revises: 0013_desk_assignment

A WhatsApp sender is found by phone: `user.phone_key` holds each phone in E.164
(+62…), filled here for the phones already stored.
"""

import phonenumbers
import sqlalchemy as sa
from alembic import op

revision = "0014_whatsapp"
down_revision = "0013_desk_assignment"
branch_labels = None
depends_on = None

LONG_TEXT = sa.Text(16_777_215)


def _enum(name, *values):
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True)


def _e164(text):
    # The same rule as backoffice/domain/phones.py at the time of this migration.
    raw = (text or "").strip()
    digits = "".join(ch for ch in raw if ch.isdigit())
    if not digits or len(raw) > 64:
        return None
    if raw[0].isdigit() and digits.startswith("62"):
        raw = "+" + digits
    try:
        number = phonenumbers.parse(raw, "ID")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def upgrade():
    with op.batch_alter_table("user", schema=None) as batch_op:
        batch_op.add_column(sa.Column("phone_key", sa.String(length=20), nullable=True))
        batch_op.create_index(batch_op.f("ix_user_phone_key"), ["phone_key"], unique=False)
    conn = op.get_bind()
    user = sa.table("user", sa.column("id", sa.Integer), sa.column("phone", sa.String),
                    sa.column("phone_key", sa.String))
    rows = conn.execute(sa.select(user.c.id, user.c.phone).where(user.c.phone.isnot(None)))
    updates = [{"uid": uid, "key": key} for uid, phone in rows if (key := _e164(phone))]
    if updates:
        conn.execute(
            user.update().where(user.c.id == sa.bindparam("uid")).values(
                phone_key=sa.bindparam("key")
            ),
            updates,
        )

    op.create_table(
        "whatsapp_webhook",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("body_sha256", sa.String(length=64), nullable=False),
        sa.Column("body", LONG_TEXT, nullable=False),
        sa.Column("problem", sa.String(length=255), nullable=True),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_whatsapp_webhook")),
        sa.UniqueConstraint("body_sha256", name=op.f("uq_whatsapp_webhook_body_sha256")),
    )
    op.create_table(
        "whatsapp_inbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("webhook_id", sa.Integer(), nullable=True),
        sa.Column("item_key", sa.String(length=255), nullable=False),
        sa.Column("kind", _enum("wa_item_kind", "message", "status"), nullable=False),
        sa.Column("payload", LONG_TEXT, nullable=False),
        sa.Column(
            "status",
            _enum("wa_inbox_status", "pending", "processing", "done", "failed"),
            nullable=False,
        ),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=False),
        sa.Column("claim_token", sa.String(length=32), nullable=True),
        sa.Column("claimed_at", sa.DateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("processed_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint(
            "status <> 'processing' OR claim_token IS NOT NULL",
            name=op.f("ck_whatsapp_inbox_processing_claimed"),
        ),
        sa.ForeignKeyConstraint(
            ["webhook_id"],
            ["whatsapp_webhook.id"],
            name=op.f("fk_whatsapp_inbox_webhook_id_whatsapp_webhook"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_whatsapp_inbox")),
        sa.UniqueConstraint("item_key", name=op.f("uq_whatsapp_inbox_item_key")),
    )
    with op.batch_alter_table("whatsapp_inbox", schema=None) as batch_op:
        batch_op.create_index("ix_whatsapp_inbox_due", ["status", "next_attempt_at"])
        batch_op.create_index(batch_op.f("ix_whatsapp_inbox_webhook_id"), ["webhook_id"])

    op.create_table(
        "outbox_whatsapp",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("recipient", sa.String(length=20), nullable=False),
        sa.Column("kind", _enum("wa_send_kind", "text", "template"), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("template_name", sa.String(length=512), nullable=True),
        sa.Column("template_language", sa.String(length=16), nullable=True),
        sa.Column("template_params", sa.Text(), nullable=True),
        sa.Column(
            "status",
            _enum("wa_outbox_status", "pending", "sending", "sent", "failed"),
            nullable=False,
        ),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=False),
        sa.Column("claim_token", sa.String(length=32), nullable=True),
        sa.Column("claimed_at", sa.DateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("sent_at", sa.DateTime(), nullable=True),
        sa.Column("wa_message_id", sa.String(length=255), nullable=True),
        sa.Column(
            "delivery",
            _enum("wa_delivery", "sent", "delivered", "read", "failed"),
            nullable=True,
        ),
        sa.Column("delivery_at", sa.DateTime(), nullable=True),
        sa.Column("delivery_error", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "status <> 'sent' OR sent_at IS NOT NULL", name=op.f("ck_outbox_whatsapp_sent_has_time")
        ),
        sa.CheckConstraint(
            "status <> 'sending' OR claim_token IS NOT NULL",
            name=op.f("ck_outbox_whatsapp_sending_claimed"),
        ),
        sa.CheckConstraint(
            "kind <> 'template' OR template_name IS NOT NULL",
            name=op.f("ck_outbox_whatsapp_template_named"),
        ),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["ticket_message.id"],
            name=op.f("fk_outbox_whatsapp_message_id_ticket_message"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["ticket.id"],
            name=op.f("fk_outbox_whatsapp_ticket_id_ticket"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_whatsapp")),
        sa.UniqueConstraint("message_id", name=op.f("uq_outbox_whatsapp_message_id")),
        sa.UniqueConstraint("wa_message_id", name=op.f("uq_outbox_whatsapp_wa_message_id")),
    )
    with op.batch_alter_table("outbox_whatsapp", schema=None) as batch_op:
        batch_op.create_index("ix_outbox_whatsapp_due", ["status", "next_attempt_at"])
        batch_op.create_index(batch_op.f("ix_outbox_whatsapp_ticket_id"), ["ticket_id"])


def downgrade():
    op.drop_table("outbox_whatsapp")
    op.drop_table("whatsapp_inbox")
    op.drop_table("whatsapp_webhook")
    with op.batch_alter_table("user", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_user_phone_key"))
        batch_op.drop_column("phone_key")

"""whatsapp templates, media and notifications; WhatsApp consent; one contact per phone

Revision ID: 0027_whatsapp_templates
Revises: 0026_ticket_merge

- `whatsapp_template`: the approved templates the master admin enters. A
  `WHATSAPP_REPLY_TEMPLATE` setting (the one template of before) is seeded here
  as a template for staff replies outside the window, in both languages, with the
  parameters it had ({{1}} the ticket number, {{2}} the reply).
- `outbox_whatsapp`: rows without a ticket message (notifications, keyed by
  `send_key`) and rows for staff attachments (`attachment_id`, `media_kind`).
- `user.whatsapp_consent(_at)`; `user.contact_phone_key`, unique, filled for the
  phone-only contacts that exist (the lowest id of a phone keeps it).
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0027_whatsapp_templates"
down_revision = "0026_ticket_merge"
branch_labels = None
depends_on = None

USES = ("desk", "reply", "staff_replied", "ticket_finished", "out_for_delivery")


def _enum(name, *values):
    return sa.Enum(
        *values,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=max(map(len, values)),
    )


def _reply_template_setting() -> str:
    try:
        from flask import current_app

        return (current_app.config.get("WHATSAPP_REPLY_TEMPLATE") or "").strip()
    except RuntimeError:  # run outside the app (plain alembic): nothing to carry over
        return ""


def upgrade():
    template = op.create_table(
        "whatsapp_template",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=512), nullable=False),
        sa.Column("language", sa.String(length=16), nullable=False),
        sa.Column("use", _enum("wa_template_use", *USES), nullable=False),
        sa.Column("parameters", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_whatsapp_template")),
        sa.UniqueConstraint("name", "language", name=op.f("uq_whatsapp_template_name")),
    )
    name = _reply_template_setting()
    if name:
        from datetime import UTC, datetime

        now = datetime.now(UTC).replace(tzinfo=None)
        op.bulk_insert(
            template,
            [
                {
                    "name": name[:512],
                    "language": lang,
                    "use": "reply",
                    "parameters": json.dumps(["nomor_tiket", "balasan"]),
                    "body": "",
                    "active": True,
                    "created_at": now,
                }
                for lang in ("id", "en")
            ],
        )

    with op.batch_alter_table("outbox_whatsapp", schema=None) as batch_op:
        batch_op.alter_column("message_id", existing_type=sa.Integer(), nullable=True)
        batch_op.alter_column("ticket_id", existing_type=sa.Integer(), nullable=True)
        batch_op.add_column(sa.Column("attachment_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("send_key", sa.String(length=255), nullable=True))
        batch_op.add_column(
            sa.Column("media_kind", _enum("wa_media_kind", "image", "document"), nullable=True)
        )
        batch_op.add_column(sa.Column("media_id", sa.String(length=255), nullable=True))
        batch_op.create_unique_constraint(
            batch_op.f("uq_outbox_whatsapp_attachment_id"), ["attachment_id"]
        )
        batch_op.create_unique_constraint(batch_op.f("uq_outbox_whatsapp_send_key"), ["send_key"])
        batch_op.create_foreign_key(
            batch_op.f("fk_outbox_whatsapp_attachment_id_ticket_attachment"),
            "ticket_attachment",
            ["attachment_id"],
            ["id"],
            ondelete="CASCADE",
        )

    with op.batch_alter_table("user", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("whatsapp_consent", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(sa.Column("whatsapp_consent_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("contact_phone_key", sa.String(length=20), nullable=True))
        batch_op.create_unique_constraint(
            batch_op.f("uq_user_contact_phone_key"), ["contact_phone_key"]
        )
    conn = op.get_bind()
    user = sa.table(
        "user",
        sa.column("id", sa.Integer),
        sa.column("email", sa.String),
        sa.column("phone_key", sa.String),
        sa.column("contact_only", sa.Boolean),
        sa.column("contact_phone_key", sa.String),
    )
    rows = conn.execute(
        sa.select(user.c.id, user.c.phone_key)
        .where(
            user.c.contact_only.is_(True),
            user.c.phone_key.isnot(None),
            user.c.email.like("%@contact.invalid"),
        )
        .order_by(user.c.id)
    ).all()
    seen, updates = set(), []
    for uid, key in rows:
        if key not in seen:
            seen.add(key)
            updates.append({"uid": uid, "key": key})
    if updates:
        conn.execute(
            user.update()
            .where(user.c.id == sa.bindparam("uid"))
            .values(contact_phone_key=sa.bindparam("key")),
            updates,
        )


def downgrade():
    with op.batch_alter_table("user", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_user_contact_phone_key"), type_="unique")
        batch_op.drop_column("contact_phone_key")
        batch_op.drop_column("whatsapp_consent_at")
        batch_op.drop_column("whatsapp_consent")
    op.execute(
        "DELETE FROM outbox_whatsapp WHERE message_id IS NULL OR ticket_id IS NULL "
        "OR attachment_id IS NOT NULL"
    )
    with op.batch_alter_table("outbox_whatsapp", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_outbox_whatsapp_attachment_id_ticket_attachment"), type_="foreignkey"
        )
        batch_op.drop_constraint(batch_op.f("uq_outbox_whatsapp_send_key"), type_="unique")
        batch_op.drop_constraint(batch_op.f("uq_outbox_whatsapp_attachment_id"), type_="unique")
        batch_op.drop_column("media_id")
        batch_op.drop_constraint(op.f("ck_outbox_whatsapp_wa_media_kind"), type_="check")
        batch_op.drop_column("media_kind")
        batch_op.drop_column("send_key")
        batch_op.drop_column("attachment_id")
        batch_op.alter_column("ticket_id", existing_type=sa.Integer(), nullable=False)
        batch_op.alter_column("message_id", existing_type=sa.Integer(), nullable=False)
    op.drop_table("whatsapp_template")

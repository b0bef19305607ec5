"""whatsapp templates may be used for the link that proves a phone (verify_phone)

Revision ID: 0032_whatsapp_verify_phone
Revises: 0031_parcel_linked
"""

import sqlalchemy as sa
from alembic import op

revision = "0032_whatsapp_verify_phone"
down_revision = "0031_parcel_linked"
branch_labels = None
depends_on = None

BEFORE = ("desk", "reply", "staff_replied", "ticket_finished", "out_for_delivery")
AFTER = (*BEFORE, "verify_phone")


def _use_check(batch_op, values):
    batch_op.drop_constraint(op.f("ck_whatsapp_template_wa_template_use"), type_="check")
    batch_op.alter_column(
        "use",
        existing_type=sa.String(length=max(map(len, BEFORE))),
        type_=sa.String(length=max(map(len, values))),
        existing_nullable=False,
    )
    batch_op.create_check_constraint(
        op.f("ck_whatsapp_template_wa_template_use"), sa.column("use").in_(values)
    )


def upgrade():
    with op.batch_alter_table("whatsapp_template", schema=None) as batch_op:
        _use_check(batch_op, AFTER)


def downgrade():
    template = sa.table("whatsapp_template", sa.column("use", sa.String))
    op.execute(template.delete().where(template.c.use == "verify_phone"))
    with op.batch_alter_table("whatsapp_template", schema=None) as batch_op:
        _use_check(batch_op, BEFORE)

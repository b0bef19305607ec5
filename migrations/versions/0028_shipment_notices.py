"""shipment notices: the customer's shipment-updates consent, one outbox email per key

Revision ID: 0028_shipment_notices
Revises: 0027_whatsapp_templates
"""

import sqlalchemy as sa
from alembic import op

revision = "0028_shipment_notices"
down_revision = "0027_whatsapp_templates"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("user", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("shipment_updates", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    with op.batch_alter_table("outbox_email", schema=None) as batch_op:
        batch_op.add_column(sa.Column("dedupe_key", sa.String(length=80), nullable=True))
        batch_op.create_unique_constraint(
            batch_op.f("uq_outbox_email_dedupe_key"), ["dedupe_key"]
        )


def downgrade():
    with op.batch_alter_table("outbox_email", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_outbox_email_dedupe_key"), type_="unique")
        batch_op.drop_column("dedupe_key")
    with op.batch_alter_table("user", schema=None) as batch_op:
        batch_op.drop_column("shipment_updates")

"""outbox templates: an email may be queued as its template, language and context

Revision ID: 0036_outbox_templates
Revises: 0035_breach_index

Filing a ticket rendered its emails (the customer's confirmation, the department
admins' notice) inside the request; those rows now carry what the template needs and the
outbox worker renders them (backoffice/domain/outbox.py). `body_text` stays empty until
then, so it becomes nullable, and a row always has one of the two.
"""

import sqlalchemy as sa
from alembic import op

revision = "0036_outbox_templates"
down_revision = "0035_breach_index"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("outbox_email", schema=None) as batch_op:
        batch_op.add_column(sa.Column("template", sa.String(length=60), nullable=True))
        batch_op.add_column(sa.Column("lang", sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column("context", sa.Text(), nullable=True))
        batch_op.alter_column("body_text", existing_type=sa.Text(), nullable=True)
        batch_op.create_check_constraint(
            op.f("ck_outbox_email_body_or_template"),
            "body_text IS NOT NULL OR template IS NOT NULL",
        )


def downgrade():
    # A row still waiting for the worker to render it would be lost: deliver first.
    waiting = op.get_bind().scalar(sa.text("SELECT COUNT(*) FROM outbox_email WHERE body_text IS NULL"))
    if waiting:
        raise RuntimeError(
            f"{waiting} queued email(s) not rendered yet: run `carebox outbox send` first"
        )
    with op.batch_alter_table("outbox_email", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_outbox_email_body_or_template"), type_="check")
        batch_op.alter_column("body_text", existing_type=sa.Text(), nullable=False)
        batch_op.drop_column("context")
        batch_op.drop_column("lang")
        batch_op.drop_column("template")

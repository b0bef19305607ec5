"""inbound email chunks: the raw message in 4 MB pieces

Revision ID: 0015_inbound_email_chunks
Revises: 0014_whatsapp

PyMySQL sends bytes as hex, so a 10 MB message needed a 20 MB statement, over
MariaDB's default max_allowed_packet (16 MB): it could not be stored. The raw
message now lives in `inbound_email_chunk` rows of at most 4 MB each.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0015_inbound_email_chunks"
down_revision = "0014_whatsapp"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "inbound_email_chunk",
        sa.Column("inbound_email_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column(
            "data",
            sa.LargeBinary().with_variant(mysql.MEDIUMBLOB(), "mysql", "mariadb"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["inbound_email_id"],
            ["inbound_email.id"],
            name=op.f("fk_inbound_email_chunk_inbound_email_id_inbound_email"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("inbound_email_id", "seq", name=op.f("pk_inbound_email_chunk")),
    )
    # Rows stored so far (at most a few minutes' worth, before this shipped) become one
    # chunk each.
    op.execute(
        "INSERT INTO inbound_email_chunk (inbound_email_id, seq, data) "
        "SELECT id, 0, raw FROM inbound_email"
    )
    with op.batch_alter_table("inbound_email", schema=None) as batch_op:
        batch_op.drop_column("raw")


def downgrade():
    with op.batch_alter_table("inbound_email", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "raw",
                sa.LargeBinary().with_variant(mysql.LONGBLOB(), "mysql", "mariadb"),
                nullable=True,
            )
        )
    # Put every message back together (in Python: SQL has no portable BLOB concatenation).
    bind = op.get_bind()
    chunks = sa.table(
        "inbound_email_chunk",
        sa.column("inbound_email_id"),
        sa.column("seq"),
        sa.column("data", sa.LargeBinary()),
    )
    emails = sa.table("inbound_email", sa.column("id"), sa.column("raw", sa.LargeBinary()))
    ids = [r[0] for r in bind.execute(sa.select(chunks.c.inbound_email_id).distinct())]
    for email_id in ids:
        parts = bind.execute(
            sa.select(chunks.c.data)
            .where(chunks.c.inbound_email_id == email_id)
            .order_by(chunks.c.seq)
        )
        raw = b"".join(p[0] for p in parts)
        bind.execute(sa.update(emails).where(emails.c.id == email_id).values(raw=raw))
    op.drop_table("inbound_email_chunk")

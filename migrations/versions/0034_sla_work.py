"""sla work: scratch tables of the set-based recomputation of due times

Revision ID: 0034_sla_work
Revises: 0033_list_indexes

domain/sla_bulk.py writes the calendars' timelines (epoch seconds, with the working
seconds before each piece, keyed for equality lookups) and each running ticket's new
due times here, computes in SQL, writes the tickets, and deletes its rows (`run`).
"""

import sqlalchemy as sa
from alembic import op

revision = "0034_sla_work"
down_revision = "0033_list_indexes"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "sla_work_interval",
        sa.Column("run", sa.String(length=32), nullable=False),
        sa.Column("calendar_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("kind", sa.String(length=1), nullable=False),
        sa.Column("bucket", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("start_s", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("len_s", sa.Integer(), nullable=False),
        sa.Column("work", sa.Integer(), nullable=False),
        sa.Column("cum_s", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "run", "calendar_id", "kind", "bucket", "start_s", name=op.f("pk_sla_work_interval")
        ),
    )
    op.create_table(
        "sla_work_due",
        sa.Column("run", sa.String(length=32), nullable=False),
        sa.Column("ticket_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("calendar_id", sa.Integer(), nullable=False),
        sa.Column("since_s", sa.BigInteger(), nullable=False),
        sa.Column("since_cum", sa.BigInteger(), nullable=True),
        sa.Column("first_response_due", sa.DateTime(), nullable=True),
        sa.Column("resolution_due", sa.DateTime(), nullable=True),
        sa.Column("sla_warn_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("run", "ticket_id", name=op.f("pk_sla_work_due")),
    )


def downgrade():
    op.drop_table("sla_work_due")
    op.drop_table("sla_work_interval")

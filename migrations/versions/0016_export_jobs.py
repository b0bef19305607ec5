"""export jobs: large report exports written by a worker, offered only when whole

Revision ID: 0016_export_jobs
Revises: 0015_inbound_email_chunks
"""

import sqlalchemy as sa
from alembic import op

revision = "0016_export_jobs"
down_revision = "0015_inbound_email_chunks"
branch_labels = None
depends_on = None

STATUSES = ("queued", "running", "done", "failed", "expired")


def upgrade():
    op.create_table(
        "export_job",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("params", sa.Text(), nullable=False),
        sa.Column("locale", sa.String(length=10), nullable=False),
        sa.Column("requested_by_id", sa.Integer(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                *STATUSES,
                name="export_status",
                native_enum=False,
                create_constraint=True,
                length=max(map(len, STATUSES)),
            ),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("claim_token", sa.String(length=32), nullable=True),
        sa.Column("lease_until", sa.DateTime(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("rows_expected", sa.Integer(), nullable=True),
        sa.Column("rows_written", sa.Integer(), nullable=False),
        sa.Column("filename", sa.String(length=120), nullable=True),
        sa.Column("size_bytes", sa.BigInteger(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.CheckConstraint("status <> 'done' OR size_bytes IS NOT NULL", name=op.f("ck_export_job_done_has_file")),
        sa.CheckConstraint(
            "status <> 'running' OR claim_token IS NOT NULL",
            name=op.f("ck_export_job_running_claimed"),
        ),
        sa.ForeignKeyConstraint(
            ["requested_by_id"], ["user.id"],
            ondelete="CASCADE",
            name=op.f("fk_export_job_requested_by_id_user"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_export_job")),
    )
    op.create_index("ix_export_job_status_lease", "export_job", ["status", "lease_until"])
    op.create_index(
        "ix_export_job_requester", "export_job", ["requested_by_id", "created_at"]
    )


def downgrade():
    # The table takes its indexes with it (MariaDB refuses to drop the FK's index alone).
    op.drop_table("export_job")

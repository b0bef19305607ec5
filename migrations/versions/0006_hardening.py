"""hardening (issue 9)

Revision ID: 0006_hardening
Revises: 0005_resi
Create Date: 2026-12-01 09:00:00

- New accounts confirm their address before they can sign in (generic answers on
  registration): the accounts that exist already count as confirmed.
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_hardening"
down_revision = "0005_resi"
branch_labels = None
depends_on = None


def upgrade():
    user = sa.table("user", sa.column("confirmed_at", sa.DateTime), sa.column("created_at"))
    op.execute(
        user.update()
        .where(user.c.confirmed_at.is_(None))
        .values(confirmed_at=sa.func.coalesce(user.c.created_at, sa.func.current_timestamp()))
    )


def downgrade():
    pass  # which accounts were confirmed by the upgrade is not recorded; keeping them is safe

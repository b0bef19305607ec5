"""user name fulltext: the lists' search by a word of a customer's name (MySQL/MariaDB)

Revision ID: 0030_user_name_fulltext
Revises: 0029_dashboard_snapshot
"""

from alembic import op

revision = "0030_user_name_fulltext"
down_revision = "0029_dashboard_snapshot"
branch_labels = None
depends_on = None


def _mysql() -> bool:
    return op.get_bind().dialect.name in ("mysql", "mariadb")  # FULLTEXT: MySQL only


def upgrade():
    if _mysql():
        op.create_index("ix_user_name_fulltext", "user", ["name"], mysql_prefix="FULLTEXT")


def downgrade():
    if _mysql():
        op.drop_index("ix_user_name_fulltext", table_name="user")

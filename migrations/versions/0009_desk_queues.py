"""desk queues: who spoke last on a ticket, and when each staff member last opened it

Revision ID: 0009_desk_queues
Revises: 0008_tracking

`ticket.last_from_staff` is filled from each ticket's last public message;
`ticket_viewer` starts empty (every ticket with a customer's last word shows as
unread to its assignee until they open it).
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_desk_queues"
down_revision = "0008_tracking"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("ticket", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("last_from_staff", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    op.execute(
        "UPDATE ticket SET last_from_staff = COALESCE(("
        "SELECT m.from_staff FROM ticket_message m"
        " WHERE m.ticket_id = ticket.id AND m.internal = 0"
        " ORDER BY m.id DESC LIMIT 1), 0)"
    )
    op.create_table(
        "ticket_viewer",
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("opened_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["ticket.id"],
            name=op.f("fk_ticket_viewer_ticket_id_ticket"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user.id"],
            name=op.f("fk_ticket_viewer_user_id_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("ticket_id", "user_id", name=op.f("pk_ticket_viewer")),
    )
    with op.batch_alter_table("ticket_viewer", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ticket_viewer_user_id"), ["user_id"], unique=False)


def downgrade():
    op.drop_table("ticket_viewer")  # its index goes with it (MariaDB keeps it for the FK)
    with op.batch_alter_table("ticket", schema=None) as batch_op:
        batch_op.drop_column("last_from_staff")

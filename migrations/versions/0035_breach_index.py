"""breach index: ix_ticket_status_due also carries sla_paused_at

Revision ID: 0035_breach_index
Revises: 0034_sla_work

The home page counts each open list's SLA breaches from this index (views/dashboard.py).
Since the clock pauses while a ticket waits for the customer, `Ticket.sla_breached` reads
`sla_paused_at` too, which the index lacked: every candidate row was looked up in the
table (270 ms for Progress at 1M tickets, most of the master's home page).
"""

from alembic import op

revision = "0035_breach_index"
down_revision = "0034_sla_work"
branch_labels = None
depends_on = None

BEFORE = ["status", "resolution_due", "first_response_due", "first_response_at", "finished_at"]


def upgrade():
    op.drop_index("ix_ticket_status_due", table_name="ticket")
    op.create_index("ix_ticket_status_due", "ticket", [*BEFORE, "sla_paused_at", "department_id"])


def downgrade():
    op.drop_index("ix_ticket_status_due", table_name="ticket")
    op.create_index("ix_ticket_status_due", "ticket", [*BEFORE, "department_id"])

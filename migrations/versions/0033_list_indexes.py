"""list indexes: Responded in resolution-due order (with department and assignee twins), and who spoke last

Revision ID: 0033_list_indexes
Revises: 0032_whatsapp_verify_phone
"""

from alembic import op

revision = "0033_list_indexes"
down_revision = "0032_whatsapp_verify_phone"
branch_labels = None
depends_on = None

INDEXES = {
    "ix_ticket_status_resolution": ["status", "resolution_due", "id"],
    "ix_ticket_status_dept_resolution": ["status", "department_id", "resolution_due", "id"],
    "ix_ticket_assignee_resolution": ["assignee_id", "status", "resolution_due", "id"],
    "ix_ticket_status_spoke_next_due": ["status", "last_from_staff", "next_due_at", "id"],
}


def upgrade():
    for name, columns in INDEXES.items():
        op.create_index(name, "ticket", columns)


def downgrade():
    for name in INDEXES:
        op.drop_index(name, table_name="ticket")

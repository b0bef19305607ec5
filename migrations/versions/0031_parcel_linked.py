"""parcel linked: staff name the parcel a ticket is about, recorded on its timeline

Revision ID: 0031_parcel_linked
Revises: 0030_user_name_fulltext

`tickets.link_parcel` (the desk's "Link a parcel" form) writes a `parcel_linked`
event whose note is the resi.
"""

from alembic import op

revision = "0031_parcel_linked"
down_revision = "0030_user_name_fulltext"
branch_labels = None
depends_on = None

OLD_ACTIONS = (
    "filed", "routed", "dispatched", "escalated", "replied", "customer_replied", "note",
    "priority", "assigned", "finished", "reopened", "rated", "due_moved", "finish_warned",
    "merged",
)  # fmt: skip
NEW_ACTIONS = (*OLD_ACTIONS, "parcel_linked")


def _actions_check(values):
    return "action IN ({})".format(", ".join(f"'{v}'" for v in values))


def upgrade():
    with op.batch_alter_table("ticket_event", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_ticket_event_event_action"), type_="check")
        batch_op.create_check_constraint(
            op.f("ck_ticket_event_event_action"), _actions_check(NEW_ACTIONS)
        )


def downgrade():
    op.execute("DELETE FROM ticket_event WHERE action = 'parcel_linked'")
    with op.batch_alter_table("ticket_event", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_ticket_event_event_action"), type_="check")
        batch_op.create_check_constraint(
            op.f("ck_ticket_event_event_action"), _actions_check(OLD_ACTIONS)
        )

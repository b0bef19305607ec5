"""worktime: business hours, company days, working-time SLA clocks on tickets

Revision ID: 0011_worktime
Revises: 0010_galera

Each department gets a zone and its hours per weekday; the company's own days off
(and worked public holidays) live in company_day. A ticket keeps, from `sla_since`,
the working seconds left on each clock, when it was paused, and when its warnings
went out. Existing tickets keep their wall-clock due times (`sla_since` NULL) until
`carebox sla recompute --all` puts them on working time.
"""

import sqlalchemy as sa
from alembic import op

revision = "0011_worktime"
down_revision = "0010_galera"
branch_labels = None
depends_on = None

OLD_ACTIONS = (
    "filed", "routed", "dispatched", "escalated", "replied", "customer_replied", "note",
    "priority", "assigned", "finished", "reopened", "rated",
)  # fmt: skip
NEW_ACTIONS = (*OLD_ACTIONS, "due_moved")


def _actions_check(values):
    return "action IN (%s)" % ", ".join(f"'{v}'" for v in values)


def upgrade():
    with op.batch_alter_table("department", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "timezone", sa.String(length=40), server_default="Asia/Jakarta", nullable=False
            )
        )
        batch_op.add_column(
            sa.Column("observes_holidays", sa.Boolean(), server_default=sa.true(), nullable=False)
        )
    op.create_table(
        "business_hours",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("department_id", sa.Integer(), nullable=False),
        sa.Column("weekday", sa.Integer(), nullable=False),
        sa.Column("start_minute", sa.Integer(), nullable=False),
        sa.Column("end_minute", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "weekday BETWEEN 0 AND 6", name=op.f("ck_business_hours_weekday_range")
        ),
        sa.CheckConstraint(
            "start_minute >= 0 AND end_minute <= 1440", name=op.f("ck_business_hours_within_day")
        ),
        sa.CheckConstraint(
            "start_minute < end_minute", name=op.f("ck_business_hours_starts_before_end")
        ),
        sa.ForeignKeyConstraint(
            ["department_id"],
            ["department.id"],
            name=op.f("fk_business_hours_department_id_department"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_business_hours")),
    )
    with op.batch_alter_table("business_hours", schema=None) as batch_op:
        batch_op.create_index("ix_business_hours_department", ["department_id", "weekday"])
    op.create_table(
        "company_day",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("closed", sa.Boolean(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["user.id"],
            name=op.f("fk_company_day_created_by_id_user"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_company_day")),
        sa.UniqueConstraint("day", name=op.f("uq_company_day_day")),
    )
    with op.batch_alter_table("ticket", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sla_since", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("first_response_left", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("resolution_left", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("sla_paused_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("sla_warned_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("auto_finish_warned_at", sa.DateTime(), nullable=True))
    with op.batch_alter_table("ticket_event", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_ticket_event_event_action"), type_="check")
        batch_op.create_check_constraint(op.f("ck_ticket_event_event_action"), _actions_check(NEW_ACTIONS))


def downgrade():
    op.execute("DELETE FROM ticket_event WHERE action = 'due_moved'")
    with op.batch_alter_table("ticket_event", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_ticket_event_event_action"), type_="check")
        batch_op.create_check_constraint(op.f("ck_ticket_event_event_action"), _actions_check(OLD_ACTIONS))
    with op.batch_alter_table("ticket", schema=None) as batch_op:
        batch_op.drop_column("auto_finish_warned_at")
        batch_op.drop_column("sla_warned_at")
        batch_op.drop_column("sla_paused_at")
        batch_op.drop_column("resolution_left")
        batch_op.drop_column("first_response_left")
        batch_op.drop_column("sla_since")
    op.drop_table("company_day")
    op.drop_table("business_hours")  # its index goes with it (MariaDB keeps it for the FK)
    with op.batch_alter_table("department", schema=None) as batch_op:
        batch_op.drop_column("observes_holidays")
        batch_op.drop_column("timezone")

"""shipment situation: a ticket's parcel situation, routing on it, the catch-all rule

Revision ID: 0022_shipment_situation
Revises: 0021_api_tokens

The ticket stores its parcel's situation (late, stuck, failed_delivery,
delivered_disputed, damaged) and the next moment time alone may change it, indexed
per status for the situations' worker (domain/situations.py). Open tickets get theirs
from `carebox tracking situations --all` after the upgrade.

A routing rule may name a situation, and may name nothing at all: the catch-all.
Installations that already have routing rules and a Customer Service department
(code CS) get a catch-all rule to it, as the seed gives new ones (issue 13: a new
complaint no other rule takes must not wait unseen in Progress); the master admin
may delete it to triage by hand.
"""

import sqlalchemy as sa
from alembic import op

revision = "0022_shipment_situation"
down_revision = "0021_api_tokens"
branch_labels = None
depends_on = None

SITUATIONS = ("damaged", "delivered_disputed", "failed_delivery", "stuck", "late")


def _situation(name):
    return sa.Enum(*SITUATIONS, name=name, native_enum=False, create_constraint=True)


def upgrade():
    with op.batch_alter_table("ticket", schema=None) as batch_op:
        batch_op.add_column(sa.Column("situation", _situation("ticket_situation"), nullable=True))
        batch_op.add_column(sa.Column("situation_due_at", sa.DateTime(), nullable=True))
        batch_op.create_index(
            "ix_ticket_status_situation_due", ["status", "situation_due_at", "id"]
        )
    with op.batch_alter_table("routing_rule", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_routing_rule_matches_something"), type_="check")
        batch_op.add_column(
            sa.Column("situation", _situation("routing_situation"), nullable=True)
        )

    conn = op.get_bind()
    rule = sa.table(
        "routing_rule",
        sa.column("id", sa.Integer),
        sa.column("department_id", sa.Integer),
        sa.column("kind", sa.String),
        sa.column("product_id", sa.Integer),
        sa.column("situation", sa.String),
        sa.column("position", sa.Integer),
        sa.column("active", sa.Boolean),
    )
    department = sa.table("department", sa.column("id", sa.Integer), sa.column("code", sa.String))
    cs = conn.scalar(sa.select(department.c.id).where(department.c.code == "CS"))
    has_rules = conn.scalar(sa.select(sa.func.count()).select_from(rule))
    if cs is not None and has_rules:
        conn.execute(
            rule.insert().values(department_id=cs, position=100, active=True, kind=None)
        )


def downgrade():
    op.execute(
        "DELETE FROM routing_rule WHERE situation IS NOT NULL "
        "OR (kind IS NULL AND product_id IS NULL)"
    )
    with op.batch_alter_table("routing_rule", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_routing_rule_routing_situation"), type_="check")
        batch_op.drop_column("situation")
        batch_op.create_check_constraint(
            op.f("ck_routing_rule_matches_something"),
            "kind IS NOT NULL OR product_id IS NOT NULL",
        )
    with op.batch_alter_table("ticket", schema=None) as batch_op:
        batch_op.drop_index("ix_ticket_status_situation_due")
        batch_op.drop_column("situation_due_at")
        batch_op.drop_constraint(op.f("ck_ticket_ticket_situation"), type_="check")
        batch_op.drop_column("situation")

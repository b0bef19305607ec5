"""every order is a shipment with a resi

Revision ID: 0005_resi
Revises: 0004_next_due
Create Date: 2026-11-28 09:00:00

Orders placed before this revision get a random resi (UPU S10, prefix CB,
country ID) here. The check digit is computed in this file, not imported from
the application, so the migration keeps meaning what it meant today.
"""

import secrets

import sqlalchemy as sa
from alembic import op

revision = "0005_resi"
down_revision = "0004_next_due"
branch_labels = None
depends_on = None

WEIGHTS = (8, 6, 4, 2, 3, 5, 9, 7)


def _resi(serial: int) -> str:
    digits = f"{serial:08d}"
    check = 11 - sum(int(d) * w for d, w in zip(digits, WEIGHTS, strict=True)) % 11
    check = {10: 0, 11: 5}.get(check, check)
    return f"CB{digits}{check}ID"


def upgrade():
    with op.batch_alter_table("customer_order", schema=None) as batch_op:
        batch_op.add_column(sa.Column("resi", sa.String(length=13), nullable=True))
    order = sa.table("customer_order", sa.column("id", sa.Integer()), sa.column("resi"))
    conn = op.get_bind()
    ids = [row.id for row in conn.execute(sa.select(order.c.id))]
    taken: set[str] = set()
    rows = []
    for order_id in ids:
        resi = _resi(secrets.randbelow(10**8))
        while resi in taken:
            resi = _resi(secrets.randbelow(10**8))
        taken.add(resi)
        rows.append({"oid": order_id, "r": resi})
    if rows:
        conn.execute(
            order.update().where(order.c.id == sa.bindparam("oid")).values(resi=sa.bindparam("r")),
            rows,
        )
    with op.batch_alter_table("customer_order", schema=None) as batch_op:
        batch_op.alter_column("resi", existing_type=sa.String(length=13), nullable=False)
        batch_op.create_unique_constraint(batch_op.f("uq_customer_order_resi"), ["resi"])


def downgrade():
    with op.batch_alter_table("customer_order", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_customer_order_resi"), type_="unique")
        batch_op.drop_column("resi")

"""Claiming rows of a queue table in the database, for the WhatsApp queues.

The same claim protocol as the email outbox (`channels/mailer.py` states it): a
claimed row is `busy` with a `claim_token`, its `next_attempt_at` is the claim's
deadline, so a dead worker's rows become due again; `SELECT … FOR UPDATE SKIP
LOCKED` on MariaDB, one atomic `UPDATE … WHERE id IN (SELECT …)` on SQLite. The
mailer keeps its own copy (it reads more columns and is tuned for mass mail);
this one serves any table with the columns `status`, `attempts`,
`next_attempt_at`, `claim_token` and `claimed_at`.

Each step commits its own short transaction on its own connection, never
`db.session`'s.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Table, and_, select, update

from ..extensions import db


@dataclass
class Claim:
    """Rows this worker holds: their ids, the token, and when it took them."""

    ids: list[int]
    token: str
    claimed_at: datetime


def _is_mysql() -> bool:
    return db.engine.dialect.name in ("mysql", "mariadb")


def claim(
    table: Table, *, waiting: str, busy: str, batch: int, timeout: float, now: datetime
) -> Claim:
    """Take up to `batch` due rows (`waiting` and due, or `busy` past their deadline)."""
    token = uuid.uuid4().hex
    values = {
        "status": busy,
        "claim_token": token,
        "claimed_at": now,
        "next_attempt_at": now + timedelta(seconds=timeout),
        "attempts": table.c.attempts + 1,
    }
    with db.engine.connect() as conn:
        if _is_mysql():
            conn = conn.execution_options(isolation_level="READ COMMITTED")
            with conn.begin():
                ids: list[int] = []
                for status in (waiting, busy):  # one status at a time: see channels/mailer.py
                    ids += conn.scalars(
                        select(table.c.id)
                        .where(table.c.status == status, table.c.next_attempt_at <= now)
                        .order_by(table.c.next_attempt_at, table.c.id)
                        .limit(batch - len(ids))
                        .with_for_update(skip_locked=True)
                    ).all()
                    if len(ids) >= batch:
                        break
                if ids:
                    conn.execute(update(table).where(table.c.id.in_(ids)).values(**values))
        else:
            with conn.begin():
                a = table.alias("candidate")
                pick = (
                    select(a.c.id)
                    .where(a.c.status.in_((waiting, busy)), a.c.next_attempt_at <= now)
                    .order_by(a.c.next_attempt_at, a.c.id)
                    .limit(batch)
                )
                conn.execute(update(table).where(table.c.id.in_(pick)).values(**values))
        with conn.begin():
            ids = conn.scalars(
                select(table.c.id).where(table.c.claim_token == token).order_by(table.c.id)
            ).all()
    return Claim(list(ids), token, now)


def mine(table: Table, row_id: int, token: str, busy: str):
    """The WHERE clause of an update that only lands while this worker holds the row."""
    return and_(table.c.id == row_id, table.c.claim_token == token, table.c.status == busy)


def backoff(attempts: int, base: float, cap: float) -> float:
    """Seconds before the next try: base, 2·base, 4·base, … at most cap."""
    return min(base * 2 ** max(attempts - 1, 0), cap)

"""Per-process copies of the desk's setup — the working calendars and the routing rules —
that are never stale (issue 16 item 3: every filing read both, three statements of ten).

Guarantees:
- **Every change is seen.** A flush that writes a row of the setup (`SETUP`: departments,
  their business hours, company days, routing rules, and products, whose deletion takes
  their rules with it) and any ORM INSERT, UPDATE or DELETE statement on those tables
  writes a new random token into `setup_version`, in the same transaction. Session events
  do it, so no writer — the back office, the seed, the CLI, a test's factory — can forget.
- **A copy is used only under its token**: the one the current transaction read, either
  with the session's user, in the same statement (`token_column`, security_setup: no round
  trip of its own), or else by one SELECT the first time a transaction asks. So the first
  operation after a change commits — in any process: another gunicorn worker, the CLI,
  another host — loads the setup again.
- The token is read before a copy's rows, in the same transaction: a copy is never older
  than the token it is kept under.
- A transaction that changed the setup itself reads it from the database until it ends;
  so does every transaction while there is no token row (a table emptied by hand).
- Copies belong to one app (its `extensions`), are never changed once made, and are
  shared by the threads of a process.

A change written around the ORM (raw SQL, a data migration) must call `bump` itself.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TypeVar

from flask import current_app
from sqlalchemy import event, insert, select, update
from sqlalchemy.orm import Session

from ..extensions import db
from ..models import BusinessHours, CompanyDay, Department, Product, RoutingRule, SetupVersion

SETUP = (Department, BusinessHours, CompanyDay, RoutingRule, Product)
_TABLES = frozenset(model.__table__ for model in SETUP)
_TOKEN = "carebox_setup_token"  # noqa: S105 (session.info: the token this transaction read)
_CHANGED = "carebox_setup_changed"  # session.info: this transaction changed the setup
_COPIES = "carebox_setup"  # app.extensions: {name: (token, value)}
_ROW = SetupVersion.__table__
T = TypeVar("T")


def token_column():
    """The current token as a column, for a statement the request runs anyway."""
    return select(_ROW.c.token).where(_ROW.c.id == 1).scalar_subquery().label("setup_token")


def seen(session: Session, token: str | None) -> None:
    """`token` was read in `session`'s current transaction (None: there is no row)."""
    session.info[_TOKEN] = token


def cached(name: str, load: Callable[[], T]) -> T:
    """`load()`'s value, from this process's copy when it was loaded under the token the
    current transaction reads, else loaded now (and kept, unless this transaction changed
    the setup). `load` reads in the current transaction and returns what nobody changes."""
    session = db.session()
    if _TOKEN not in session.info:
        seen(session, session.scalar(select(_ROW.c.token).where(_ROW.c.id == 1)))
    token = session.info[_TOKEN]
    if token is None or session.info.get(_CHANGED):
        return load()
    copies = current_app.extensions.setdefault(_COPIES, {})
    copy = copies.get(name)
    if copy is not None and copy[0] == token:
        return copy[1]
    value = load()
    copies[name] = (token, value)
    return value


def bump(session: Session) -> None:
    """Give the setup a new token in `session`'s transaction: every copy is now old."""
    conn = session.connection()
    token = uuid.uuid4().hex
    if not conn.execute(update(_ROW).where(_ROW.c.id == 1).values(token=token)).rowcount:
        conn.execute(insert(_ROW).values(id=1, token=token))
    session.info[_CHANGED] = True


@event.listens_for(Session, "before_flush")
def _flushing(session, flush_context, instances) -> None:
    # Every such flush, not once a transaction: a savepoint rolled back takes its token.
    # A value set to what it was writes nothing, and changes nothing (a seed run again).
    changed = [o for o in session.dirty if isinstance(o, SETUP) and session.is_modified(o)]
    if changed or any(isinstance(o, SETUP) for o in (*session.new, *session.deleted)):
        bump(session)


@event.listens_for(Session, "do_orm_execute")
def _executing(state) -> None:
    if not state.is_select and getattr(state.statement, "table", None) in _TABLES:
        bump(state.session)


@event.listens_for(Session, "after_transaction_end")
def _ended(session, transaction) -> None:
    if transaction.parent is None:  # the transaction itself, not a savepoint in it
        session.info.pop(_TOKEN, None)
        session.info.pop(_CHANGED, None)

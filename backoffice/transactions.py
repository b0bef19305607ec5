"""Commit-time conflicts of a Galera cluster (MariaDB error 1213), in one place.

On a Galera cluster every node takes writes, and row locks (`FOR UPDATE`,
`SKIP LOCKED`) are local to the node that takes them. Two transactions on two
nodes that change the same row both run to their COMMIT; there the cluster
certifies them in one global order, and the later one fails with error 1213
("Deadlock found when trying to get lock; try restarting transaction"), having
changed nothing. A node's local transaction that holds a row a replicated write
needs is aborted the same way, on its next statement. On a single server 1213
is InnoDB's own deadlock, which needs the same treatment.

What carebox does with it (docs/architecture.md, "Galera"):
- The engine event below turns every 1213 into `CertificationConflict`, a
  subclass of SQLAlchemy's OperationalError (code that catches DBAPIError still
  does), so the rest of the code can tell it apart without reading error codes.
- `retrying(work)` runs work that is safe to repeat (it decides again from what
  it reads: the outbox worker's steps, a customer filing a ticket) again from
  the start, a few times, after a rollback.
- `commit_or_conflict(message)` commits a change a user decided on from what
  they saw (a staff action on a ticket version): a conflict there is the normal
  "changed by someone else" ConflictError, never a silent retry.
- Anything else that meets one gets a 409 page ("changed by someone else,
  nothing saved"), never a 500 (`init_app`).

Claims that must be exclusive never rely on a lock for it: they write the row
they claim (a compare-and-set UPDATE, a counter every claimer increments, or a
unique key), so certification lets exactly one of two racing nodes through.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from flask import Flask, current_app, render_template, request
from flask_babel import gettext as _
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, OperationalError

from .extensions import db

log = logging.getLogger("carebox.transactions")

ER_LOCK_DEADLOCK = 1213  # InnoDB deadlock; Galera's certification failure
ATTEMPTS = 5  # `retrying` gives up (re-raises) after this many tries
T = TypeVar("T")


class CertificationConflict(OperationalError):
    """Error 1213: this transaction lost a certification (or deadlock) race and was rolled
    back entirely; running it again from the start is safe when the work is."""


class _Counts:
    """How often conflicts were met and retried in this process (bench/ reads them)."""

    def __init__(self):
        self._lock = threading.Lock()
        self.conflicts = 0
        self.retried = 0
        self.gave_up = 0

    def add(self, name: str) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + 1)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return {"conflicts": self.conflicts, "retried": self.retried, "gave_up": self.gave_up}


counts = _Counts()


def _error_code(exc: BaseException | None) -> int | None:
    args = getattr(exc, "args", None) or ()
    return args[0] if args and isinstance(args[0], int) else None


def is_conflict(exc: BaseException) -> bool:
    """Whether `exc` is a 1213 raised through SQLAlchemy."""
    if isinstance(exc, CertificationConflict):
        return True
    return isinstance(exc, DBAPIError) and _error_code(exc.orig) == ER_LOCK_DEADLOCK


@event.listens_for(Engine, "handle_error")
def _name_the_conflict(context):
    """Raise CertificationConflict instead of a plain OperationalError for a 1213."""
    if _error_code(context.original_exception) != ER_LOCK_DEADLOCK:
        return None
    if isinstance(context.sqlalchemy_exception, CertificationConflict):
        return None
    counts.add("conflicts")
    return CertificationConflict(
        context.statement,
        context.parameters,
        context.original_exception,
        connection_invalidated=context.is_disconnect,
    )


def _pause(attempt: int) -> None:
    # A short random wait: two losers retrying in lockstep would meet again.
    time.sleep(random.uniform(0, min(0.02 * 2**attempt, 0.5)))


def retrying(
    work: Callable[[], T],
    *,
    commit: bool = True,
    attempts: int = ATTEMPTS,
    what: str = "",
) -> T:
    """Run `work()` (then commit `db.session`, unless `commit=False`), and run it again
    from the start after a rollback when it meets a certification conflict.

    Only for work that is safe to repeat: it must decide again from what it reads, and
    keep nothing from the failed attempt but its inputs. With `commit=False`, `work`
    opens and commits its own transactions (`db.engine.begin()`); it must not leave
    changes in `db.session`. After `attempts` conflicts the last one is raised.
    """
    for attempt in range(1, attempts + 1):
        try:
            result = work()
            if commit:
                db.session.commit()
            return result
        except DBAPIError as exc:
            if commit:
                db.session.rollback()
            if not is_conflict(exc):
                raise
            if attempt == attempts:
                counts.add("gave_up")
                log.warning("%s: conflict %d times, giving up", what or work, attempts)
                raise
            counts.add("retried")
            log.info("%s: conflict with another node's commit, retrying (%d)", what, attempt)
            _pause(attempt)
    raise AssertionError("unreachable")  # pragma: no cover


def commit_or_conflict(message: str) -> None:
    """Commit `db.session`; a certification conflict rolls back and raises
    `ConflictError(message)` (the change was decided on a version that is gone)."""
    from .domain import ConflictError

    try:
        db.session.commit()
    except DBAPIError as exc:
        db.session.rollback()
        if is_conflict(exc):
            raise ConflictError(message) from exc
        raise


def _handle_conflict(exc: CertificationConflict):
    db.session.rollback()
    current_app.logger.warning(
        "certification conflict on %s %s: answered 409", request.method, request.path
    )
    title = _("Changed by someone else")
    message = _(
        "Someone else changed this at the same moment, so nothing of yours was saved. "
        "Reload the page and try again."
    )
    accept = request.accept_mimetypes
    if accept["application/json"] > accept["text/html"]:
        return {"error": title, "message": message}, 409
    return render_template("error.html", code=409, title=title, message=message), 409


def init_app(app: Flask) -> None:
    """A conflict no caller handled is a 409 page, not a 500 (also in tests)."""
    app.register_error_handler(CertificationConflict, _handle_conflict)

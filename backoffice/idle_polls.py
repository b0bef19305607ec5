"""The short way of a poll that finds nothing new (issue 16 item 4: "answer a 304 without
loading more than the request needs: the session's user, the ticket's version").

The desk and the chat poll every few seconds, and almost every poll is a 304. The full
way to that 304 loads the user as an ORM object with its roles for Flask-Login,
builds Flask-Principal's identity, runs Flask-Security's decorator and the view's scope
query. Here, before all that — the first `before_request` of the app — a poll whose
endpoint registered a check with `idle_poll` and that sends If-None-Match is answered
from one statement: the ticket joined to the session's user — by the session's
`fs_uniquifier`, active, with their roles' permissions (the desk adds its viewers) —
from which the check computes the ETag the full way would give. When it matches, the
answer is the 304, with the full way's headers (the after-request hooks still run).

Anything else goes the full way and is answered, or refused, there: a request with a
body, no session user (an expired or tampered cookie opens as an empty session), a
session Flask-Login's session protection would question, a user who is gone, inactive
or logged out everywhere (a new `fs_uniquifier`), a ticket they may not see, a changed
ETag, a Host outside TRUSTED_HOSTS (no endpoint). The short way only ever says
"nothing new" to someone the full way would give the same answer. It runs before the
other hooks because none of them can refuse such a request: no rate limit applies to a
poll (tests/test_idle_polls.py checks; with RATELIMIT_DEFAULT or RATELIMIT_APPLICATION
set it runs after the limiter's hook instead), CSRF checks no GET, and the size and
multipart checks need a body. A database that cannot be reached raises as in the full
way: 503 with Retry-After (web._handle_database_error).

The statement is built once per check and read on its own connection in autocommit
(`read`), so nothing is left to roll back: one round trip per idle poll, where a read
in the request's transaction costs its ROLLBACK too.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask, current_app, request, session
from sqlalchemy import Select, bindparam, select

from .extensions import db
from .models import Role, Ticket, User
from .models.user import roles_users

# endpoint -> check(uniquifier, **view_args) -> the ETag of its full answer now, or None
_CHECKS: dict[str, Callable[..., str | None]] = {}
BIND = "idle_polls"  # the autocommit engine of `read` (connections.init_app)


def idle_poll(endpoint: str):
    """Register `check(uniquifier, **view_args) -> ETag | None` for `endpoint`: the ETag
    its full answer would carry now, or None when only the full way can tell."""

    def register(check):
        _CHECKS[endpoint] = check
        return check

    return register


def ticket_statement(*columns, user_columns=()) -> Select:
    """SELECT `columns` of the ticket numbered by the `number` parameter, joined to the
    active user whose `fs_uniquifier` is the `uniquifier` parameter, one row per role,
    with what `SessionUser` reads: their id, roles' permissions and the `user_columns`
    the check needs (User.department_id, User.locale). Built once by each check (a
    statement object reused keeps its cache key: nothing is compiled or keyed again per
    poll), with no column more than it needs (PyMySQL parses each column's description
    in Python, on every read)."""
    return (
        select(*columns)
        .select_from(Ticket)
        .join(User, User.fs_uniquifier == bindparam("uniquifier"))
        .outerjoin(roles_users, roles_users.c.user_id == User.id)
        .outerjoin(Role, Role.id == roles_users.c.role_id)
        .where(Ticket.number == bindparam("number"), User.active.is_(True))
        .add_columns(
            User.id.label("session_user_id"),
            Role.permissions.label("session_user_permissions"),
            *(column.label(f"session_user_{column.key}") for column in user_columns),
        )
    )


def read(stmt: Select, **params) -> list:
    """The rows of `stmt`, read on the idle polls' engine: autocommit, so closing the
    connection sends no ROLLBACK (SQLAlchemy's `skip_autocommit_rollback`). Without that
    engine (SQLite: nothing to save) on the app's."""
    engine = db.engines.get(BIND) or db.engine
    with engine.connect() as conn:
        return conn.execute(stmt, params).all()


class SessionUser:
    """The session's user as domain/permissions.py reads one (`has`, `can_see_ticket`,
    `customer_tickets`' rule): id, department, language, the roles' permissions."""

    is_authenticated = True
    active = True

    def __init__(self, rows):
        first = rows[0]._mapping
        self.id = first["session_user_id"]
        self.department_id = first.get("session_user_department_id")
        self.locale = first.get("session_user_locale")
        self._permissions = {p for r in rows for p in (r.session_user_permissions or ())}

    def has_permission(self, permission: str) -> bool:
        return permission in self._permissions


def _short_way():
    check = _CHECKS.get(request.endpoint)
    if check is None or request.method != "GET" or not request.if_none_match:
        return None
    if request.content_length or "Transfer-Encoding" in request.headers:
        return None  # a body: the full way's checks (size, multipart) read it
    uniquifier = session.get("_user_id")
    if not uniquifier or not isinstance(uniquifier, str):
        return None
    # Flask-Login's session protection: a session from another address or browser is
    # the full way's to judge.
    if session.get("_id") != current_app.login_manager._session_identifier_generator():
        return None
    etag = check(uniquifier, **(request.view_args or {}))
    if etag is None or not request.if_none_match.contains(etag):
        return None
    resp = current_app.response_class(status=304)
    resp.set_etag(etag)
    resp.headers["Cache-Control"] = "private, no-cache"
    return resp


def init_app(app: Flask) -> None:
    """Last in create_app: the short way becomes the first before-request function
    (after the limiter's when the app sets limits on every route)."""
    funcs = app.before_request_funcs.setdefault(None, [])
    if app.config.get("RATELIMIT_DEFAULT") or app.config.get("RATELIMIT_APPLICATION"):
        from .extensions import limiter

        hook = next((i for i, f in enumerate(funcs) if getattr(f, "__self__", None) is limiter), -1)
        funcs.insert(hook + 1, _short_way)  # (no hook: limits are off)
    else:
        funcs.insert(0, _short_way)

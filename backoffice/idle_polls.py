"""The short way of a poll that finds nothing new (issue 16 item 4: "answer a 304 without
loading more than the request needs: the session's user, the ticket's version").

The desk and the chat poll every few seconds, and almost every poll is a 304. The full
way to that 304 loads the user as an ORM object with its roles for Flask-Login,
builds Flask-Principal's identity, runs Flask-Security's decorator and the view's scope
query. Here, before all that (a `before_request` just ahead of Flask-Principal's), a
poll whose endpoint registered a check with `idle_poll` and that sends If-None-Match is
answered from one statement (the desk adds its presence read): the ticket joined to the
session's user — by the session's `fs_uniquifier`, active, with their roles'
permissions — from which the check computes the ETag the full way would give. When it
matches, the answer is the 304, with the full way's headers.

Anything else goes the full way and is answered, or refused, there: no session user, a
session Flask-Login's session protection would question, a user who is gone, inactive
or logged out everywhere (a new `fs_uniquifier`), a ticket they may not see, a
heartbeat due, a changed ETag. The short way only ever says "nothing new" to someone
the full way would give the same answer.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask, current_app, request, session
from flask_principal import Principal
from sqlalchemy import Select, select

from .extensions import db
from .models import Role, Ticket, User
from .models.user import roles_users

# endpoint -> check(uniquifier, **view_args) -> the ETag of its full answer now, or None
_CHECKS: dict[str, Callable[..., str | None]] = {}


def idle_poll(endpoint: str):
    """Register `check(uniquifier, **view_args) -> ETag | None` for `endpoint`: the ETag
    its full answer would carry now, or None when only the full way can tell."""

    def register(check):
        _CHECKS[endpoint] = check
        return check

    return register


def with_session_user(stmt: Select, uniquifier: str) -> Select:
    """`stmt` joined to the active user whose `fs_uniquifier` the session names, one row
    per role, with what `SessionUser` reads."""
    return (
        stmt.join(User, User.fs_uniquifier == uniquifier)
        .outerjoin(roles_users, roles_users.c.user_id == User.id)
        .outerjoin(Role, Role.id == roles_users.c.role_id)
        .where(User.active.is_(True))
        .add_columns(
            User.id.label("session_user_id"),
            User.department_id.label("session_user_department_id"),
            User.locale.label("session_user_locale"),
            Role.permissions.label("session_user_permissions"),
        )
    )


def ticket_for_session(uniquifier: str, number: str, *columns):
    """(the session's user, the row of `columns` of the ticket numbered `number`), or
    (None, None) when either is missing: the one statement of an idle poll's check."""
    stmt = select(*columns).select_from(Ticket).where(Ticket.number == number)
    rows = db.session.execute(with_session_user(stmt, uniquifier)).all()
    return (SessionUser(rows), rows[0]) if rows else (None, None)


class SessionUser:
    """The session's user as domain/permissions.py reads one (`has`, `can_see_ticket`,
    `customer_tickets`' rule): id, department, language, the roles' permissions."""

    is_authenticated = True
    active = True

    def __init__(self, rows):
        first = rows[0]
        self.id = first.session_user_id
        self.department_id = first.session_user_department_id
        self.locale = first.session_user_locale
        self._permissions = {p for r in rows for p in (r.session_user_permissions or ())}

    def has_permission(self, permission: str) -> bool:
        return permission in self._permissions


def _short_way():
    check = _CHECKS.get(request.endpoint)
    if check is None or request.method != "GET" or not request.if_none_match:
        return None
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
    """After Security: the short way runs just before Flask-Principal loads the user
    (after the limiter's and the CSRF's checks)."""
    funcs = app.before_request_funcs.setdefault(None, [])
    at = next(
        (i for i, f in enumerate(funcs) if isinstance(getattr(f, "__self__", None), Principal)),
        len(funcs),
    )
    funcs.insert(at, _short_way)

"""Flask-Security-Too: the datastore, the register form and the customer role."""

from __future__ import annotations

import functools
import hashlib

from flask import Flask, flash, has_request_context, request, session
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, user_logged_out
from flask_security import (
    RegisterFormV2,
    SQLAlchemyUserDatastore,
    password_reset,
    user_confirmed,
    user_not_registered,
    user_registered,
)
from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import contains_eager, load_only
from wtforms import BooleanField, StringField
from wtforms.validators import DataRequired, Length, Optional, Regexp

from .cleaning import one_line
from .domain import accounts, contacts, setup_cache
from .domain import permissions as perm
from .extensions import db, limiter, security
from .i18n import TranslatedMeta
from .models import Role, User
from .models.user import roles_users


class CareboxUserDatastore(SQLAlchemyUserDatastore):
    """Flask-Security's datastore, finding a user and their roles in one statement that
    every engine serves from its indexes (issue 16: the user of every request).

    Flask-Security joins the roles as `user LEFT JOIN (roles_users JOIN role)`; SQLite
    plans that nested join by materialising it, a scan of every row of roles_users
    (7 ms per request at 20,000 customers, growing with them). Two flat outer joins
    read the same rows through the primary keys, on SQLite and on MariaDB alike.

    The session's user of a back-office request (found by `fs_uniquifier`, on a path
    under /admin) is read with the columns such a request reads of its own user
    (`BACKOFFICE_USER_COLUMNS`); any other loads when first asked for. PyMySQL parses
    every column's description on every statement (some 50 function calls a column):
    the 33 columns of user and role were a fifth of a small page's Python. The statement
    also reads the desk's setup token (domain/setup_cache.py).
    """

    def find_user(self, case_insensitive: bool = False, **kwargs):
        ((attr, value),) = kwargs.items()  # one attribute, as Flask-Security's own
        if attr == "fs_uniquifier" and not case_insensitive:
            lean = has_request_context() and request.path.startswith("/admin/")
            stmt = _by_uniquifier(lean)
            row = db.session.execute(stmt, {"uniquifier": value}).unique().first()
            if row is None:
                return None
            setup_cache.seen(db.session(), row.setup_token)  # its own statement, saved
            return row[0]
        column = getattr(User, attr)
        where = func.lower(column) == func.lower(value) if case_insensitive else column == value
        return db.session.scalars(_with_roles(select(User)).where(where)).unique().first()


# What a back-office page reads of its own user: who they are, whether they may sign in,
# their department and language, and the two switches of the home page.
BACKOFFICE_USER_COLUMNS = (
    "id",
    "email",
    "active",
    "fs_uniquifier",
    "name",
    "locale",
    "department_id",
    "away",
    "notice_digest",
)


def _with_roles(stmt, *role_columns):
    roles = contains_eager(User.roles)
    if role_columns:
        roles = roles.load_only(*role_columns)
    return (
        stmt.outerjoin(roles_users, roles_users.c.user_id == User.id)
        .outerjoin(Role, Role.id == roles_users.c.role_id)
        .options(roles)
    )


@functools.cache
def _by_uniquifier(lean: bool):
    """The session user's statement, built once (lean: a back-office request's columns)."""
    stmt = select(User)
    if lean:
        stmt = stmt.options(load_only(*(getattr(User, c) for c in BACKOFFICE_USER_COLUMNS)))
        stmt = _with_roles(stmt, Role.id, Role.name, Role.permissions)
    else:
        stmt = _with_roles(stmt)
    # The setup's token rides along: a filing's calendars and routing rules then come from
    # this process's copies without a statement to check them (domain/setup_cache.py).
    stmt = stmt.add_columns(setup_cache.token_column())
    return stmt.where(User.fs_uniquifier == bindparam("uniquifier"))


user_datastore = CareboxUserDatastore(db, User, Role)


class CareboxRegisterForm(RegisterFormV2):
    """Registration: name and phone besides email/password; consent is opt-in.

    Only these fields are read: a posted `roles` or `department` is ignored.
    """

    Meta = TranslatedMeta

    # NUL, control and bidi-override characters never reach a name (backoffice/cleaning.py).
    name = StringField(
        _l("Full name"), filters=[one_line], validators=[DataRequired(), Length(max=120)]
    )
    phone = StringField(
        _l("Phone"),
        filters=[one_line],
        validators=[
            Optional(),
            Length(max=32),
            Regexp(r"^\+?[0-9 ()-]{6,32}$", message=_l("Enter a valid phone number.")),
        ],
    )
    marketing_consent = BooleanField(
        _l("Send me news about new and improved products"), default=False
    )


def _give_customer_role(sender, user, **extra):
    user_datastore.add_role_to_user(user, perm.CUSTOMER)


def _existing_address(sender, user, existing_email=False, form_data=None, **extra):
    if existing_email:
        from .channels.outbox_mail import commit_with_the_response

        accounts.registration_for_existing_address(user, form_data or {})
        commit_with_the_response()  # Flask-Security commits nothing on this path


def _mail_language() -> dict:
    """Flask-Security's emails (templates/security/email/) share carebox's email layout."""
    locale = get_locale()
    return {"lang": locale.language if locale else "id"}


def _end_sessions(sender, user, **extra):
    """Logout ends the session for good (issue 9 item 5): sessions are signed
    cookies, so a copy taken before logout would stay valid; the session names the user by
    `fs_uniquifier`, and a new one makes every earlier cookie (and remember-me token) of
    this user name nobody. The price: logging out on one device logs out the others."""
    if user is None or not getattr(user, "id", None):
        return
    user_datastore.set_uniquifier(user)
    db.session.commit()


def _reset_claims(sender, user, **extra):
    contacts.claimed_by_reset(user)  # the reset link proved the address, as a claim does


def init_app(app: Flask) -> None:
    from .channels.outbox_mail import OutboxMailUtil
    from .password_hashing import OneHashAtATime, return_large_blocks
    from .passwords import CareboxPasswordUtil

    # Security's mail_util_cls is a constructor argument only (init_app ignores it),
    # and the unbound `security` object is built in extensions.py before any app.
    security._mail_util_cls = OutboxMailUtil
    security._password_util_cls = CareboxPasswordUtil  # the policy (backoffice/passwords.py)
    security.init_app(app, user_datastore, register_form=CareboxRegisterForm)
    _protect_signed_in_sessions_only(app.login_manager)
    return_large_blocks()
    security.pwd_context = OneHashAtATime(
        security.pwd_context, app.config["CAREBOX_PASSWORD_HASHES_AT_ONCE"]
    )
    if not getattr(security, "_carebox_mail_context", False):  # once per process (trap 9)
        security.mail_context_processor(_mail_language)
        security._carebox_mail_context = True
    user_registered.connect(_give_customer_role, app)
    user_not_registered.connect(_existing_address, app)
    password_reset.connect(_reset_claims, app)
    user_logged_out.connect(_end_sessions, app)
    user_confirmed.connect(_welcome, app)
    _rate_limit_auth(app)


def _protect_signed_in_sessions_only(login_manager) -> None:
    """Flask-Login's session protection ("basic") marks a session that does not carry
    this browser's and address's identifier (`_id`) as not fresh, `_fresh = False`: meant
    for a signed-in session used from elsewhere. An anonymous visitor's session (the CSRF
    token of the page frame's forms) carries no identifier either, so their second page
    wrote `_fresh` into it and sent the session cookie again. A session without a user
    names nobody to protect (flask-login issue #569); signed-in ones are checked as before."""
    check = login_manager._session_protection_failed

    def _session_protection_failed() -> bool:
        return "_user_id" in session and check()

    login_manager._session_protection_failed = _session_protection_failed


def _welcome(sender, user, **extra) -> None:
    """Registering ends when the address is confirmed: the new customer's first page
    greets them by name and says where to start."""
    if perm.has(user, perm.PORTAL):
        flash(
            _(
                "Welcome to carebox, %(name)s! Send a parcel, follow your orders, or ask us "
                "anything under My tickets.",
                name=user.display_name,
            ),
            "success",
        )


AUTH_ENDPOINTS = ("security.login", "security.forgot_password", "security.register")
# Every other page that checks a password (or a reset token standing for one).
PASSWORD_CHECKS = ("security.change_password", "security.verify", "security.reset_password")


def _account_key() -> str | None:
    """Who a password check is about, whatever address it comes from: the signed-in
    account, the email a login names, or the reset token (one account's)."""
    if request.endpoint == "security.reset_password":
        token = (request.view_args or {}).get("token") or ""
        return "reset:" + hashlib.sha256(token.encode()).hexdigest()[:32]
    if current_user.is_authenticated:
        email = current_user.email or ""
    elif request.endpoint == "security.login":
        email = request.form.get("email") or ""
    else:
        return None
    email = email.strip().lower()[:254]
    return f"email:{hashlib.sha256(email.encode()).hexdigest()[:32]}" if email else None


def _rate_limit_auth(app: Flask) -> None:
    """Throttle password guessing and mail-bombing on Flask-Security's own endpoints:
    per address (RATELIMIT_LOGIN) on each, and per account (RATELIMIT_PASSWORD_ACCOUNT)
    on every password check (login, change, /verify, reset with a token), so guessing
    one account from many addresses is throttled too.

    A `before_request` check rather than a decorator: the limiter object is shared
    by every app built in one process (tests build several), and decorated limits
    are registered on it globally, while this reads each app's own setting.
    Counters live in RATELIMIT_STORAGE_URI.
    """

    @app.before_request
    def _throttle_auth():
        if request.method != "POST" or request.endpoint not in AUTH_ENDPOINTS + PASSWORD_CHECKS:
            return
        with limiter.limit(app.config["RATELIMIT_LOGIN"], scope=request.endpoint):
            pass
        account = _account_key()
        if account and request.endpoint != "security.forgot_password":
            # Shared: one count per account across the endpoints (not one per endpoint).
            with limiter.shared_limit(
                app.config["RATELIMIT_PASSWORD_ACCOUNT"],
                scope="password-checks",
                key_func=lambda: account,
            ):
                pass


def ensure_roles() -> dict[str, Role]:
    """Create or update the four roles with their permission bundles (idempotent)."""
    roles = {}
    for name, permissions in perm.ROLE_PERMISSIONS.items():
        role = user_datastore.find_or_create_role(
            name, description=perm.ROLE_DESCRIPTIONS[name], permissions=list(permissions)
        )
        if sorted(role.permissions or []) != sorted(permissions):
            role.permissions = list(permissions)
        roles[name] = role
    db.session.flush()
    return roles

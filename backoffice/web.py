"""Request-wide behaviour: security headers, error pages, the language switch."""

from __future__ import annotations

import secrets
import time
import unicodedata
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    g,
    redirect,
    render_template,
    request,
)
from flask_babel import gettext as _
from flask_babel import refresh
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from werkzeug.exceptions import BadRequest, HTTPException, SecurityError

from .extensions import csrf, db, limiter
from .i18n import LANG_COOKIE, current_locale, supported

bp = Blueprint("web", __name__)


def csp_nonce() -> str:
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(16)
    return g.csp_nonce


def safe_next(target: str | None, fallback: str = "/") -> str:
    """Only same-site relative paths: an open redirect is a phishing tool.

    Browsers drop tabs and newlines from a URL (`/\t/evil.example` is `//evil.example`,
    another host) and read `\\` as `/`; so any control or whitespace character, a
    backslash, or anything that parses with a scheme or a host means `fallback`.
    """
    if not target or not target.startswith("/") or target.startswith("//"):
        return fallback
    if "\\" in target or any(ch.isspace() or unicodedata.category(ch)[0] == "C" for ch in target):
        return fallback
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return fallback
    return target


@bp.route("/lang/<code>", methods=["POST"])
def set_language(code: str):
    """Switch language (remembered in a cookie and, when signed in, on the account)."""
    csrf.protect()  # WTF_CSRF_CHECK_DEFAULT is off, so each plain view checks its own
    target = safe_next(request.form.get("next") or _referrer_path())
    if code not in supported():
        return redirect(target)
    if current_user.is_authenticated:
        current_user.locale = code
        db.session.commit()
    resp = redirect(target)
    resp.set_cookie(
        LANG_COOKIE,
        code,
        max_age=60 * 60 * 24 * 365,
        samesite="Lax",
        secure=current_app.config["SESSION_COOKIE_SECURE"],
        httponly=True,
    )
    return resp


@bp.route("/favicon.ico")
def favicon():
    """The site's icon where every browser looks for it (the back office's pages and a
    PDF or image opened on its own name no icon, and the browser asks here)."""
    return current_app.send_static_file("favicon.ico")


def _referrer_path() -> str | None:
    ref = request.referrer
    if not ref:
        return None
    host = request.host_url.rstrip("/")
    return ref[len(host) :] if ref.startswith(host) else None


def _has_control(value: str) -> bool:
    return any(unicodedata.category(ch) == "Cc" for ch in value)


def _refuse_malformed_input():
    """400 for what no browser sends, before any view (or Flask-WTF) reads the body.

    - a multipart part without a `name` (werkzeug files it under the key None, and
      Flask-WTF's CSRF check then calls `None.endswith`: a 500 before login,
      docs/architecture.md §13 trap 18);
    - a `next` carrying control characters (CR/LF, NUL, tab) for Flask-Security's pages
      (login, logout, register, reset…): Flask-Security "repairs" such a value into
      another path (`/\r\nSet-Cookie: x` becomes `/Set-Cookie%3A%20x`) rather than
      dropping it; no page of ours makes such a link, so it is refused outright. carebox's
      own views read `next` through `safe_next`, which falls back to a safe page.
    """
    if request.mimetype == "multipart/form-data" and (
        None in request.form or None in request.files
    ):
        raise BadRequest("multipart part without a name")
    if request.blueprint != "security":
        return
    nexts = request.args.getlist("next")
    if request.mimetype in ("multipart/form-data", "application/x-www-form-urlencoded"):
        nexts += request.form.getlist("next")
    if any(_has_control(value) for value in nexts):
        raise BadRequest("control characters in next")


def _security_headers(resp):
    nonce = g.get("csp_nonce") or csp_nonce()
    resp.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; "
        f"script-src 'self' 'nonce-{nonce}'; "
        # Flask-Admin's widgets set style attributes; styles cannot run code.
        "style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; "
        "frame-ancestors 'none'; base-uri 'self'; form-action 'self'; object-src 'none'",
    )
    resp.headers.setdefault("X-Content-Type-Options", "nosniff")
    resp.headers.setdefault("X-Frame-Options", "DENY")
    resp.headers.setdefault("Referrer-Policy", "same-origin")
    resp.headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
    if request.is_secure:
        resp.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    return resp


def _wants_json() -> bool:
    if request.path.startswith("/api/"):  # the JSON API answers JSON, errors and 503 too
        return True
    accept = request.accept_mimetypes
    return accept["application/json"] > accept["text/html"]


def _error_page(code: int, title: str, message: str):
    if _wants_json():
        return {"error": title, "message": message}, code
    return render_template("error.html", code=code, title=title, message=message), code


def _handle_http(exc: HTTPException):
    if isinstance(exc, SecurityError):
        current_app.logger.warning(
            "refused a request for Host %r: not one of TRUSTED_HOSTS (CAREBOX_BASE_URL's "
            "host, then CAREBOX_TRUSTED_HOSTS)",
            request.environ.get("HTTP_HOST"),
        )
    titles = {
        400: _("Bad request"),
        403: _("Access denied"),
        404: _("Not found"),
        405: _("Method not allowed"),
        413: _("File too large"),
        429: _("Too many requests"),
    }
    messages = {
        403: _("You do not have permission to open this page."),
        404: _("The page you asked for does not exist or is not yours."),
        413: _("The upload is larger than allowed (at most 5 MB)."),
        429: _("You are doing that too often. Please wait a moment and try again."),
    }
    title = titles.get(exc.code, exc.name)
    page = _error_page(exc.code or 500, title, messages.get(exc.code, title))
    if exc.code == 429:
        return (*page, {"Retry-After": retry_after_limit()})
    return page


def retry_after_limit() -> str:
    """A 429's Retry-After: the seconds until the limit this request broke lets it
    through again (Flask-Limiter's current limit is the one breached), or that limit's
    whole window when its storage cannot say. Ours, not Flask-Limiter's header
    injection, which reads the counter back on every limited answer (RATELIMIT_HEADERS_
    ENABLED, config.py)."""
    current = limiter.current_limit
    if current is None:
        return str(RETRY_AFTER_SECONDS)
    try:
        return str(max(1, int(current.reset_at - time.time())))
    except Exception:  # noqa: BLE001 (storage unreachable: the window is an upper bound)
        return str(current.limit.get_expiry())


def _handle_csrf(exc: CSRFError):
    return _error_page(
        400,
        _("Form expired"),
        _("The form expired or was sent from elsewhere. Go back, reload the page and try again."),
    )


def _handle_unexpected(exc: Exception):
    try:
        db.session.rollback()
    except Exception:  # noqa: BLE001 (the page must still be shown)
        current_app.logger.warning("rollback failed after an error", exc_info=True)
    current_app.logger.exception("Unhandled error on %s %s", request.method, request.path)
    # No promise that nothing changed: the error may come after a commit (issue 9 item 12).
    return _error_page(
        500,
        _("Something went wrong"),
        _(
            "We could not finish your request. Part of it may have been saved: check "
            "the page before you send it again."
        ),
    )


RETRY_AFTER_SECONDS = 30


def database_unreachable(exc: BaseException) -> bool:
    """Whether `exc` means the database cannot be reached (down, restarting, overloaded),
    as opposed to a fault of the statement."""
    if not isinstance(exc, DBAPIError):
        return False
    return exc.connection_invalidated or isinstance(exc, OperationalError | InterfaceError)


def _handle_database_error(exc: DBAPIError):
    """503 with Retry-After while the database cannot be reached, on a page that needs no
    database (docs/architecture.md §13, trap 17).

    The visitor counts as anonymous for the rest of the request, so neither the language
    (the account's, else the cookie's or the browser's) nor the page's header loads the
    user; nothing is promised about what was saved. The app recovers by itself: the pool
    pings a connection that sat idle, and a disconnect discards the pool
    (backoffice/connections.py), so new connections are made once the database is back.
    """
    if not database_unreachable(exc):
        if current_app.testing:
            raise exc
        return _handle_unexpected(exc)
    try:
        db.session.rollback()
    except Exception:  # noqa: BLE001 (the connection is gone; the page must still be shown)
        current_app.logger.debug("rollback failed while the database is down", exc_info=True)
    current_app.logger.error(
        "database unreachable on %s %s: %s", request.method, request.path, exc.orig
    )
    g._login_user = current_app.login_manager.anonymous_user()
    refresh()  # the locale is chosen again, without the account
    body, code = _error_page(
        503,
        _("Briefly unavailable"),
        _(
            "carebox cannot reach its database just now. Please try again in a minute; "
            "if you had sent a form, check afterwards whether it went through."
        ),
    )
    resp = current_app.make_response((body, code))
    resp.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    resp.headers["Cache-Control"] = "no-store"
    return resp


def _refuse_oversized():
    """413 before anything reads the body: Flask-Security's request loader reads a JSON
    body to look for a token (and the error page asks for the user), so an oversized
    JSON POST would raise RequestEntityTooLarge again inside the error handler: a 500."""
    limit = current_app.config.get("MAX_CONTENT_LENGTH")
    if limit and (request.content_length or 0) > limit:
        g._login_user = current_app.login_manager.anonymous_user()
        abort(413)


def init_app(app: Flask) -> None:
    from .views.urls import static_url_for

    app.register_blueprint(bp)
    # First of all before-request functions (Flask-Principal's loads the user).
    app.before_request_funcs.setdefault(None, []).insert(0, _refuse_oversized)
    app.before_request(_refuse_malformed_input)
    app.after_request(_security_headers)
    app.register_error_handler(CSRFError, _handle_csrf)
    app.register_error_handler(HTTPException, _handle_http)
    app.register_error_handler(DBAPIError, _handle_database_error)
    if not app.testing:
        app.register_error_handler(Exception, _handle_unexpected)

    @app.context_processor
    def _globals():
        loc = current_locale()
        return {
            "csp_nonce": csp_nonce,
            "current_lang": loc.language if loc else "id",
            "languages": supported(),
            "lang_url": lambda code: static_url_for("web.set_language", code=code),
        }

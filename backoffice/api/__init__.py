"""The token-authenticated JSON API under `/api/v1` (docs/api.md).

What every request of it gets, before any view:
- **Bearer tokens only.** The session cookie is neither read nor written: the request
  opens a null session, and the user is anonymous before Flask-Security's loaders run,
  so a signed-in browser cannot call the API, and no answer sets a cookie. Hence no
  CSRF token either: without a session there is nothing to forge (the blueprint is
  exempt from CSRFProtect).
- **JSON answers**, errors included (`{"error", "message"}`, web.py's error pages
  answer JSON under /api/), and a 503 with Retry-After when the database is down.
- **A body limit** (MAX_BODY_BYTES) checked before anything reads the body.
"""

from __future__ import annotations

from flask import Blueprint, Flask, current_app, g, request
from flask.sessions import SecureCookieSessionInterface
from werkzeug.exceptions import RequestEntityTooLarge

from .openapi import MAX_BODY_BYTES

PREFIX = "/api/"
bp = Blueprint("api", __name__, url_prefix="/api/v1")


def is_api_request() -> bool:
    """Whether the current request is one of the API's (by its path)."""
    return request.path.startswith(PREFIX)


class _NoSessionForTheApi(SecureCookieSessionInterface):
    """Flask's cookie sessions, except that API requests get a null session: nothing of a
    browser's session authenticates them, and their answers set no cookie."""

    _serializer: tuple = ((), None)  # (the keys, Flask's serializer of them)

    def open_session(self, app, request):
        if request.path.startswith(PREFIX):
            return self.make_null_session(app)
        return super().open_session(app, request)

    def get_signing_serializer(self, app):
        """Flask's serializer of the session cookie, made once per set of keys instead of
        on every request that reads or writes the cookie (it holds nothing else)."""
        keys = (*(app.config["SECRET_KEY_FALLBACKS"] or ()), app.secret_key)
        if self._serializer[0] != keys:
            self._serializer = (keys, super().get_signing_serializer(app))
        return self._serializer[1]


def _before_api_request():
    if not request.path.startswith(PREFIX):
        return
    # Anonymous before Flask-Principal's and Flask-Security's loaders run (they would
    # read a token from the JSON body, or the user from the session).
    g._login_user = current_app.login_manager.anonymous_user()
    request.max_content_length = MAX_BODY_BYTES
    if (request.content_length or 0) > MAX_BODY_BYTES:
        raise RequestEntityTooLarge()


def init_app(app: Flask) -> None:
    from ..extensions import csrf
    from . import tracking  # noqa: F401 (registers the routes)

    app.session_interface = _NoSessionForTheApi()
    app.before_request_funcs.setdefault(None, []).insert(0, _before_api_request)
    csrf.exempt(bp)
    app.register_blueprint(bp)

"""Language choice: the user's saved language, the `lang` cookie, the browser, then `id`."""

from __future__ import annotations

from flask import current_app, has_request_context, request
from flask_login import current_user

LANG_COOKIE = "lang"


def supported() -> tuple[str, ...]:
    return tuple(current_app.config["LANGUAGES"])


def select_locale() -> str:
    langs = supported()
    if has_request_context():
        if current_user.is_authenticated and current_user.locale in langs:
            return current_user.locale
        cookie = request.cookies.get(LANG_COOKIE)
        if cookie in langs:
            return cookie
        best = request.accept_languages.best_match(langs)
        if best:
            return best
    return current_app.config["BABEL_DEFAULT_LOCALE"]

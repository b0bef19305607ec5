"""Language choice (the user's saved language, the `lang` cookie, the browser, then
`id`) and the catalogue WTForms' own messages come from.

Every app form derives from `TranslatedForm` (or mixes `TranslatedMeta` into its
Meta): Flask-WTF and Flask-Admin would otherwise look for a `wtforms` catalogue
only in WTForms' package, which has no Indonesian.
"""

from __future__ import annotations

from flask import current_app, has_request_context, request
from flask_babel import Domain, get_babel
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms.i18n import messages_path

LANG_COOKIE = "lang"


def supported() -> tuple[str, ...]:
    return tuple(current_app.config["LANGUAGES"])


def select_locale() -> str:
    if has_request_context() and current_user.is_authenticated:
        return choose_locale(current_user.locale)
    return choose_locale(None)


def choose_locale(account_locale: str | None) -> str:
    """The request's language given the signed-in account's (None: signed out)."""
    langs = supported()
    if account_locale in langs:
        return account_locale
    if has_request_context():
        cookie = request.cookies.get(LANG_COOKIE)
        if cookie in langs:
            return cookie
        best = request.accept_languages.best_match(langs)
        if best:
            return best
    return current_app.config["BABEL_DEFAULT_LOCALE"]


class _WTFormsDomain(Domain):
    """The `wtforms` catalogues: WTForms' own, with ours merged over them.

    WTForms ships no Indonesian; backoffice/translations/id/LC_MESSAGES/wtforms.po
    supplies it. Flask-Babel merges the directories in order, the later winning.
    """

    def __init__(self):
        super().__init__(domain="wtforms")

    @property
    def translation_directories(self):
        return [messages_path(), *get_babel().translation_directories]


WTFORMS_DOMAIN = _WTFormsDomain()


class WTFormsTranslations:
    """What a form's `Meta.get_translations` hands WTForms: the current locale's words."""

    def gettext(self, string):
        return WTFORMS_DOMAIN.get_translations().ugettext(string)

    def ngettext(self, singular, plural, n):
        return WTFORMS_DOMAIN.get_translations().ungettext(singular, plural, n)


wtforms_translations = WTFormsTranslations()


class TranslatedMeta:
    """A form `Meta` mixin: WTForms' built-in messages ("This field is required.")
    in the request's language, from our catalogue rather than WTForms' package."""

    def get_translations(self, form):
        return wtforms_translations


class TranslatedForm(FlaskForm):
    """Flask-WTF's form (CSRF included) speaking the request's language."""

    Meta = TranslatedMeta

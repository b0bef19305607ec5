"""Language choice (the user's saved language, the `lang` cookie, the browser, then
`id`) and the catalogue WTForms' own messages come from.

Every app form derives from `TranslatedForm` (or mixes `TranslatedMeta` into its
Meta): Flask-WTF and Flask-Admin would otherwise look for a `wtforms` catalogue
only in WTForms' package, which has no Indonesian.
"""

from __future__ import annotations

from flask import current_app, g, has_request_context, request
from flask_babel import Domain, get_babel, get_locale, get_timezone, get_translations
from flask_login import current_user
from flask_wtf import FlaskForm
from jinja2 import pass_eval_context
from markupsafe import Markup
from wtforms.i18n import messages_path

LANG_COOKIE = "lang"
# Jinja's `_()` texts: {(locale identifier, string): text} (template_gettext). Keyed by
# the identifier: a dict lookup by babel's Locale runs its Python __eq__ and __hash__.
_TEMPLATE_TEXTS: dict[tuple, str] = {}
TEMPLATE_TEXTS_MAX = 20_000  # templates hold a few thousand strings; a bound all the same


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


def current_locale():
    """`flask_babel.get_locale()` in four Python calls instead of ~20: the locale flask_babel
    settled on for this context (it keeps it in `g._flask_babel.babel_locale` once asked,
    and `force_locale` sets it there), else its own answer. For the per-text lookups
    (labels, template texts) that ask it a hundred times a page."""
    try:
        locale = g._get_current_object()._flask_babel.babel_locale
    except (AttributeError, RuntimeError):  # not asked yet here, or no app context
        return get_locale()
    return locale if locale is not None else get_locale()


def current_timezone():
    """`flask_babel.get_timezone()` the same way (`g._flask_babel.babel_tzinfo`): the
    back office prints a time per message and event in the company's zone."""
    try:
        zone = g._get_current_object()._flask_babel.babel_tzinfo
    except (AttributeError, RuntimeError):
        return get_timezone()
    return zone if zone is not None else get_timezone()


def template_gettext(string: str) -> str:
    """Jinja's `_()`: what flask_babel installs (`get_translations().ugettext`, the default
    catalogue in the request's language), remembered per language and string. The
    catalogues do not change while the process runs, and one lookup through
    flask_babel's context, domain and locale costs ~45 Python calls: the desk asks ~70,
    every back-office page some dozens."""
    locale = current_locale()
    if locale is None:  # outside any app context: no catalogue, as flask_babel answers
        return get_translations().ugettext(string)
    return _remembered((str(locale), string), lambda: get_translations().ugettext(string))


def _remembered(key: tuple, look_up) -> str:
    text = _TEMPLATE_TEXTS.get(key)
    if text is None:
        if len(_TEMPLATE_TEXTS) >= TEMPLATE_TEXTS_MAX:
            _TEMPLATE_TEXTS.clear()
        text = _TEMPLATE_TEXTS[key] = look_up()
    return text


def template_ngettext(singular: str, plural: str, num: int) -> str:
    """Jinja's `ngettext()` catalogue lookup, remembered per language, strings and number
    as `template_gettext` (the lists' page sizes ask four times a page)."""
    locale = current_locale()
    if locale is None:
        return get_translations().ungettext(singular, plural, num)
    key = (str(locale), singular, plural, num)
    return _remembered(key, lambda: get_translations().ungettext(singular, plural, num))


def admin_gettext(translations_path: str | None, string: str, **variables) -> str:
    """Flask-Admin's `_gettext` of its templates (its `admin` catalogue, in the admin's
    translations folder, then its own): what `flask_admin.babel.gettext` answers,
    remembered per folder, language and string. A back-office page asks a dozen times,
    ~45 Python calls each through flask_babel's domain."""
    from flask_admin.babel import domain

    locale = current_locale()
    if locale is None:
        return domain.gettext(string, **variables)
    key = ("admin", translations_path, str(locale), string)
    text = _remembered(key, lambda: domain.get_translations().ugettext(string))
    return text % variables if variables else text


@pass_eval_context
def _jinja_ngettext(eval_ctx, singular: str, plural: str, num: int, **variables) -> str:
    """The templates' `ngettext()`: jinja2.ext's newstyle ngettext (`num` among the
    variables, Markup under autoescape, always %-formatted) over `template_ngettext`."""
    variables.setdefault("num", num)
    rv = template_ngettext(singular, plural, num)
    if eval_ctx.autoescape:
        rv = Markup(rv)  # noqa: S704 (the catalogue's text, as Jinja marks it)
    return rv % variables


@pass_eval_context
def _jinja_gettext(eval_ctx, string: str, **variables) -> str:
    """The templates' `_()` and `gettext()`: what jinja2.ext's newstyle gettext returns
    (the text, Markup under autoescape, always %-formatted with its variables) over
    `template_gettext`. Jinja's own takes the whole context, so each `_()` inside a loop
    or a `set` block first copied the context (~30 Python calls, on every event and
    message of the desk)."""
    rv = template_gettext(string)
    if eval_ctx.autoescape:
        rv = Markup(rv)  # noqa: S704 (the catalogue's text, as Jinja marks it)
    return rv % variables


def init_app(app) -> None:
    """After flask_babel's `init_app`: the templates' gettext and ngettext are
    `_jinja_gettext` and `_jinja_ngettext`; the other two are flask_babel's own, installed
    again beside them (Jinja installs the four together)."""
    env = app.jinja_env
    env.install_gettext_callables(
        gettext=template_gettext,
        ngettext=lambda s, p, n: get_translations().ungettext(s, p, n),
        newstyle=True,
        pgettext=lambda c, s: get_translations().upgettext(c, s),
        npgettext=lambda c, s, p, n: get_translations().unpgettext(c, s, p, n),
    )
    env.globals["gettext"] = env.globals["_"] = _jinja_gettext
    env.globals["ngettext"] = _jinja_ngettext

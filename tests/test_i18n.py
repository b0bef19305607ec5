"""Languages: complete catalogues, Indonesian by default, English on request, and
the words of Flask-Admin, Flask-Security and WTForms in Indonesian too."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from flask_babel import force_locale
from markupsafe import escape
from werkzeug.datastructures import MultiDict
from wtforms import StringField
from wtforms.validators import DataRequired

from backoffice.domain import permissions as perm
from backoffice.models import TicketStatus
from backoffice.views.fields import AdminForm
from public_portal.forms import RateForm

from .portal_support import field_error, text

TRANSLATIONS = Path(__file__).resolve().parent.parent / "backoffice" / "translations"
CATALOGUES = {
    ("id", "messages"): 1,
    ("en", "messages"): 2,
    ("id", "admin"): 1,
    ("id", "flask_security"): 1,
    ("id", "wtforms"): 1,
}
PLACEHOLDER = re.compile(r"%\(\w+\)[sdif]|%[sdif]|\{\w*\}")
# The requirements paper's names of the four staff lists and statuses, spelled one way
# wherever they appear (menu, titles, status labels): issue 9 item 20.
PAPER_STATUSES = (
    "Progress Ticket",
    "Ticket dalam penanganan team",
    "Tanggapan Ticket",
    "Ticket Finish",
)
PAPER_LISTS = PAPER_STATUSES
EN = {"Accept-Language": "en"}


def _catalogue(lang: str, domain: str):
    with open(TRANSLATIONS / lang / "LC_MESSAGES" / f"{domain}.po", "rb") as f:
        return read_po(f)


def _strings(value) -> tuple:
    return value if isinstance(value, tuple) else (value,)


@pytest.mark.parametrize(("lang", "domain"), sorted(CATALOGUES))
def test_catalogue_is_complete(lang, domain):
    cat = _catalogue(lang, domain)
    assert cat.num_plurals == CATALOGUES[lang, domain]
    assert not cat.fuzzy
    messages = [m for m in cat if m.id]
    assert messages
    for m in messages:
        ids, strings = _strings(m.id), _strings(m.string)
        assert not m.fuzzy, m.id
        assert len(strings) == (cat.num_plurals if m.pluralizable else 1), m.id
        assert all(strings), f"untranslated: {m.id!r}"
        wanted = sorted(PLACEHOLDER.findall(ids[-1]))
        for s in strings:
            assert sorted(PLACEHOLDER.findall(s)) == wanted, (m.id, s)


def test_catalogues_hold_every_extracted_string():
    template = TRANSLATIONS / "messages.pot"
    with open(template, "rb") as f:
        extracted = {m.id for m in read_po(f) if m.id}
    for lang in ("id", "en"):
        have = {m.id for m in _catalogue(lang, "messages") if m.id}
        assert extracted <= have, sorted(map(str, extracted - have))


def test_english_catalogue_is_the_source_text():
    for m in _catalogue("en", "messages"):
        if m.id:
            assert _strings(m.string) == _strings(m.id)


def test_status_labels_are_the_papers_words(app):
    with app.test_request_context(), force_locale("id"):
        assert tuple(s.label for s in TicketStatus) == PAPER_STATUSES
    with app.test_request_context(), force_locale("en"):
        assert TicketStatus.TEAM.label == "Ticket in team handling"


def test_labels_are_kept_per_enum_and_language(app):
    """LabelledEnum.label keeps each text per language: two enums' members with one value
    (a StrEnum's member equals its value) keep their own labels, each language its own."""
    from backoffice.models import TrackingEventKind, WhatsAppTemplateUse

    event, use = TrackingEventKind.OUT_FOR_DELIVERY, WhatsAppTemplateUse.OUT_FOR_DELIVERY
    assert event == use  # the same value...
    for _ in range(2):  # ... and, read again, still each its own label
        with app.test_request_context(), force_locale("en"):
            assert event.label == "Out for delivery" and use.label != event.label
            english = use.label
        with app.test_request_context(), force_locale("id"):
            assert event.label != "Out for delivery" and use.label not in (english, event.label)


def test_portal_pages_are_indonesian_by_default_and_english_on_request(client, db):
    pages = {
        "/": ("Ada yang bisa kami bantu hari ini?", "How can we help you today?"),
        "/faq": ("Bantuan & FAQ", "Help & FAQ"),
        "/login": ("Lupa kata sandi?", "Forgot your password?"),
    }
    for url, (indonesian, english) in pages.items():
        page = text(client.get(url))
        assert '<html lang="id"' in page and indonesian in page and english not in page, url
        page = text(client.get(url, headers=EN))
        assert '<html lang="en"' in page and english in page and indonesian not in page, url
    client.set_cookie("lang", "en")
    page = text(client.get("/faq", headers={"Accept-Language": "id"}))  # the cookie wins
    assert "Help & FAQ" in page and "Masuk" not in page


def _list_menu(page: str) -> dict[str, str]:
    nav = page.split('id="admin-navbar-collapse"', 1)[1].split("</nav>", 1)[0]
    return dict(re.findall(r'href="/admin/tickets/(\w+)/">\s*([^<]+?)\s*</a>', nav))


def test_admin_list_in_indonesian_with_flask_admins_words(login_as, make, db):
    make.ticket("progress")
    db.session.commit()
    b, _ = login_as(perm.MASTER_ADMIN)  # a new account's language is Indonesian
    page = text(b.get("/admin/tickets/progress/"))
    assert page.lstrip().startswith('<!DOCTYPE html>\n<html lang="id">')
    lists = ("progress", "team", "responded", "finished")
    assert _list_menu(page) == dict(zip(lists, PAPER_LISTS, strict=True))
    assert "<title>Tiket - Progress Ticket - carebox</title>" in page
    for word in ("Daftar (1)", "Tambah Filter", "Cari", "Ekspor"):  # Flask-Admin's own words
        assert word in page, word
    for word in ("List (1)", "Add Filter", "Search"):
        assert word not in page, word


def test_admin_list_in_english_for_an_english_user(login_as, db):
    b, _ = login_as(perm.MASTER_ADMIN, locale="en")
    page = text(b.get("/admin/tickets/team/"))
    assert '<html lang="en">' in page and "<html>" not in page
    assert "<title>Tickets - Team - carebox</title>" in page
    assert _list_menu(page) == {
        "progress": "Progress",
        "team": "Team",
        "responded": "Responded",
        "finished": "Finished",
    }
    assert "Add Filter" in page and "Tambah Filter" not in page


def test_wtforms_messages_follow_the_language(app):
    class Form(AdminForm):
        name = StringField(validators=[DataRequired()])

    for lang, required, choice in (
        ("id", "Kolom ini wajib diisi.", "Pilihan tidak valid."),
        ("en", "This field is required.", "Not a valid choice."),
    ):
        with app.test_request_context(headers={"Accept-Language": lang}):
            form = Form(formdata=MultiDict({"name": ""}), meta={"csrf": False})
            assert not form.validate() and form.name.errors == [required]
            rate = RateForm(formdata=MultiDict({"rating": "9"}), meta={"csrf": False})
            assert not rate.validate() and rate.rating.errors == [choice]


def test_registration_shows_wtforms_messages_in_indonesian(browser, db):
    data = {"email": "sari@example.com", "name": "", "password": "rahasia-sekali-9"}
    resp = browser.post("/register", {**data, "password_confirm": data["password"]})
    assert field_error(resp, "name") == "Kolom ini wajib diisi."
    browser.client.set_cookie("lang", "en")
    resp = browser.post("/register", {**data, "password_confirm": data["password"]})
    assert field_error(resp, "name") == "This field is required."


def test_admin_form_shows_wtforms_messages_in_indonesian(login_as, db):
    b, _ = login_as(perm.MASTER_ADMIN)
    resp = b.post("/admin/staff/new/", {"email": "", "name": ""}, form_url="/admin/staff/new/")
    assert resp.status_code == 200
    assert "Kolom ini wajib diisi." in text(resp) and "This field is required." not in text(resp)


def test_flask_security_messages_in_indonesian(browser, make, db):
    user = make.user(email="rina@example.com")
    db.session.commit()
    data = {"email": user.email, "password": "salah-sekali"}
    resp = browser.post("/login", data)
    assert "Autentikasi gagal" in text(resp) and "Authentication failed" not in text(resp)
    resp = browser.post("/login", data, headers=EN, form_url="/login")
    assert "Authentication failed" in text(resp)


def _every_label():
    from backoffice.models import enums

    for cls in vars(enums).values():
        if isinstance(cls, type) and issubclass(cls, enums.LabelledEnum) and cls._member_map_:
            yield from cls


def test_remembered_texts_read_as_flask_babels(app):
    """Labels and the templates' `_()` are remembered per language (issue 16, the desk's
    rendering): each reads exactly what flask_babel gives, in each language, forced or
    chosen, and the cheap locale and zone reads are flask_babel's."""
    import flask_babel
    from flask import render_template_string

    from backoffice import i18n

    strings = ["Conversation", "Internal note", "Keyboard shortcuts", "Priority", "no such text"]
    with app.test_request_context("/admin/"):
        for lang in ("id", "en", "id"):  # back again: nothing sticks from the other one
            with flask_babel.force_locale(lang):
                assert i18n.current_locale() == flask_babel.get_locale()
                assert i18n.current_timezone() == flask_babel.get_timezone()
                for member in _every_label():  # its lazy string, read through flask_babel
                    assert member.label == str(type(member)._labels()[member])
                for s in strings:
                    want = flask_babel.gettext(s)
                    assert render_template_string("{{ _(s) }}", s=s) == str(escape(want))
                assert render_template_string("{{ _('Ticket %(number)s', number='<b>') }}") == str(
                    escape(flask_babel.gettext("Ticket %(number)s", number="<b>"))
                )
        flask_babel.refresh()
        assert i18n.current_locale() == flask_babel.get_locale()

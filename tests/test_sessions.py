"""Logout ends the session (issue 9 item 5): a copy of the session cookie taken before
logout no longer signs anybody in after it. An anonymous visitor's session is set once,
when a page's forms need it, and not sent again by later pages."""

from __future__ import annotations

import pytest

from backoffice.domain import permissions as perm
from backoffice.i18n import LANG_COOKIE

from .conftest import Browser


def _session_cookie(client) -> str:
    cookie = client.get_cookie("session")
    assert cookie is not None
    return cookie.value


def test_a_copied_session_cookie_stops_working_after_logout(app, login_as):
    b, _ = login_as(perm.CUSTOMER)
    assert b.get("/tickets").status_code == 200
    stolen = app.test_client()
    stolen.set_cookie("session", _session_cookie(b.client))
    assert stolen.get("/tickets").status_code == 200  # the copy works while signed in
    assert b.logout().status_code in (302, 303)
    assert b.get("/tickets").status_code == 302
    resp = stolen.get("/tickets")
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]


def test_a_staff_cookie_copied_before_logout_no_longer_opens_the_back_office(app, login_as):
    b, _ = login_as(perm.MASTER_ADMIN)
    stolen = app.test_client()
    stolen.set_cookie("session", _session_cookie(b.client))
    assert stolen.get("/admin/").status_code == 200
    b.logout()
    assert stolen.get("/admin/").status_code == 302


def test_signing_in_again_after_logout_works(app, login_as, db):
    b, user = login_as(perm.CUSTOMER)
    b.logout()
    again = Browser(app.test_client())
    again.login(user)
    assert again.get("/tickets").status_code == 200


def test_a_new_secret_key_takes_effect_at_once_and_a_fallback_keeps_old_cookies(
    app, login_as, monkeypatch
):
    """The cookie's serializer is made once per set of keys (api._NoSessionForTheApi),
    so rotating SECRET_KEY (with the old one in SECRET_KEY_FALLBACKS, or without) is
    obeyed by the next request, as Flask's own serializer per request was."""
    b, _ = login_as(perm.CUSTOMER)
    cookie = _session_cookie(b.client)

    def signed_in() -> bool:
        client = app.test_client()
        client.set_cookie("session", cookie)
        return client.get("/tickets").status_code == 200

    assert signed_in()
    old = app.secret_key
    monkeypatch.setattr(app, "secret_key", "a-rotated-key-" + "x" * 32)
    assert not signed_in()  # signed with the old key only
    monkeypatch.setitem(app.config, "SECRET_KEY_FALLBACKS", [old])
    assert signed_in()


ANONYMOUS_PAGES = ("/track", "/track?resi=CB123456785ID", "/faq", "/products", "/")


def _session_cookies(resp) -> list[str]:
    return [h for h in resp.headers.getlist("Set-Cookie") if h.startswith("session=")]


@pytest.mark.parametrize("lang", ["id", "en"])
@pytest.mark.parametrize("first", ANONYMOUS_PAGES)
def test_an_anonymous_visitors_later_pages_leave_the_session_cookie_alone(
    app, make, db, first, lang
):
    """The first page sets the session its forms need (the CSRF token of the language
    switch); the pages after it, the same one again included, do not send it again
    (Flask-Login's session protection wrote `_fresh` into it on the second page)."""
    parcel = f"/track/{make.order().resi}"
    db.session.commit()
    client = app.test_client()
    client.set_cookie(LANG_COOKIE, lang)
    resp = client.get(first)
    assert resp.status_code == 200
    assert len(_session_cookies(resp)) <= 1
    for path in (first, *ANONYMOUS_PAGES, parcel):
        again = client.get(path)
        assert again.status_code == 200 and f'<html lang="{lang}"' in again.get_data(as_text=True)
        assert _session_cookies(again) == [], path
    with client.session_transaction() as sess:
        assert "_fresh" not in sess and "_user_id" not in sess


def test_a_signed_in_session_from_another_browser_is_still_marked_not_fresh(app, login_as):
    """Session protection stays for sessions with a user: used from another browser (its
    identifier differs), Flask-Login marks it not fresh, once."""
    b, _ = login_as(perm.CUSTOMER)
    elsewhere = app.test_client()
    elsewhere.set_cookie("session", _session_cookie(b.client))
    headers = {"User-Agent": "another browser"}
    assert elsewhere.get("/tickets", headers=headers).status_code == 200
    with elsewhere.session_transaction() as sess:
        assert sess.get("_fresh") is False
    assert _session_cookies(elsewhere.get("/tickets", headers=headers)) == []

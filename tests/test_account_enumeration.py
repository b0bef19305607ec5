"""Login, reset and registration never tell whether an address has an account
(issue 9 item 2, docs/architecture.md §13, trap 15).

Each pair of requests below differs only in whether the address exists; the
answers must be the same: status, where they redirect, what they say. Registering
an existing address mails that address a notice instead of making an account.
"""

from __future__ import annotations

import re

from sqlalchemy import func, select

from backoffice.domain import permissions as perm
from backoffice.models import User

from .conftest import Browser
from .portal_support import text
from .security_support import BASE, links_in, mail_to, make_app

CSRF_VALUE = re.compile(
    r'(name="csrf_token"[^>]*value=")[^"]+|(value=")[^"]+("[^>]*name="csrf_token")'
)


def _page(resp) -> str:
    """A page as the visitor reads it, without its one-time CSRF tokens."""
    return CSRF_VALUE.sub(r"\1\2TOKEN\3", text(resp))


def _answer(resp, browser) -> tuple:
    """What a visitor learns from a POST: status, target, and the page shown after it."""
    location = resp.headers.get("Location")
    shown = _page(browser.get(location)) if location else _page(resp)
    return resp.status_code, location, shown


def _session(app, browser) -> dict:
    """The signed session cookie's content, minus the CSRF secret."""
    cookie = browser.client.get_cookie(app.config["SESSION_COOKIE_NAME"])
    if cookie is None:
        return {}
    data = app.session_interface.get_signing_serializer(app).loads(cookie.value)
    return {k: v for k, v in data.items() if k != "csrf_token"}


def test_login_says_the_same_for_an_unknown_address_and_a_wrong_password(app, make, db):
    make.user(perm.MASTER_ADMIN, email="boss@example.com")
    db.session.commit()
    answers = []
    for email in ("boss@example.com", "nobody@example.com"):
        b = Browser(app.test_client())
        resp = b.post("/login", {"email": email, "password": "wrong-password-1"})
        answers.append((resp.status_code, _page(resp).replace(email, "EMAIL")))
    assert answers[0] == answers[1]
    status, page = answers[0]
    assert status == 200
    assert "Invalid password" not in page and "does not exist" not in page


def test_reset_says_the_same_for_an_unknown_address_and_mails_only_the_real_one(app, make, db):
    make.user(perm.CUSTOMER, email="siti@example.com")
    db.session.commit()
    answers = []
    for email in ("siti@example.com", "nobody@example.com"):
        b = Browser(app.test_client())
        resp = b.post("/reset", {"email": email})
        status, location, shown = _answer(resp, b)
        answers.append((status, location, shown.replace(email, "EMAIL")))
    assert answers[0] == answers[1]
    assert len(mail_to(db, "siti@example.com")) == 1
    assert mail_to(db, "nobody@example.com") == []


NEW = {
    "name": "Budi Santoso",
    "password": "rahasia-sekali-9",
    "password_confirm": "rahasia-sekali-9",
}


def test_registering_an_existing_address_answers_exactly_like_a_new_one(database_url, db, make):
    app = make_app(database_url)
    owner = make.user(perm.CUSTOMER, email="owner@example.com", name="Asli", locale="en")
    db.session.commit()
    answers, sessions = [], []
    for email in ("owner@example.com", "fresh@example.com"):
        b = Browser(app.test_client())
        resp = b.post("/register", {**NEW, "email": email})
        status, location, shown = _answer(resp, b)
        answers.append((status, location, shown.replace(email, "EMAIL")))
        sessions.append(_session(app, b))
        assert b.get("/tickets").status_code == 302  # signed in by neither
    assert answers[0] == answers[1]
    assert answers[0][0] == 302
    assert sessions[0].keys() == sessions[1].keys()

    # Nothing changed for the owner; they get a notice, the new address a confirmation.
    db.session.commit()
    count = db.session.scalar(select(func.count()).where(User.email == "owner@example.com"))
    assert count == 1 and db.session.get(User, owner.id).name == "Asli"
    (notice,) = mail_to(db, "owner@example.com")
    assert "someone" in notice.body_text.lower() and "/reset" in notice.body_text
    assert all(link.startswith(BASE) for link in links_in(notice))
    assert "rahasia-sekali-9" not in notice.body_text + (notice.body_html or "")
    (welcome,) = mail_to(db, "fresh@example.com")
    confirm = [link for link in links_in(welcome) if "/confirm/" in link]
    assert confirm and confirm[0].startswith(f"{BASE}/confirm/")


def test_a_new_account_signs_in_once_its_address_is_confirmed(database_url, db):
    app = make_app(database_url)
    b = Browser(app.test_client())
    resp = b.post("/register", {**NEW, "email": "fresh@example.com"})
    assert resp.status_code == 302
    fresh = Browser(app.test_client())
    login = {"email": "fresh@example.com", "password": NEW["password"]}
    assert fresh.post("/login", login).status_code == 200  # not before confirming
    (welcome,) = mail_to(db, "fresh@example.com")
    link = next(link for link in links_in(welcome) if "/confirm/" in link)
    resp = b.get(link.removeprefix(BASE))
    assert resp.status_code == 302
    # The link confirms, and signs nobody in: a mail scanner may have opened it.
    assert b.get("/tickets").status_code == 302
    db.session.commit()
    user = db.session.scalar(select(User).where(User.email == "fresh@example.com"))
    assert user.confirmed_at is not None and [r.name for r in user.roles] == [perm.CUSTOMER]
    assert fresh.login(user, password=NEW["password"]).status_code == 302
    assert fresh.get("/tickets").status_code == 200


def test_a_bad_registration_still_says_what_is_wrong_for_an_existing_address(browser, make, db):
    """Only the 'already registered' error is hidden: a weak password is still explained."""
    make.user(perm.CUSTOMER, email="owner@example.com")
    db.session.commit()
    resp = browser.post(
        "/register", {**NEW, "email": "owner@example.com", "password_confirm": "different-9"}
    )
    assert resp.status_code == 200
    assert "already" not in text(resp).lower()
    assert mail_to(db, "owner@example.com") == []

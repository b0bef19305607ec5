"""Accounts: registration, the profile, changing and resetting the password (real SMTP)."""

from __future__ import annotations

import re
import socket
import threading
import time
from email import message_from_bytes, policy

import pytest
from aiosmtpd.controller import Controller
from flask_security import verify_password
from sqlalchemy import select

from backoffice import create_app
from backoffice.domain import permissions as perm
from backoffice.models import User

from .conftest import Browser
from .portal_support import field_error, text

NEW_USER = {
    "email": "budi@example.com",
    "name": "Budi Santoso",
    "phone": "+62 812 3456 7890",
    "password": "rahasia-sekali-9",
    "password_confirm": "rahasia-sekali-9",
}


def _user(db, email: str) -> User | None:
    db.session.commit()  # a fresh snapshot (MariaDB reads repeatably inside a transaction)
    return db.session.scalar(select(User).where(User.email == email))


def test_registration_gives_the_customer_role_only_whatever_is_posted(browser, db, make):
    page = browser.get("/register").get_data(as_text=True)
    consent = re.search(r'<input[^>]*name="marketing_consent"[^>]*>', page).group(0)
    assert "checked" not in consent  # opt-in: unticked by default
    resp = browser.post(
        "/register",
        {**NEW_USER, "roles": perm.MASTER_ADMIN, "department": "OPS", "department_id": "1"},
    )
    assert resp.status_code == 302, text(resp)[-2000:]
    user = _user(db, NEW_USER["email"])
    assert [r.name for r in user.roles] == [perm.CUSTOMER]
    assert user.department_id is None
    assert user.name == "Budi Santoso" and user.phone == "+62 812 3456 7890"
    assert user.marketing_consent is False and user.consent_changed_at is None
    assert user.locale == "id"
    _confirm(browser, db, NEW_USER["email"])
    browser.login(user, password=NEW_USER["password"])
    assert browser.get("/tickets").status_code == 200  # signed in, as a customer
    assert browser.get("/admin/").status_code == 403


def _confirm(browser, db, email: str) -> None:
    """Open the confirmation link of the welcome email, as the new customer does."""
    from backoffice.models import OutboxEmail

    db.session.commit()
    mails = [m for m in db.session.scalars(select(OutboxEmail)) if email in m.recipient]
    link = re.search(r"https?://[^/\s]+(/confirm/\S+)", mails[-1].body_text).group(1)
    assert browser.get(link).status_code == 302


def test_registration_in_english_with_consent(browser, db):
    browser.post("/lang/en", {"next": "/register"}, form_url="/")
    resp = browser.post("/register", {**NEW_USER, "marketing_consent": "y"})
    assert resp.status_code == 302
    user = _user(db, NEW_USER["email"])
    assert user.marketing_consent is True and user.consent_changed_at is not None
    assert user.locale == "en"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": ""}, "name"),
        ({"phone": "call me maybe"}, "phone"),
        ({"email": "not-an-email"}, "email"),
        ({"password_confirm": "something-else"}, "password_confirm"),
        ({"password": "short", "password_confirm": "short"}, "password"),
        ({"name": "x" * 121}, "name"),
    ],
)
def test_registration_errors_are_shown_next_to_the_field(browser, db, change, field):
    resp = browser.post("/register", {**NEW_USER, **change})
    assert resp.status_code == 200
    assert field_error(resp, field), text(resp)[-3000:]
    assert _user(db, NEW_USER["email"]) is None


def test_registration_without_csrf_creates_nothing(client, db):
    resp = client.post("/register", data=NEW_USER)
    assert resp.status_code in (200, 400)
    assert _user(db, NEW_USER["email"]) is None


def test_registering_an_existing_email_changes_nothing_and_tells_only_its_owner(browser, db, make):
    """The page answers as for a new address (tests/test_account_enumeration.py)."""
    owner = make.user(perm.CUSTOMER, email=NEW_USER["email"], name="Asli")
    db.session.commit()
    resp = browser.post("/register", NEW_USER)
    assert resp.status_code == 302 and not field_error(resp, "email")
    user = _user(db, NEW_USER["email"])
    assert user.id == owner.id and user.name == "Asli"
    assert verify_password("password", user.password)


def test_account_page_saves_profile_language_and_consent(login_as, db):
    b, user = login_as(perm.CUSTOMER, phone="0812000000")
    page = b.get("/account").get_data(as_text=True)
    assert user.email in page and 'href="/account/password"' in page
    resp = b.post(
        "/account",
        {
            "name": "Siti Aminah",
            "phone": "+62 811 222 333",
            "locale": "en",
            "marketing_consent": "y",
        },
    )
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/account")
    assert "lang=en" in resp.headers.get("Set-Cookie", "")
    user = _user(db, user.email)
    assert (user.name, user.phone, user.locale) == ("Siti Aminah", "+62 811 222 333", "en")
    assert user.marketing_consent and user.consent_changed_at is not None
    page = text(b.get("/account"))
    assert '<html lang="en"' in page and "Your profile was saved." in page
    # Withdrawing consent records when.
    first = user.consent_changed_at
    b.post("/account", {"name": "Siti Aminah", "phone": "", "locale": "id"})
    user = _user(db, user.email)
    assert not user.marketing_consent and user.phone is None and user.consent_changed_at >= first


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "\x00\x01"}, "name"),
        ({"phone": "<script>"}, "phone"),
        ({"locale": "fr"}, "locale"),
        ({"name": "n" * 500}, "name"),
    ],
)
def test_account_errors_change_nothing(login_as, db, change, field):
    b, user = login_as(perm.CUSTOMER, name="Asli")
    resp = b.post("/account", {"name": "Baru", "phone": "", "locale": "id", **change})
    assert resp.status_code == 400 and field_error(resp, field)
    assert "&lt;script&gt;" in resp.get_data(as_text=True) or change.get("phone") != "<script>"
    assert _user(db, user.email).name == "Asli"


def test_account_needs_login_and_csrf(client, login_as, db):
    resp = client.get("/account")
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]
    b, user = login_as(perm.CUSTOMER, name="Asli")
    resp = b.client.post("/account", data={"name": "Palsu", "locale": "id"})
    assert resp.status_code == 400
    assert _user(db, user.email).name == "Asli"


def test_change_password(login_as, db):
    b, user = login_as(perm.CUSTOMER)
    page = b.get("/account/password").get_data(as_text=True)
    assert 'name="new_password"' in page and 'class="portal-header"' in page
    resp = b.post(
        "/account/password",
        {
            "password": "password",
            "new_password": "baru-dan-panjang-1",
            "new_password_confirm": "baru-dan-panjang-1",
        },
    )
    assert resp.status_code == 302, text(resp)[-2000:]
    assert verify_password("baru-dan-panjang-1", _user(db, user.email).password)


# --- password reset through a real SMTP server on loopback -----------------------------


class _Inbox:
    def __init__(self):
        self.messages = []
        self.arrived = threading.Event()

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        self.arrived.set()
        return "250 Message accepted for delivery"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp():
    inbox = _Inbox()
    port = _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    inbox.port = port
    yield inbox
    controller.stop()


@pytest.fixture
def mail_app(database_url, db, smtp, tmp_path):
    """The app as ops run it: mail really goes to MAIL_SERVER:MAIL_PORT."""
    app = create_app(
        {
            "ENV_NAME": "testing",
            "SQLALCHEMY_DATABASE_URI": database_url,
            "UPLOAD_FOLDER": str(tmp_path),
            "MAIL_SERVER": "127.0.0.1",
            "MAIL_PORT": smtp.port,
        }
    )
    yield app
    with app.app_context():
        from backoffice.extensions import db as _db

        _db.engine.dispose()


def _deliver(app, smtp, expected: int = 1) -> None:
    """Security mail is queued in the outbox; `carebox outbox send` delivers it over SMTP."""
    with app.app_context():  # else the command runs in the test's own app context
        result = app.test_cli_runner().invoke(args=["outbox", "send"])
    assert result.exit_code == 0, result.output
    deadline = time.monotonic() + 5
    while len(smtp.messages) < expected and time.monotonic() < deadline:
        smtp.arrived.wait(0.1)


def test_password_reset_by_email(mail_app, smtp, make, db):
    user = make.user(perm.CUSTOMER, email="lupa@example.com")
    db.session.commit()
    b = Browser(mail_app.test_client())
    page = b.get("/login").get_data(as_text=True)
    assert 'href="/reset"' in page
    resp = b.post("/reset", {"email": "lupa@example.com"})
    assert resp.status_code in (200, 302), text(resp)[-2000:]
    _deliver(mail_app, smtp)
    assert len(smtp.messages) == 1
    mail = smtp.messages[0]
    assert mail["To"] == "lupa@example.com"
    body = mail.get_body(preferencelist=("plain", "html")).get_content()
    token = re.search(r"/reset/([A-Za-z0-9_.\-]+)", body).group(1)

    page = b.get(f"/reset/{token}")
    assert page.status_code == 200 and 'name="password_confirm"' in page.get_data(as_text=True)
    resp = b.post(
        f"/reset/{token}",
        {"password": "sandi-baru-yang-kuat", "password_confirm": "sandi-baru-yang-kuat"},
    )
    assert resp.status_code == 302, text(resp)[-2000:]
    assert verify_password("sandi-baru-yang-kuat", _user(db, user.email).password)
    fresh = Browser(mail_app.test_client())
    assert fresh.login(user, password="sandi-baru-yang-kuat").status_code == 302
    # The link works once.
    again = fresh.client.get(f"/reset/{token}")
    assert again.status_code in (200, 302)
    assert not verify_password("password", _user(db, user.email).password)


def test_password_reset_for_an_unknown_email_sends_nothing(mail_app, smtp, db):
    b = Browser(mail_app.test_client())
    resp = b.post("/reset", {"email": "nobody@example.com"})
    assert resp.status_code in (200, 302)
    _deliver(mail_app, smtp, expected=0)
    time.sleep(0.2)
    assert smtp.messages == []

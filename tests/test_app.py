"""The factory, configuration, security headers, CSRF, login throttling and languages."""

from __future__ import annotations

import pytest

from backoffice import create_app
from backoffice.config import ConfigError
from backoffice.domain import permissions as perm


def test_production_refuses_to_start_without_secrets(monkeypatch):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.delenv("SECURITY_PASSWORD_SALT", raising=False)
    with pytest.raises(ConfigError, match="SECRET_KEY and SECURITY_PASSWORD_SALT"):
        create_app("production")
    monkeypatch.setenv("SECRET_KEY", "k" * 40)
    with pytest.raises(ConfigError, match="SECURITY_PASSWORD_SALT"):
        create_app("production")
    monkeypatch.setenv("SECURITY_PASSWORD_SALT", "s" * 40)
    monkeypatch.setenv("CAREBOX_BASE_URL", "https://care.example.com")
    app = create_app("production")
    assert app.config["SESSION_COOKIE_SECURE"] and app.config["SESSION_COOKIE_HTTPONLY"]
    assert app.config["SECURITY_PASSWORD_HASH"] == "argon2"


def test_unknown_environment_is_refused():
    with pytest.raises(ConfigError, match="CAREBOX_ENV"):
        create_app("staging")


def test_rate_limits_come_from_the_environment_and_nonsense_is_refused(monkeypatch):
    monkeypatch.setenv("RATELIMIT_FAQ_VOTE", "5 per minute")
    assert create_app("development").config["RATELIMIT_FAQ_VOTE"] == "5 per minute"
    monkeypatch.setenv("RATELIMIT_LOGIN", "lots")
    with pytest.raises(ConfigError, match="RATELIMIT_LOGIN='lots' is not a rate limit"):
        create_app("development")


def test_security_headers(client):
    resp = client.get("/")
    csp = resp.headers["Content-Security-Policy"]
    assert "script-src 'self' 'nonce-" in csp and "unsafe-inline" not in csp.split("style-src")[0]
    assert "frame-ancestors 'none'" in csp
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["X-Frame-Options"] == "DENY"


@pytest.mark.parametrize("path", ["/login", "/register", "/reset", "/reset/not-a-token"])
def test_security_pages_send_a_valid_cache_control(client, path):
    """Not Flask-Security's default `private=True, no-store=True` (issue 9 item 9)."""
    resp = client.get(path)
    assert resp.headers["Cache-Control"] == "private, no-store"
    assert resp.cache_control.no_store and resp.cache_control.private


def test_login_without_csrf_is_refused_and_changes_nothing(client, make, db):
    user = make.user(perm.CUSTOMER)
    db.session.commit()
    resp = client.post("/login", data={"email": user.email, "password": "password"})
    assert resp.status_code == 400
    assert client.get("/admin/").status_code == 302  # still anonymous
    db.session.refresh(user)
    assert not user.login_count


def test_staff_and_customers_land_in_their_places(browser, make, db):
    staff = make.user(perm.CUSTOMER_SERVICE)
    db.session.commit()
    resp = browser.login(staff)
    follow = browser.get(resp.headers["Location"])
    assert follow.status_code == 302 and follow.headers["Location"].endswith("/admin/")
    assert browser.get("/admin/").status_code == 200


@pytest.mark.parametrize("storage", ["memory://", "redis://127.0.0.1:6379/15"])
def test_login_is_rate_limited(database_url, db, make, storage):
    import uuid

    from .conftest import Browser

    app = create_app(
        {
            "ENV_NAME": "testing",
            "SQLALCHEMY_DATABASE_URI": database_url,
            "RATELIMIT_ENABLED": True,
            "RATELIMIT_STORAGE_URI": storage,
            "RATELIMIT_LOGIN": "3 per minute",
            "RATELIMIT_KEY_PREFIX": uuid.uuid4().hex,
        }
    )
    b = Browser(app.test_client())
    codes = [
        b.post("/login", {"email": "nobody@example.com", "password": "wrong-password"}).status_code
        for _ in range(4)
    ]
    assert codes[:3] == [200, 200, 200]  # the form again, with an error
    assert codes[3] == 429


def test_default_language_is_indonesian_and_switch_is_remembered(browser):
    page = browser.get("/").get_data(as_text=True)
    assert '<html lang="id"' in page
    resp = browser.post("/lang/en", {"next": "/faq"}, form_url="/")
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/faq")
    assert '<html lang="en"' in browser.get("/").get_data(as_text=True)
    assert '<html lang="en"' in browser.get("/", headers={"Accept-Language": "id"}).get_data(
        as_text=True
    )


def test_browser_language_is_honoured(client):
    page = client.get("/", headers={"Accept-Language": "en-US,en;q=0.9"}).get_data(as_text=True)
    assert '<html lang="en"' in page


def test_language_switch_refuses_open_redirects(browser):
    resp = browser.post("/lang/en", {"next": "//evil.example/"}, form_url="/")
    assert resp.headers["Location"] in ("/", "http://localhost/")


def test_language_switch_needs_the_csrf_token(client):
    resp = client.post("/lang/en", data={"next": "/"})
    assert resp.status_code == 400
    assert client.get_cookie("lang") is None


def test_behind_a_trusted_proxy_the_client_address_is_forwarded(database_url):
    app = create_app(
        {"ENV_NAME": "testing", "SQLALCHEMY_DATABASE_URI": database_url, "PROXY_FIX": 1}
    )

    @app.route("/_whoami")
    def whoami():
        from flask import request

        return {"ip": request.remote_addr, "secure": request.is_secure}

    resp = app.test_client().get(
        "/_whoami", headers={"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}
    )
    assert resp.json == {"ip": "203.0.113.9", "secure": True}
    assert "Strict-Transport-Security" in resp.headers

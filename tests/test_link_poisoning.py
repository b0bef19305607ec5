"""Links in emails never follow the request's Host (issue 9 item 1;
docs/architecture.md §13, trap 14).

A forged `Host:` (or `X-Forwarded-Host:` behind a proxy) must not put the attacker's
host into a real password-reset email, and production refuses requests for a host
it does not serve (Flask's TRUSTED_HOSTS, from CAREBOX_BASE_URL).
"""

from __future__ import annotations

import pytest
from flask_security import verify_password

from backoffice.config import ConfigError
from backoffice.domain import permissions as perm
from backoffice.models import User

from .conftest import csrf_from
from .security_support import BASE, links_in, mail_to, make_app


class HostBrowser:
    """A client whose every request names `base` (scheme and Host), forged or not
    (docs/architecture.md §13, trap 21: cookies follow the Host, so one client keeps one Host)."""

    def __init__(self, app, base: str, headers: dict | None = None):
        self.client = app.test_client()
        self.base = base
        self.headers = headers or {}

    def get(self, url, **kw):
        return self.client.get(url, base_url=self.base, headers=self.headers, **kw)

    def post(self, url, data, form_url=None):
        page = self.get(form_url or url)
        data = {**data, "csrf_token": csrf_from(page.get_data(as_text=True))}
        # Over https Flask-WTF also wants a same-site Referer, as a browser sends it.
        headers = {"Referer": self.base + (form_url or url), **self.headers}
        return self.client.post(url, data=data, base_url=self.base, headers=headers)


def _reset_links(db, email: str) -> list[str]:
    mails = mail_to(db, email)
    assert len(mails) == 1, [m.subject for m in mails]
    return [link for link in links_in(mails[0]) if "/reset/" in link]


@pytest.mark.parametrize(
    ("base", "headers", "proxies"),
    [
        ("http://evil.example", {}, 0),  # a forged Host
        ("http://localhost", {"X-Forwarded-Host": "evil.example"}, 1),  # through ProxyFix
    ],
    ids=["host", "x-forwarded-host"],
)
def test_a_reset_link_is_built_from_the_base_url_whatever_host_is_asked(
    database_url, db, make, base, headers, proxies
):
    app = make_app(database_url, PROXY_FIX=proxies)
    master = make.user(perm.MASTER_ADMIN, email="boss@example.com")
    db.session.commit()
    attacker = HostBrowser(app, base, headers)
    resp = attacker.post("/reset", {"email": master.email})
    assert resp.status_code in (200, 302)
    links = _reset_links(db, master.email)
    assert links and all(link.startswith(f"{BASE}/reset/") for link in links), links
    assert "evil.example" not in mail_to(db, master.email)[0].body_text

    # The link works on the real site, for the real owner.
    token = links[0].rsplit("/", 1)[1]
    owner = HostBrowser(app, BASE)
    new = "Kunci-Baru-Yang-Panjang-77"
    resp = owner.post(f"/reset/{token}", {"password": new, "password_confirm": new})
    assert resp.status_code == 302, resp.get_data(as_text=True)[-3000:]
    db.session.commit()
    assert verify_password(new, db.session.get(User, master.id).password)


def test_behind_a_proxy_x_forwarded_host_is_not_trusted(database_url, db):
    app = make_app(database_url, PROXY_FIX=1)

    @app.route("/_host")
    def host():
        from flask import request, url_for

        return {"host": request.host, "external": url_for("portal.faq", _external=True)}

    resp = app.test_client().get("/_host", headers={"X-Forwarded-Host": "evil.example"})
    assert resp.json == {"host": "localhost", "external": f"{BASE}/faq"}


def test_production_refuses_a_request_for_a_host_it_does_not_serve(database_url, db, make):
    app = make_app(database_url, "production")
    user = make.user(perm.MASTER_ADMIN, email="boss@example.com")
    db.session.commit()
    assert app.config["TRUSTED_HOSTS"] == ["care.example.com"]
    real = HostBrowser(app, BASE)
    assert real.get("/login").status_code == 200

    forged = HostBrowser(app, "https://evil.example")
    for url in ("/", "/login", "/reset", "/admin/"):
        resp = forged.get(url)
        assert resp.status_code == 400, url
        assert "carebox" in resp.get_data(as_text=True)  # the error page, not a traceback
    resp = forged.client.post("/reset", data={"email": user.email}, base_url="https://evil.example")
    assert resp.status_code == 400
    assert mail_to(db, user.email) == []


def test_more_hosts_can_be_trusted_by_setting(database_url, db, monkeypatch):
    monkeypatch.setenv("CAREBOX_TRUSTED_HOSTS", "care-internal.example, 10.0.0.5")
    app = make_app(database_url, "production")
    assert app.config["TRUSTED_HOSTS"] == ["care.example.com", "care-internal.example", "10.0.0.5"]
    assert HostBrowser(app, "https://10.0.0.5").get("/login").status_code == 200
    assert HostBrowser(app, "https://care-internal.example").get("/").status_code == 200


def test_production_needs_its_base_url(monkeypatch, database_url):
    monkeypatch.setenv("SECRET_KEY", "k" * 40)
    monkeypatch.setenv("SECURITY_PASSWORD_SALT", "s" * 40)
    monkeypatch.delenv("CAREBOX_BASE_URL", raising=False)
    from backoffice import create_app

    with pytest.raises(ConfigError, match="CAREBOX_BASE_URL"):
        create_app("production")
    monkeypatch.setenv("CAREBOX_BASE_URL", "care.example.com")
    with pytest.raises(ConfigError, match="CAREBOX_BASE_URL"):
        create_app("production")  # not an absolute http(s) URL


def test_links_in_carebox_emails_use_the_base_url_too(database_url, db, make):
    """Carebox's own mail (a ticket filed) links to the configured site, not the request's."""
    app = make_app(database_url)
    customer = make.user(perm.CUSTOMER, email="siti@example.com", locale="en")
    db.session.commit()
    b = HostBrowser(app, "http://evil.example")
    resp = b.post("/login", {"email": customer.email, "password": "password"})
    assert resp.status_code == 302
    resp = b.post(
        "/tickets/new",
        {"kind": "question", "subject": "Where is it?", "body": "My parcel is late."},
    )
    assert resp.status_code == 302
    links = [link for m in mail_to(db, customer.email) for link in links_in(m)]
    assert links and all(link.startswith(BASE) for link in links), links

"""Fixtures: a real database (SQLite file, or TEST_DATABASE_URL), the app, clients, logins.

Each xdist worker gets its own database; each test starts from the seed data
(roles, departments, routing rules, products, FAQ) with nothing else.
"""

from __future__ import annotations

import os
import re
import uuid

import flask_babel
import pytest
import sqlalchemy as sa
from flask import g
from jinja2 import StrictUndefined

from backoffice import create_app
from backoffice.extensions import db as _db
from backoffice.extensions import limiter, security

from .factories import Factories


def _database_url(tmp_path_factory, worker: str) -> tuple[str, callable]:
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        path = tmp_path_factory.mktemp(f"db-{worker}") / "test.db"
        return f"sqlite:///{path}", lambda: None
    # A fresh database per worker and run on the server TEST_DATABASE_URL names.
    base = sa.engine.make_url(url)
    name = f"carebox_t_{worker}_{uuid.uuid4().hex[:8]}"
    server = sa.create_engine(base.set(database=base.database or "test"))
    with server.begin() as conn:
        conn.execute(
            sa.text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        )

    def drop():
        with server.begin() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS `{name}`"))
        server.dispose()

    query = dict(base.query)
    query.setdefault("charset", "utf8mb4")
    return base.set(database=name, query=query).render_as_string(hide_password=False), drop


@pytest.fixture(scope="session")
def database_url(tmp_path_factory, worker_id):
    url, drop = _database_url(tmp_path_factory, worker_id)
    yield url
    drop()


@pytest.fixture(scope="session")
def app(database_url, tmp_path_factory):
    app = create_app(
        {
            "ENV_NAME": "testing",
            "SQLALCHEMY_DATABASE_URI": database_url,
            "UPLOAD_FOLDER": str(tmp_path_factory.mktemp("uploads")),
        }
    )
    app.jinja_env.undefined = StrictUndefined

    def _fresh_globals():
        # Tests hold an app context open (the `db` fixture), and Flask reuses it for
        # requests, so `g` (the signed-in user, the CSP nonce, the cached locale) would
        # leak from one request to the next. In production every request gets its own.
        g.__dict__.clear()
        flask_babel.refresh()

    # First of all (before Flask-Principal's identity loader), so a request loads its
    # user once, as in production: statement budgets count what production runs.
    app.before_request_funcs.setdefault(None, []).insert(0, _fresh_globals)

    with app.app_context():
        _db.create_all()
    yield app
    with app.app_context():
        _db.session.remove()
        _db.engine.dispose()


def _wipe() -> None:
    """Empty every table (children first) so the next test starts clean."""
    engine = _db.engine
    with engine.begin() as conn:
        if engine.dialect.name == "mysql":
            conn.execute(sa.text("SET FOREIGN_KEY_CHECKS=0"))
        for table in reversed(_db.metadata.sorted_tables):
            conn.execute(table.delete())
        if engine.dialect.name == "mysql":
            conn.execute(sa.text("SET FOREIGN_KEY_CHECKS=1"))


@pytest.fixture
def db(app):
    """The database with seed data loaded, inside an app context; emptied afterwards."""
    from backoffice.seed import seed_base

    with app.app_context():
        seed_base()
        _db.session.commit()
        yield _db
        _db.session.rollback()
        _db.session.remove()
        _wipe()


@pytest.fixture
def limited_app(database_url, db, tmp_path):
    """limited_app(**limits) -> an app on the test database with rate limiting on
    (memory storage, a fresh key prefix), e.g. limited_app(RATELIMIT_FAQ_VOTE="2 per hour")."""
    apps = []

    def _make(**limits):
        app = create_app(
            {
                "ENV_NAME": "testing",
                "SQLALCHEMY_DATABASE_URI": database_url,
                "UPLOAD_FOLDER": str(tmp_path),
                "RATELIMIT_ENABLED": True,
                "RATELIMIT_STORAGE_URI": "memory://",
                "RATELIMIT_KEY_PREFIX": uuid.uuid4().hex,
                **limits,
            }
        )
        apps.append(app)
        return app

    yield _make
    for app in apps:
        with app.app_context():
            _db.engine.dispose()


@pytest.fixture(autouse=True)
def _shared_extensions_back_to_testing():
    """Apps built inside a test (production config, rate limits on) re-bind the extension
    objects all apps share (extensions.py): the limiter's switch and Flask-Security's
    password contexts. Put them back, or later tests of the worker cannot log in."""
    saved = {
        k: security.__dict__[k]
        for k in ("pwd_context", "hashing_context")
        if k in security.__dict__
    }
    yield
    limiter.enabled = False  # TestingConfig.RATELIMIT_ENABLED
    for key, value in saved.items():
        setattr(security, key, value)


@pytest.fixture
def make(db) -> Factories:
    return Factories(db)


@pytest.fixture
def client(app, db):
    return app.test_client()


@pytest.fixture
def runner(app, db):
    return app.test_cli_runner()


CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="csrf_token"')


def csrf_from(html: str) -> str:
    match = CSRF_RE.search(html)
    assert match, "no csrf_token in the page"
    return match.group(1) or match.group(2)


class Browser:
    """A test client that signs in and posts forms with their real CSRF token."""

    def __init__(self, client):
        self.client = client
        self.user = None

    def get(self, url, **kw):
        return self.client.get(url, **kw)

    def token(self, form_url: str) -> str:
        resp = self.client.get(form_url)
        assert resp.status_code == 200, (form_url, resp.status_code)
        return csrf_from(resp.get_data(as_text=True))

    def post(self, url, data=None, *, form_url=None, csrf=True, **kw):
        data = dict(data or {})
        if csrf and "csrf_token" not in data:
            data["csrf_token"] = self.token(form_url or url)
        return self.client.post(url, data=data, **kw)

    def login(self, user, password="password"):
        resp = self.post("/login", {"email": user.email, "password": password})
        assert resp.status_code in (302, 303), resp.get_data(as_text=True)[:2000]
        self.user = user
        return resp

    def logout(self):
        return self.post("/logout", form_url="/")


@pytest.fixture
def browser(client) -> Browser:
    return Browser(client)


@pytest.fixture
def login_as(app, db, make):
    """login_as(role, **user_fields) -> (Browser, user): a fresh user of `role`, signed in."""

    def _login(role, **fields):
        user = make.user(role=role, **fields)
        db.session.commit()
        b = Browser(app.test_client())
        b.login(user)
        return b, user

    return _login


@pytest.fixture
def graph():
    """A local stand-in for the WhatsApp Cloud API (tests/whatsapp/graph_server.py)."""
    from .whatsapp.graph_server import FakeGraph

    with FakeGraph() as server:
        yield server


@pytest.fixture
def whatsapp(app, db, graph):
    """The WhatsApp channel configured on the test app against `graph`; put back after."""
    from backoffice.domain.whatsapp_templates import seed_from_setting

    from .whatsapp.support import settings

    values = settings(graph.base, WHATSAPP_REPLY_TEMPLATE="carebox_balasan_tiket")
    saved = {key: app.config.get(key) for key in values}
    app.config.update(values)
    seed_from_setting()  # the setting as the reply template, as migration 0027 does
    db.session.commit()
    yield graph
    app.config.update(saved)

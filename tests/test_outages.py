"""Outages under a running app: the database killed (503, a page that needs no database,
recovery) and Redis killed (rate limits fail open, never a 500, never a false "nothing
was changed"). Issue 9 items 11 and 12.

Each test runs its own mariadbd / redis-server (tests/servers.py) and kills it by pid;
the app is built with TESTING off, so its error handlers answer as in production.
"""

from __future__ import annotations

import logging
import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy import func, select

from backoffice import create_app
from backoffice.config import Config
from backoffice.domain import shipments
from backoffice.extensions import db as _db
from backoffice.extensions import limiter
from backoffice.models import Ticket
from backoffice.seed import seed_base

from .conftest import Browser
from .factories import Factories
from .servers import MariaDB, Redis

PRODUCTION_POOL = Config.SQLALCHEMY_ENGINE_OPTIONS  # as production runs


@pytest.fixture(scope="module")
def mariadb():
    with MariaDB() as server:
        yield server


@pytest.fixture(scope="module")
def redis_server():
    with Redis() as server:
        yield server


def _app(database_url: str, **config):
    app = create_app(
        {
            "ENV_NAME": "testing",
            "TESTING": False,  # the production error handlers
            "SQLALCHEMY_DATABASE_URI": database_url,
            "SQLALCHEMY_ENGINE_OPTIONS": PRODUCTION_POOL,
            **config,
        }
    )
    with app.app_context():
        _db.create_all()
        if not _db.session.scalar(select(func.count()).select_from(Ticket.__table__)):
            seed_base()
        _db.session.commit()
    return app


@pytest.fixture
def outage_app(mariadb, tmp_path):
    name = f"outage_{uuid.uuid4().hex[:8]}"
    url = mariadb.create_database(name)
    app = _app(url, UPLOAD_FOLDER=str(tmp_path))
    yield app
    if not mariadb.running:
        mariadb.start()
    with app.app_context():
        _db.engine.dispose()
    mariadb.query(f"DROP DATABASE IF EXISTS `{name}`")


def _customer(app):
    with app.app_context():
        user = Factories(_db).user(email=f"c{uuid.uuid4().hex[:6]}@example.com")
        _db.session.commit()
        return user.email


def _signed_in(app, email) -> Browser:
    b = Browser(app.test_client())
    resp = b.post("/login", {"email": email, "password": "password"})
    assert resp.status_code == 302, resp.get_data(as_text=True)[:500]
    return b


# --- the database ---------------------------------------------------------------------


def test_database_down_is_a_503_with_retry_after_then_recovers(outage_app, mariadb, caplog):
    email = _customer(outage_app)
    b = _signed_in(outage_app, email)
    en = Browser(outage_app.test_client())
    en.client.set_cookie("lang", "en")
    token = b.token("/tickets/new")
    assert b.get("/tickets").status_code == 200

    mariadb.kill()
    caplog.set_level(logging.ERROR)
    for client, path in (
        (b.client, "/tickets"),
        (b.client, "/"),
        (b.client, "/admin/"),
        (outage_app.test_client(), "/faq"),
        (en.client, "/products"),
        (outage_app.test_client(), f"/track/{shipments.make_resi(1234)}"),  # autocommit pool
    ):
        resp = client.get(path)
        assert resp.status_code == 503, (path, resp.status_code)
        assert resp.headers["Retry-After"] == "30"
        html = resp.get_data(as_text=True)
        assert "carebox" in html and "Internal Server Error" not in html
    english = en.client.get("/faq").get_data(as_text=True)
    assert "cannot reach its database" in english and 'lang="en"' in english
    indonesian = outage_app.test_client().get("/faq").get_data(as_text=True)
    assert "tidak dapat menjangkau basis datanya" in indonesian and 'lang="id"' in indonesian
    # A form sent during the outage: 503, and no promise that nothing changed.
    sent = b.client.post(
        "/tickets/new",
        data={"csrf_token": token, "kind": "question", "subject": "Paket?", "body": "Di mana?"},
    )
    assert sent.status_code == 503
    assert "Nothing was changed" not in sent.get_data(as_text=True)
    api = b.client.get("/tickets", headers={"Accept": "application/json"})
    assert api.status_code == 503 and api.get_json()["error"]
    assert any("database unreachable" in r.getMessage() for r in caplog.records)

    mariadb.start()  # same port: the app reconnects by itself, the session still holds
    assert b.get("/tickets").status_code == 200
    assert outage_app.test_client().get("/faq").status_code == 200
    assert outage_app.test_client().get(f"/track/{shipments.make_resi(1234)}").status_code == 404


def _idle_poll(app, b) -> tuple[str, str]:
    """(the chat poll's URL, its ETag) of a new ticket of `b`'s customer."""
    b.post(
        "/tickets/new",
        {"kind": "question", "subject": "Paket?", "body": "Di mana?"},
        form_url="/tickets/new",
    )
    with app.app_context():
        number = _db.session.scalar(select(Ticket.number).order_by(Ticket.id.desc()).limit(1))
    url = f"/tickets/{number}/messages"
    return url, b.get(url).headers["ETag"]


def test_an_idle_poll_while_the_database_is_down_is_a_503(outage_app, mariadb):
    """The short way's read (its own autocommit connections) fails as the full way's
    would: 503 with Retry-After, never a 500 and never a 304."""
    b = _signed_in(outage_app, _customer(outage_app))
    url, etag = _idle_poll(outage_app, b)
    assert b.get(url, headers={"If-None-Match": etag}).status_code == 304
    mariadb.kill()
    resp = b.get(url, headers={"If-None-Match": etag, "Accept": "application/json"})
    assert resp.status_code == 503 and resp.headers["Retry-After"] == "30"
    mariadb.start()
    assert b.get(url, headers={"If-None-Match": etag}).status_code == 304


def test_the_generic_error_page_promises_nothing(outage_app):
    def boom():
        raise RuntimeError("after a commit")

    outage_app.add_url_rule("/boom-for-test", "boom_for_test", boom)
    resp = outage_app.test_client().get("/boom-for-test", headers={"Accept-Language": "en"})
    assert resp.status_code == 500
    html = resp.get_data(as_text=True)
    assert "Nothing was changed" not in html and "may have been saved" in html


# --- Redis ----------------------------------------------------------------------------


@pytest.fixture
def redis_app(redis_server, outage_app, tmp_path, mariadb):
    """An app whose rate limits count in the private Redis; the shared limiter object is
    put back afterwards (its 'storage is dead' flag outlives the app)."""
    if not redis_server.running:
        redis_server.start()
    app = _app(
        str(outage_app.config["SQLALCHEMY_DATABASE_URI"]),
        UPLOAD_FOLDER=str(tmp_path),
        RATELIMIT_ENABLED=True,
        RATELIMIT_STORAGE_URI=redis_server.url(),
        RATELIMIT_KEY_PREFIX=uuid.uuid4().hex,
        RATELIMIT_LOGIN="50 per minute",
        RATELIMIT_TICKET_FILE="50 per hour",
    )
    yield app
    limiter._storage_dead = False
    with app.app_context():
        _db.engine.dispose()


def _tickets(app) -> int:
    with app.app_context():
        return _db.session.scalar(select(func.count()).select_from(Ticket.__table__))


def _file(b: Browser, subject: str):
    return b.post(
        "/tickets/new",
        {"kind": "question", "subject": subject, "body": "Di mana paket saya?"},
        form_url="/tickets/new",
    )


def test_redis_down_rate_limits_fail_open_and_nothing_fails(redis_app, redis_server, caplog):
    email = _customer(redis_app)
    b = _signed_in(redis_app, email)
    assert _file(b, "Sebelum").status_code == 302
    assert _tickets(redis_app) == 1

    redis_server.kill()
    caplog.set_level(logging.WARNING)
    filed = _file(b, "Saat Redis mati")
    assert filed.status_code == 302 and "/tickets/CX-" in filed.headers["Location"]
    assert _tickets(redis_app) == 2
    page = b.get(filed.headers["Location"])
    assert page.status_code == 200 and "Saat Redis mati" in page.get_data(as_text=True)
    anon = Browser(redis_app.test_client())
    assert anon.post("/login", {"email": "x@example.com", "password": "nope"}).status_code == 200
    assert anon.get(f"/track?resi={shipments.make_resi(1234)}").status_code == 200
    assert anon.post("/reset", {"email": "x@example.com"}).status_code in (200, 302)
    assert any("storage unreachable" in r.getMessage() for r in caplog.records)

    redis_server.start()
    assert _file(b, "Sesudah").status_code == 302
    assert _tickets(redis_app) == 3


def test_an_idle_poll_needs_no_redis(redis_app, redis_server):
    """No rate limit applies to a poll, and its short way runs before the limiter's hook:
    with Redis gone it still answers 304 (and the full way 200)."""
    b = _signed_in(redis_app, _customer(redis_app))
    url, etag = _idle_poll(redis_app, b)
    redis_server.kill()
    assert b.get(url, headers={"If-None-Match": etag}).status_code == 304
    assert b.get(url).status_code == 200
    redis_server.start()


def test_public_tracking_asks_redis_once_per_limit(redis_app, monkeypatch):
    """RATELIMIT_TRACK's two limits (a minute's, an hour's) are two round trips: each
    counter's increment, nothing read back for headers (RATELIMIT_HEADERS_ENABLED)."""
    import redis.connection

    client = redis_app.test_client()
    path = f"/track/{shipments.make_resi(1234)}"
    assert client.get(path).status_code == 404  # the scripts are loaded once
    sent = []
    real = redis.connection.AbstractConnection.send_packed_command

    def send(self, command, *args, **kwargs):  # one write per round trip
        sent.append(command)
        return real(self, command, *args, **kwargs)

    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", send)
    assert client.get(path).status_code == 404
    assert len(sent) == 2, sent


def test_filing_asks_redis_twice(redis_app, monkeypatch):
    """RATELIMIT_TICKET_FILE counts only the filings that succeed (deduct_when): one read
    before the view (is there room left?) and one increment after its answer; nothing
    read back for headers (issue 16 item 3: a filing's round trips to Redis)."""
    import redis.connection

    b = _signed_in(redis_app, _customer(redis_app))
    assert _file(b, "Pertama").status_code == 302  # the scripts are loaded once
    token = b.token("/tickets/new")
    sent = []
    real = redis.connection.AbstractConnection.send_packed_command

    def send(self, command, *args, **kwargs):  # one write per round trip
        sent.append(command)
        return real(self, command, *args, **kwargs)

    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", send)
    form = {"csrf_token": token, "kind": "question", "subject": "Kedua", "body": "Halo"}
    assert b.client.post("/tickets/new", data=form).status_code == 302
    assert len(sent) == 2, sent
    assert _tickets(redis_app) == 2


def test_redis_dying_after_the_commit_still_tells_the_truth(redis_app, redis_server, monkeypatch):
    """The limit was checked with Redis up; Redis dies while the ticket is filed; the
    count taken after the commit (deduct_when) fails: the customer still sees the ticket."""
    from backoffice.domain import tickets as lifecycle

    email = _customer(redis_app)
    b = _signed_in(redis_app, email)
    token = b.token("/tickets/new")
    real = lifecycle.file_ticket

    def file_then_redis_dies(*args, **kwargs):
        ticket = real(*args, **kwargs)
        redis_server.kill()
        return ticket

    monkeypatch.setattr(lifecycle, "file_ticket", file_then_redis_dies)
    resp = b.client.post(
        "/tickets/new",
        data={"csrf_token": token, "kind": "question", "subject": "Di tengah", "body": "Halo"},
    )
    assert resp.status_code == 302 and "/tickets/CX-" in resp.headers["Location"]
    assert _tickets(redis_app) == 1


def test_outage_tests_use_their_own_servers(mariadb, redis_server):
    assert mariadb.port != 3306 and redis_server.port != 6379
    assert sa.engine.make_url(mariadb.url()).port == mariadb.port

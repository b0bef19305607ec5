"""Browser fixtures: the real app under a real WSGI server, driven by Debian's Chromium.

The suite has its own app and database (never the HTTP tests' `db`, which wipes
tables after every test): one fresh database per session (a SQLite file, or a
fresh MariaDB database when TEST_DATABASE_URL is set), the seed data, and one
account per staff role. Tests share that database, so each one makes its own
customers and tickets and looks only at those.

One Chromium per session; every test (and every role inside a test) gets its
own browser context, i.e. its own cookies: two people, two browsers.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from flask import Flask, got_request_exception
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright
from werkzeug.serving import make_server

from backoffice import create_app
from backoffice.extensions import db

from ..conftest import _database_url
from .support import STAFF

CHROMIUM = os.environ.get("CAREBOX_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]

expect.set_options(timeout=10_000)


# --- options and collection -----------------------------------------------------------


def pytest_addoption(parser):
    parser.addoption(
        "--screenshots",
        action="store_true",
        default=False,
        help="also run tests/browser/test_screenshots.py (writes docs/screenshots/*.png)",
    )


def pytest_collection_modifyitems(config, items):
    """The screenshot test rewrites docs/screenshots: it runs only when asked for
    (`make screenshots`), and otherwise is deselected, not skipped."""
    if config.getoption("--screenshots", default=False):
        return
    keep, drop = [], []
    for item in items:
        (drop if item.path.name == "test_screenshots.py" else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


# --- the server -------------------------------------------------------------------------


@dataclass
class LiveServer:
    app: Flask
    url: str
    errors: list = field(default_factory=list)

    def app_context(self):
        return self.app.app_context()


def _seed(app: Flask) -> None:
    from sqlalchemy import select

    from backoffice.models import Department
    from backoffice.seed import ensure_user, seed_base

    with app.app_context():
        db.create_all()
        seed_base()
        departments = {d.code: d for d in db.session.scalars(select(Department))}
        for account in STAFF.values():
            user = ensure_user(
                account.email,
                account.password,
                account.role,
                name=account.name,
                department=departments.get(account.department),
            )
            user.locale = "en"  # the tests read English; one test switches languages
        db.session.commit()
        db.session.remove()


def _closing(app: Flask):
    """Read each response whole and close it before the server sends it.

    Werkzeug's development server closes a response only after draining the socket,
    and that drain raises when Chromium resets a connection it no longer needs (a
    cancelled script or image on a page it navigated away from). The open static file
    is then closed by the garbage collector, whose ResourceWarning fails whichever test
    happens to be running. Responses here are small, so buffering them costs nothing.
    """

    def wsgi(environ, start_response):
        body = app(environ, start_response)
        try:
            return [b"".join(body)]
        finally:
            if hasattr(body, "close"):
                body.close()

    return wsgi


@pytest.fixture(scope="session")
def live_server(tmp_path_factory) -> Iterator[LiveServer]:
    url, drop = _database_url(tmp_path_factory, "browser")
    app = create_app(
        {
            "ENV_NAME": "testing",
            "SQLALCHEMY_DATABASE_URI": url,
            "UPLOAD_FOLDER": str(tmp_path_factory.mktemp("browser-uploads")),
            # What a browser meets in production: every form checks its CSRF token.
            "WTF_CSRF_ENABLED": True,
            # Many logins from one address in a few seconds; limits have their own tests.
            "RATELIMIT_ENABLED": False,
        }
    )
    _seed(app)
    server = LiveServer(app=app, url="")

    def record(sender, exception, **extra):
        # TestingConfig lets exceptions propagate (Flask-Admin's included): each one
        # becomes a 500 for the browser and a failure for the test that caused it.
        server.errors.append(repr(exception))

    got_request_exception.connect(record, app)
    wsgi = make_server("127.0.0.1", 0, _closing(app), threaded=True)
    server.url = f"http://127.0.0.1:{wsgi.server_port}"
    app.config["CAREBOX_BASE_URL"] = server.url
    quiet = logging.getLogger("werkzeug")
    level = quiet.level
    quiet.setLevel(logging.WARNING)  # no line per request in the captured output
    thread = threading.Thread(target=wsgi.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        wsgi.shutdown()
        thread.join(timeout=10)
        wsgi.server_close()
        quiet.setLevel(level)
        got_request_exception.disconnect(record, app)
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        drop()


@pytest.fixture(autouse=True)
def _no_server_errors(request):
    """Any exception inside a request fails the test that caused it."""
    if "live_server" not in request.fixturenames:
        yield
        return
    server = request.getfixturevalue("live_server")
    server.errors.clear()
    yield
    assert server.errors == [], f"server errors: {server.errors}"


# --- the browser -------------------------------------------------------------------------


@pytest.fixture(scope="session")
def chromium() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does)")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class PageProblems:
    """What went wrong inside the pages of a test: script errors and CSP refusals."""

    CSP = re.compile(r"Content Security Policy|Refused to (execute|load|apply|connect)")

    def __init__(self):
        self.problems: list[str] = []

    def watch(self, page: Page) -> None:
        page.on("pageerror", lambda exc: self.problems.append(f"{page.url}: {exc}"))
        page.on(
            "console",
            lambda msg: (
                self.problems.append(f"{page.url}: {msg.text}")
                if msg.type == "error" and self.CSP.search(msg.text)
                else None
            ),
        )


@pytest.fixture
def new_context(chromium, live_server) -> Iterator:
    """new_context(locale="en-US", **options) -> a fresh BrowserContext on the live server.

    English by default (the tests read English); pass locale="id-ID" for Indonesian.
    Every page opened in it is watched for script errors and CSP refusals.
    """
    contexts: list[BrowserContext] = []
    problems = PageProblems()

    def _new(locale: str = "en-US", **options) -> BrowserContext:
        options.setdefault("viewport", {"width": 1280, "height": 900})
        context = chromium.new_context(base_url=live_server.url, locale=locale, **options)
        context.set_default_timeout(10_000)
        context.on("page", problems.watch)
        contexts.append(context)
        return context

    yield _new
    for context in contexts:
        context.close()
    assert problems.problems == [], problems.problems

"""The ticket chat's live updates: a JSON poll that answers 304 while nothing changed."""

from __future__ import annotations

from contextlib import contextmanager

import pytest
from sqlalchemy import event

from backoffice import create_app
from backoffice.domain import permissions as perm
from backoffice.domain import tickets as lifecycle
from backoffice.extensions import db as _db
from backoffice.models import Ticket, TicketStatus

from .conftest import Browser
from .portal_support import customer


@contextmanager
def counting(*engines):
    """The SQL statements run on `engines` inside the block."""
    statements: list[str] = []

    def record(conn, cursor, statement, *args):
        statements.append(statement)

    for engine in engines:
        event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", record)


@pytest.fixture
def served_app(database_url, db, tmp_path):
    """The app as a server runs it: each request has its own app context, `g` and session
    (the `app` fixture shares one context between the test and its requests)."""
    app = create_app(
        {
            "ENV_NAME": "testing",
            "SQLALCHEMY_DATABASE_URI": database_url,
            "UPLOAD_FOLDER": str(tmp_path),
        }
    )
    yield app
    with app.app_context():
        _db.engine.dispose()


def _setup(login_as, make, db, status=TicketStatus.TEAM, locale="en"):
    b, user = customer(login_as, locale=locale)
    ticket = make.ticket(status=status, customer=user)
    db.session.commit()
    return b, ticket, f"/tickets/{ticket.number}/messages"


def test_poll_answers_304_while_nothing_changed(login_as, make, db):
    b, ticket, url = _setup(login_as, make, db)
    first = b.get(url)
    assert first.status_code == 200
    etag = first.headers["ETag"]
    assert etag == f'"t{ticket.id}-v{ticket.version_id}-s-e0-en"'  # no situation, no parcel
    assert first.headers["Cache-Control"] == "private, no-cache"
    data = first.get_json()
    assert data["status"] == "team" and [m["body"] for m in data["messages"]] == ["Tolong dibantu."]
    again = b.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b"" and again.headers["ETag"] == etag
    # The page itself carries the ETag, so the first poll of a fresh page is a 304 too.
    page = b.get(f"/tickets/{ticket.number}").get_data(as_text=True)
    assert 'data-etag="&#34;' + etag.strip('"') + '&#34;"' in page


def test_staff_reply_shows_up_and_internal_notes_never(login_as, make, db):
    b, ticket, url = _setup(login_as, make, db)
    first = b.get(url)
    etag, last = first.headers["ETag"], first.get_json()["messages"][-1]["id"]
    staff = make.user(perm.CUSTOMER_SERVICE, name="Rina Wulandari")
    lifecycle.post_message(ticket, staff, "RAHASIA: catatan internal", internal=True)
    db.session.commit()
    # A note bumps the version, so the poll answers 200, but with nothing in it.
    after_note = b.get(f"{url}?after={last}", headers={"If-None-Match": etag})
    assert after_note.status_code == 200 and after_note.get_json()["messages"] == []
    assert "RAHASIA" not in after_note.get_data(as_text=True)
    etag = after_note.headers["ETag"]
    lifecycle.post_message(ticket, staff, "Paket Anda sudah kami temukan.")
    db.session.commit()
    resp = b.get(f"{url}?after={last}", headers={"If-None-Match": etag})
    assert resp.status_code == 200
    data = resp.get_json()
    assert data["status"] == "responded" and data["status_label"]
    (message,) = data["messages"]
    assert message["body"] == "Paket Anda sudah kami temukan."
    assert message["mine"] is False and message["author"] == "Rina from carebox"
    assert set(message) == {
        "id",
        "body",
        "mine",
        "author",
        "at",
        "at_label",
        "attachments",
        "channel",
        "channel_html",
    }
    # From the start, the whole conversation still has no note.
    everything = b.get(url).get_data(as_text=True)
    assert "RAHASIA" not in everything and "Paket Anda sudah kami temukan." in everything
    assert b.get(url, headers={"If-None-Match": resp.headers["ETag"]}).status_code == 304


def test_status_changes_change_the_etag_and_labels_follow_the_language(login_as, make, db):
    b, ticket, url = _setup(login_as, make, db, status=TicketStatus.RESPONDED, locale="id")
    etag = b.get(url).headers["ETag"]
    lifecycle.finish(ticket, make._master())
    db.session.commit()
    resp = b.get(url, headers={"If-None-Match": etag})
    assert resp.status_code == 200 and resp.get_json()["status"] == "finished"
    b.post("/lang/en", {"next": "/"}, form_url="/")
    english = b.get(url, headers={"If-None-Match": resp.headers["ETag"]})
    assert english.status_code == 200 and english.get_json()["status_label"] == "Closed"


def test_odd_after_values_are_harmless(login_as, make, db):
    b, _ticket, url = _setup(login_as, make, db)
    for after in ("abc", "-5", "99999999999999999999", "1e9", ""):
        resp = b.get(url, query_string={"after": after})
        assert resp.status_code == 200, after


def test_what_one_poll_costs(served_app, make, db, capsys):
    """A 304 poll is one small indexed query and no body; the figures are printed."""
    user = make.user(perm.CUSTOMER)
    ticket = make.ticket(status=TicketStatus.TEAM, customer=user)
    db.session.commit()
    b = Browser(served_app.test_client())
    b.login(user)
    url = f"/tickets/{ticket.number}/messages"
    first = b.get(url)
    etag, last = first.headers["ETag"], first.get_json()["messages"][-1]["id"]
    with served_app.app_context():
        engines = list(_db.engines.values())  # the idle polls' own included
    with counting(*engines) as unchanged:
        resp = b.get(url, headers={"If-None-Match": etag})
    assert resp.status_code == 304 and resp.data == b""
    # The ticket's id and version by number (its unique index) joined to the session's user
    # and their roles (backoffice/idle_polls.py). No message is read.
    assert len(unchanged) == 1, unchanged
    assert "ticket.version_id" in unchanged[0] and "JOIN user" in unchanged[0]
    assert "ticket_message" not in " ".join(unchanged)
    headers_304 = sum(len(k) + len(v) + 4 for k, v in resp.headers.items())
    lifecycle.post_message(db.session.get(Ticket, ticket.id), make._master(), "Balasan " * 20)
    db.session.commit()
    with counting(*engines) as changed:
        resp = b.get(f"{url}?after={last}", headers={"If-None-Match": etag})
    assert resp.status_code == 200 and len(resp.get_json()["messages"]) == 1
    # The short way's read, then the full way: the user with their roles, the ticket, the
    # new public messages with their authors (one join), their attachments.
    assert len(changed) <= 5, changed
    with capsys.disabled():
        print(
            f"\n  poll cost: 304 = {len(unchanged)} queries, 0 body bytes, "
            f"{headers_304} header bytes; 200 with one message = {len(changed)} queries, "
            f"{len(resp.data)} body bytes"
        )


def test_ticket_page_works_without_javascript(login_as, make, db):
    b, ticket, _url = _setup(login_as, make, db)
    page = b.get(f"/tickets/{ticket.number}").get_data(as_text=True)
    # Plain forms that post and come back to the page; the script only adds polling.
    assert f'action="/tickets/{ticket.number}/reply"' in page and 'method="post"' in page
    assert "portal-chat.js" in page and "<script>" not in page
    assert f'data-poll-url="/tickets/{ticket.number}/messages"' in page

"""The idle poll's short way (backoffice/idle_polls.py) says "nothing new" (304) only
where the full way would: each case below carries a valid ETag, which is what sends a
poll the short way, and must still be refused or answered in full."""

from __future__ import annotations

from sqlalchemy import select

from backoffice.domain import permissions as perm
from backoffice.domain import tickets as lifecycle
from backoffice.models import Role, User
from backoffice.security_setup import user_datastore

from .conftest import Browser
from .test_request_budgets import PORTAL_POLL_304, fresh_count


def _chat(client, number, etag):
    return client.get(f"/tickets/{number}/messages", headers={"If-None-Match": etag})


def _desk(client, number, etag, **args):
    return client.get(
        f"/admin/tickets/desk/{number}/poll",
        query_string={"after": 0, **args},
        headers={"If-None-Match": etag},
    )


def _copy(app, b) -> Browser:
    stolen = Browser(app.test_client())
    stolen.client.set_cookie("session", b.client.get_cookie("session").value)
    return stolen


def test_a_session_logged_out_elsewhere_gets_no_304(app, login_as, make, db):
    b, me = login_as(perm.CUSTOMER, locale="en")
    number = make.ticket("team", customer=me).number
    db.session.commit()
    etag = b.get(f"/tickets/{number}/messages").headers["ETag"]
    stolen = _copy(app, b)
    assert _chat(stolen, number, etag).status_code == 304  # the copy works while signed in
    b.logout()  # a new fs_uniquifier: every earlier cookie names nobody
    resp = _chat(stolen, number, etag)
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]


def test_a_deactivated_customer_gets_no_304(login_as, make, db):
    b, me = login_as(perm.CUSTOMER, locale="en")
    number = make.ticket("team", customer=me).number
    db.session.commit()
    etag = b.get(f"/tickets/{number}/messages").headers["ETag"]
    db.session.get(User, me.id).active = False
    db.session.commit()
    assert _chat(b, number, etag).status_code == 302


def test_another_customers_etag_is_a_404(login_as, make, db):
    owner, me = login_as(perm.CUSTOMER, locale="en")
    other, _ = login_as(perm.CUSTOMER, locale="en")
    number = make.ticket("team", customer=me).number
    db.session.commit()
    etag = owner.get(f"/tickets/{number}/messages").headers["ETag"]
    assert _chat(other, number, etag).status_code == 404


def test_a_changed_ticket_is_answered_in_full(login_as, make, db):
    b, me = login_as(perm.CUSTOMER, locale="en")
    ticket = make.ticket("team", customer=me)
    db.session.commit()
    etag = b.get(f"/tickets/{ticket.number}/messages").headers["ETag"]
    lifecycle.post_message(ticket, make._master(), "Paket sudah kami cek.")
    db.session.commit()
    resp = _chat(b, ticket.number, etag)
    assert resp.status_code == 200
    assert "Paket sudah kami cek." in [m["body"] for m in resp.get_json()["messages"]]


def test_the_language_is_part_of_the_short_ways_etag(login_as, make, db):
    b, me = login_as(perm.CUSTOMER, locale="en")
    number = make.ticket("team", customer=me).number
    db.session.commit()
    etag = b.get(f"/tickets/{number}/messages").headers["ETag"]
    db.session.get(User, me.id).locale = "id"  # switched on another device
    db.session.commit()
    resp = _chat(b, number, etag)
    assert resp.status_code == 200 and resp.get_json()["status_label"] != "Team"


def test_staff_who_lose_their_role_get_no_304_at_the_desk(login_as, make, db):
    cs, staff = login_as(perm.CUSTOMER_SERVICE, locale="en")
    number = make.ticket("team").number
    db.session.commit()
    etag = cs.get(f"/admin/tickets/desk/{number}/poll?after=0").headers["ETag"]
    assert _desk(cs, number, etag).status_code == 304
    user = db.session.get(User, staff.id)
    user_datastore.remove_role_from_user(user, perm.CUSTOMER_SERVICE)
    user_datastore.add_role_to_user(
        user, db.session.scalar(select(Role).where(Role.name == perm.CUSTOMER))
    )
    db.session.commit()
    assert _desk(cs, number, etag).status_code == 403


def test_a_department_admin_off_their_list_goes_the_full_way(login_as, make, db):
    """A ticket of their department that they wrote on, now Responded: off their list
    (`can_see_ticket`), still at their desk (`can_open_at_desk`): the full way answers."""
    ops, admin = login_as(perm.ADMIN_DEPARTMENT, department="OPS", locale="en")
    ticket = make.ticket("team", department="OPS")
    lifecycle.post_message(ticket, admin, "Catatan", internal=True)
    db.session.commit()
    etag = _desk(ops, ticket.number, '"none"').headers["ETag"]
    assert _desk(ops, ticket.number, etag).status_code == 304
    lifecycle.post_message(ticket, make._master(), "Sudah dikirim ulang.")  # -> Responded
    db.session.commit()
    resp = _desk(ops, ticket.number, etag)
    assert resp.status_code == 200
    etag = resp.headers["ETag"]
    resp, n = fresh_count(db, lambda: _desk(ops, ticket.number, etag))
    assert resp.status_code == 304 and n > 2  # the short way's read, then the full way


def test_a_due_heartbeat_is_written_by_the_short_way(login_as, make, db):
    from datetime import timedelta

    from backoffice.domain import presence
    from backoffice.models import TicketViewer

    citra, me = login_as(perm.CUSTOMER_SERVICE, name="Citra", locale="en")
    budi, _ = login_as(perm.CUSTOMER_SERVICE, name="Budi", locale="en")
    number = make.ticket("team").number
    db.session.commit()
    etag = _desk(citra, number, '"none"').headers["ETag"]
    _desk(budi, number, '"none"')
    etag = _desk(citra, number, etag).headers["ETag"]  # now with Budi in it
    for row in db.session.scalars(select(TicketViewer).where(TicketViewer.user_id == me.id)):
        row.seen_at -= presence.SEEN_REFRESH + timedelta(seconds=1)
    db.session.commit()
    assert _desk(citra, number, etag).status_code == 304
    db.session.expire_all()
    seen = db.session.scalar(select(TicketViewer.seen_at).where(TicketViewer.user_id == me.id))
    assert seen > presence.utcnow() - presence.SEEN_REFRESH  # written, so Budi still sees her
    assert budi.get(f"/admin/tickets/desk/{number}/poll?after=0").get_json()["presence"] == (
        "Also viewing: Citra"
    )


def _signed_session(app, data: dict, at: float | None = None) -> str:
    """A session cookie as the app signs one (`at`: the moment it claims to be from)."""
    import itsdangerous.timed

    serializer = app.session_interface.get_signing_serializer(app)
    if at is None:
        return serializer.dumps(data)
    real = itsdangerous.timed.time.time
    itsdangerous.timed.time.time = lambda: at
    try:
        return serializer.dumps(data)
    finally:
        itsdangerous.timed.time.time = real


def _session_of(app, b) -> dict:
    serializer = app.session_interface.get_signing_serializer(app)
    return serializer.loads(b.client.get_cookie("session").value)


def test_an_expired_or_tampered_cookie_gets_no_304(app, login_as, make, db):
    """The session's signature and age are checked as the session opens (Flask), before
    any hook: a cookie past PERMANENT_SESSION_LIFETIME or with a broken signature opens
    as an empty session, so the short way finds no user and the full way asks to log in."""
    import time

    b, me = login_as(perm.CUSTOMER, locale="en")
    number = make.ticket("team", customer=me).number
    db.session.commit()
    etag = b.get(f"/tickets/{number}/messages").headers["ETag"]
    data = _session_of(app, b)
    fresh = Browser(app.test_client())
    fresh.client.set_cookie("session", _signed_session(app, data))
    assert _chat(fresh, number, etag).status_code == 304  # the same session, signed now
    old = time.time() - app.permanent_session_lifetime.total_seconds() - 60
    expired = Browser(app.test_client())
    expired.client.set_cookie("session", _signed_session(app, data, at=old))
    resp = _chat(expired, number, etag)
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]
    value = b.client.get_cookie("session").value
    tampered = Browser(app.test_client())
    tampered.client.set_cookie("session", value[:-2] + ("AA" if value[-2:] != "AA" else "BB"))
    resp = _chat(tampered, number, etag)
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]
    forged = Browser(app.test_client())  # another user's id in an unsigned copy
    forged.client.set_cookie("session", value.rsplit(".", 1)[0] + ".x")
    assert _chat(forged, number, etag).status_code == 302


def test_another_browser_with_the_cookie_goes_the_full_way(app, login_as, make, db):
    """Flask-Login's session protection ("basic"): a copied cookie from another browser
    is not answered by the short way (the full way judges it, and marks it not fresh)."""
    b, me = login_as(perm.CUSTOMER, locale="en")
    number = make.ticket("team", customer=me).number
    db.session.commit()
    etag = b.get(f"/tickets/{number}/messages").headers["ETag"]
    elsewhere = _copy(app, b)
    resp, n = fresh_count(
        db,
        lambda: elsewhere.get(
            f"/tickets/{number}/messages",
            headers={"If-None-Match": etag, "User-Agent": "another browser"},
        ),
    )
    assert resp.status_code == 304 and n > PORTAL_POLL_304  # the full way answered


def test_a_forged_host_is_refused_before_the_short_way(app, login_as, make, db, monkeypatch):
    b, me = login_as(perm.CUSTOMER, locale="en")
    number = make.ticket("team", customer=me).number
    db.session.commit()
    etag = b.get(f"/tickets/{number}/messages").headers["ETag"]
    monkeypatch.setitem(app.config, "TRUSTED_HOSTS", ["localhost"])
    assert _chat(b, number, etag).status_code == 304
    resp = b.get(
        f"/tickets/{number}/messages", headers={"If-None-Match": etag, "Host": "evil.example"}
    )
    assert resp.status_code == 400


def test_a_poll_with_a_body_goes_the_full_way(app, login_as, make, db):
    """The size check (413) reads the body's length before anything: the short way,
    first of the hooks, leaves every request with a body to it."""
    b, me = login_as(perm.CUSTOMER, locale="en")
    number = make.ticket("team", customer=me).number
    db.session.commit()
    etag = b.get(f"/tickets/{number}/messages").headers["ETag"]
    too_big = b"x" * (app.config["MAX_CONTENT_LENGTH"] + 1)
    resp = b.get(f"/tickets/{number}/messages", data=too_big, headers={"If-None-Match": etag})
    assert resp.status_code == 413


def test_no_rate_limit_applies_to_a_poll(app):
    """Why the short way may run before Flask-Limiter's hook: neither poll has a limit
    of its own, and the app sets none on every route (with one, it runs after the
    limiter's hook: idle_polls.init_app)."""
    from backoffice.extensions import limiter
    from backoffice.idle_polls import _CHECKS, _short_way

    assert not app.config.get("RATELIMIT_DEFAULT")
    assert not app.config.get("RATELIMIT_APPLICATION")
    assert set(_CHECKS) == {"portal.ticket_messages", "ticket_desk.poll"}
    for endpoint in _CHECKS:
        view = app.view_functions[endpoint]
        blueprint = endpoint.rsplit(".", 1)[0]
        with app.test_request_context():
            limits = limiter.limit_manager.resolve_limits(
                app, endpoint, blueprint, f"{view.__module__}.{view.__qualname__}"
            )
        assert limits == ([], []), endpoint
    hooks = app.before_request_funcs[None]
    assert _short_way in hooks[:2]  # first (the tests' own reset of `g` may precede it)


def test_the_short_way_runs_after_the_limiter_when_every_route_is_limited(database_url):
    from backoffice import create_app
    from backoffice.extensions import limiter
    from backoffice.idle_polls import _short_way

    app = create_app(
        {
            "ENV_NAME": "testing",
            "SQLALCHEMY_DATABASE_URI": database_url,
            "RATELIMIT_ENABLED": True,
            "RATELIMIT_DEFAULT": "1000 per minute",
        }
    )
    hooks = app.before_request_funcs[None]
    at = hooks.index(_short_way)
    assert any(getattr(f, "__self__", None) is limiter for f in hooks[:at])

"""Presence (issue 13 item 6) over HTTP: the desk's poll carries who else has the
ticket open and who is typing; both fade on their own."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from backoffice.domain import permissions as perm
from backoffice.models import TicketViewer

from .test_admin_desk import desk


def _poll(b, number, typing=False, etag=None):
    headers = {"If-None-Match": etag} if etag else {}
    return b.get(
        f"/admin/tickets/desk/{number}/poll",
        query_string={"after": 0, **({"typing": "1"} if typing else {})},
        headers=headers,
    )


def _age(db, user, **seconds):
    """Move `user`'s presence times back in time (instead of sleeping)."""
    db.session.expire_all()
    for row in db.session.scalars(select(TicketViewer).where(TicketViewer.user_id == user.id)):
        for name, back in seconds.items():
            setattr(row, name, getattr(row, name) - timedelta(seconds=back))
    db.session.commit()


def test_presence_appears_and_expires(login_as, make, db):
    t = make.ticket("team", department="OPS")
    db.session.commit()
    alice, _ = login_as(perm.CUSTOMER_SERVICE, name="Alice Agen", locale="en")
    sari, sari_user = login_as(perm.CUSTOMER_SERVICE, name="Sari", locale="en")
    first = _poll(alice, t.number)
    assert first.get_json()["presence"] == ""
    # Sari opens the desk: Alice's next poll names her, and the ETag changed with it.
    html = sari.get(desk(t.number)).get_data(as_text=True)
    assert 'id="desk-presence"' in html
    resp = _poll(alice, t.number, etag=first.headers["ETag"])
    assert resp.status_code == 200 and resp.get_json()["presence"] == "Also viewing: Sari"
    assert _poll(alice, t.number, etag=resp.headers["ETag"]).status_code == 304
    # Sari types: "Sari is replying…"; Alice sees it on the desk page too.
    _poll(sari, t.number, typing=True)
    assert _poll(alice, t.number).get_json()["presence"] == "Sari is replying…"
    assert "Sari is replying…" in alice.get(desk(t.number)).get_data(as_text=True)
    # Nobody sees themselves.
    assert "Sari" not in _poll(sari, t.number).get_json()["presence"]
    # Typing fades after 15 s, viewing after 30 s without a poll.
    _age(db, sari_user, typing_at=16)
    assert _poll(alice, t.number).get_json()["presence"] == "Also viewing: Sari"
    _age(db, sari_user, seen_at=31)
    assert _poll(alice, t.number).get_json()["presence"] == ""


def test_presence_in_indonesian_and_for_two_people(login_as, make, db):
    t = make.ticket("team")
    db.session.commit()
    alice, _ = login_as(perm.CUSTOMER_SERVICE, locale="id")
    sari, _ = login_as(perm.CUSTOMER_SERVICE, name="Sari", locale="id")
    budi, _ = login_as(perm.CUSTOMER_SERVICE, name="Budi", locale="id")
    _poll(sari, t.number, typing=True)
    _poll(budi, t.number)
    assert _poll(alice, t.number).get_json()["presence"] == (
        "Sari sedang membalas… · Juga melihat: Budi"
    )


def test_nobody_outside_the_scope_can_poll_or_appear(login_as, make, db):
    t = make.ticket("team", department="OPS")
    db.session.commit()
    ops, _ = login_as(perm.ADMIN_DEPARTMENT, department="OPS", locale="en")
    claims, _ = login_as(perm.ADMIN_DEPARTMENT, department="CLAIMS", name="Citra")
    assert _poll(claims, t.number, typing=True).status_code == 404
    assert _poll(ops, t.number).get_json()["presence"] == ""
    anonymous = ops.client.application.test_client()
    assert anonymous.get(f"/admin/tickets/desk/{t.number}/poll").status_code == 302

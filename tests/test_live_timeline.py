"""The live timeline (issue 10 item 6): an open desk and an open chat learn of a tracking
event, or a situation change, of their ticket's parcel through their poll — the ETag
changes, the answer carries the new timeline and badge, and an unchanged parcel is
still a 304 read in the statements of tests/test_request_budgets.py."""

from __future__ import annotations

from datetime import timedelta

from backoffice.domain import permissions as perm
from backoffice.domain import shipments
from backoffice.domain.shipments import EventIn
from backoffice.models import TrackingSource
from backoffice.models.base import utcnow

from .test_request_budgets import DESK_POLL_304, PORTAL_POLL_304, fresh_count


def _event(db, order, kind, place, ago=timedelta(minutes=5)):
    now = utcnow()
    shipments.record_events(
        [EventIn(order.resi, kind, now - ago, place)], source=TrackingSource.API, now=now
    )
    db.session.commit()


def _parcel_ticket(make, db, customer):
    order = make.order(customer)
    _event(db, order, "picked_up", "Hub Cakung, Jakarta", ago=timedelta(hours=3))
    ticket = make.ticket("team", customer=customer, order=order)
    db.session.commit()
    return order, ticket.number


def _chat_poll(b, number, etag=None):
    return b.get(
        f"/tickets/{number}/messages",
        headers={"Accept": "application/json", **({"If-None-Match": etag} if etag else {})},
    )


def _desk_poll(b, number, etag=None):
    return b.get(
        f"/admin/tickets/desk/{number}/poll",
        query_string={"after": 0},
        headers={"If-None-Match": etag} if etag else {},
    )


def test_an_open_chat_sees_a_new_tracking_event(login_as, make, db):
    b, me = login_as(perm.CUSTOMER, locale="en")
    order, number = _parcel_ticket(make, db, me)
    page = b.get(f"/tickets/{number}").get_data(as_text=True)
    first = _chat_poll(b, number)
    etag = first.headers["ETag"]
    assert f'data-etag="{etag}"' in page.replace("&#34;", '"')  # the page and its poll agree
    assert _chat_poll(b, number, etag).status_code == 304

    _event(db, order, "at_hub", "Hub Pasir Koja, Bandung")
    resp = _chat_poll(b, number, etag)
    assert resp.status_code == 200 and resp.headers["ETag"] != etag
    data = resp.get_json()
    assert "Hub Pasir Koja, Bandung" in data["parcel_html"]
    assert "Hub Cakung, Jakarta" in data["parcel_html"]  # the whole timeline, redrawn
    assert data["messages"] == [] or all(m["id"] for m in data["messages"])
    assert _chat_poll(b, number, resp.headers["ETag"]).status_code == 304


def test_a_failed_delivery_changes_the_chat_badge(login_as, make, db):
    b, me = login_as(perm.CUSTOMER, locale="en")
    order, number = _parcel_ticket(make, db, me)
    etag = _chat_poll(b, number).headers["ETag"]
    _event(db, order, "delivery_failed", "Bandung")
    data = _chat_poll(b, number, etag).get_json()
    assert "situation-failed_delivery" in data["situation_html"]
    assert "Delivery failed" in data["parcel_html"]


def test_an_open_desk_sees_a_new_tracking_event_and_the_situation(login_as, make, db):
    cs, _staff = login_as(perm.CUSTOMER_SERVICE, locale="en")
    customer = make.user()
    order, number = _parcel_ticket(make, db, customer)
    desk = cs.get(f"/admin/tickets/desk/{number}/").get_data(as_text=True)
    assert 'id="desk-situation"' in desk and 'id="tracking-timeline"' in desk
    etag = _desk_poll(cs, number).headers["ETag"]
    assert _desk_poll(cs, number, etag).status_code == 304

    _event(db, order, "delivery_failed", "Hub Pasir Koja, Bandung")
    resp = _desk_poll(cs, number, etag)
    assert resp.status_code == 200
    data = resp.get_json()
    assert data["tracking_html"].startswith('<div class="tracking-admin" id="tracking-timeline">')
    assert "Hub Pasir Koja, Bandung" in data["tracking_html"]
    assert "situation-failed_delivery" in data["situation_html"]
    assert _desk_poll(cs, number, resp.headers["ETag"]).status_code == 304


def test_a_polled_parcel_costs_no_statement_more(login_as, make, db):
    b, me = login_as(perm.CUSTOMER, locale="en")
    _order, number = _parcel_ticket(make, db, me)
    etag = _chat_poll(b, number).headers["ETag"]
    resp, n = fresh_count(db, lambda: _chat_poll(b, number, etag))
    assert resp.status_code == 304 and n == PORTAL_POLL_304

    cs, _staff = login_as(perm.CUSTOMER_SERVICE, locale="en")
    etag = _desk_poll(cs, number).headers["ETag"]
    resp, n = fresh_count(db, lambda: _desk_poll(cs, number, etag))
    assert resp.status_code == 304 and n == DESK_POLL_304


def test_a_ticket_without_a_parcel_answers_its_badge_only(login_as, make, db):
    b, me = login_as(perm.CUSTOMER, locale="en")
    number = make.ticket("team", customer=me).number
    db.session.commit()
    data = _chat_poll(b, number).get_json()
    assert data["situation_html"] == "" and "parcel_html" not in data

"""Cancelling an order (issue 10 item 2): the cancellation is the parcel's `cancelled`
tracking event, written through the shipments rule with the status following it, once
however often it is asked for; the customer may cancel their own order before pickup,
customer service also after it; the operations feed cannot cancel."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from backoffice.domain import DomainError, PermissionDenied, shipments
from backoffice.domain import orders as order_rules
from backoffice.domain import permissions as perm
from backoffice.domain.shipments import EventIn
from backoffice.models import (
    OrderEvent,
    OrderStatus,
    TicketKind,
    TrackingEvent,
    TrackingEventKind,
    TrackingSource,
)
from backoffice.models.base import utcnow

from .admin_support import flashes
from .portal_support import text
from .test_live_timeline import _chat_poll, _desk_poll
from .test_tracking import english

K = TrackingEventKind
PERSONAL = ("Siti Rahmawati", "Budi Penerima", "0812 9999 1111", "Jl. Kenanga", "Jl. Dago")


def _order(make, customer=None):
    return make.order(
        customer or make.user(name="Siti Rahmawati"),
        origin="Jl. Kenanga 5, Jakarta",
        destination="Jl. Dago 9, Bandung",
        receiver_name="Budi Penerima",
        receiver_phone="0812 9999 1111",
    )


def _cancelled_events(db, order) -> int:
    return db.session.scalar(
        select(func.count())
        .select_from(TrackingEvent)
        .where(TrackingEvent.order_id == order.id, TrackingEvent.event == K.CANCELLED)
    )


def _pick_up(db, order, ago=timedelta(hours=1)):
    now = utcnow()
    shipments.record_events(
        [EventIn(order.resi, "picked_up", now - ago, "Jakarta")], source=TrackingSource.API, now=now
    )
    db.session.commit()


def test_staff_cancel_records_the_event_and_the_status_follows(app, make, db):
    order = _order(make)
    staff = make.user(perm.CUSTOMER_SERVICE)
    event = order_rules.change_status(order, OrderStatus.CANCELLED, staff, note="Dobel order")
    db.session.commit()
    assert event.from_status is OrderStatus.PLACED and event.note == "Dobel order"
    assert order.status is OrderStatus.CANCELLED and order.last_event is K.CANCELLED
    (tracked,) = shipments.timeline(order)
    assert tracked.event is K.CANCELLED and tracked.source is TrackingSource.STAFF
    assert tracked.actor_id == staff.id and tracked.note == "" and tracked.location == ""
    assert shipments.shipment(order).late is False
    # Again, by the status form or the operation itself: refused or nothing, never a second.
    with english(app), pytest.raises(DomainError, match="cancelled already"):
        order_rules.change_status(order, OrderStatus.CANCELLED, staff)
    assert order_rules.cancel(order, staff) is None
    db.session.commit()
    assert _cancelled_events(db, order) == 1
    assert (
        db.session.scalar(
            select(func.count()).select_from(OrderEvent).where(OrderEvent.order_id == order.id)
        )
        == 2
    )  # placed, cancelled


def test_a_cancellation_after_a_later_scan_is_still_the_latest(make, db):
    order = _order(make)
    staff = make.user(perm.CUSTOMER_SERVICE)
    now = utcnow().replace(microsecond=0)
    # A scanner whose clock runs 30 minutes ahead (FUTURE_SLACK lets it in).
    shipments.record_events(
        [EventIn(order.resi, "picked_up", now + timedelta(minutes=30), "Jakarta")],
        source=TrackingSource.API,
        now=now,
    )
    order_rules.cancel(order, staff, now=now)
    db.session.commit()
    assert order.status is OrderStatus.CANCELLED and order.last_event is K.CANCELLED
    assert [e.event for e in shipments.timeline(order)] == [K.PICKED_UP, K.CANCELLED]


def test_the_customer_cancels_their_placed_order_on_its_page(login_as, make, db, client):
    b, me = login_as(perm.CUSTOMER, locale="en", name="Siti Rahmawati")
    order = _order(make, me)
    db.session.commit()
    url = f"/orders/{order.number}"
    page = text(b.get(url))
    assert "Cancel this order" in page and f"Yes, cancel order {order.number}" in page
    # Without the form's CSRF token nothing happens.
    resp = b.post(f"{url}/cancel", {}, csrf=False)
    assert resp.status_code in (302, 400)
    db.session.expire_all()
    assert order.status is OrderStatus.PLACED and _cancelled_events(db, order) == 0

    resp = b.post(f"{url}/cancel", {"reason": "Salah alamat"}, form_url=url)
    assert resp.status_code == 302 and resp.headers["Location"].endswith(url)
    page = text(b.get(url))
    assert f"Order {order.number} is cancelled" in flashes(page)
    assert "Order cancelled" in page and "Cancel this order" not in page
    db.session.expire_all()
    assert order.status is OrderStatus.CANCELLED
    (tracked,) = shipments.timeline(order)
    assert tracked.source is TrackingSource.CUSTOMER and tracked.actor_id == me.id
    assert order.events[-1].note == "Salah alamat" and order.events[-1].actor_id == me.id

    # A second press (a stale page, a double click): told, and still one event.
    b.post(f"{url}/cancel", {}, form_url="/orders")
    assert "cancelled already" in flashes(text(b.get(url)))
    assert _cancelled_events(db, order) == 1

    # The public page shows the cancellation, and still nothing personal.
    public = text(client.get(f"/track/{order.resi}", headers={"Accept-Language": "en"}))
    assert "Order cancelled" in public and order.resi in public
    for secret in (*PERSONAL, me.email, order.number, "Salah alamat"):
        assert secret not in public, secret


def test_the_customer_cannot_cancel_after_pickup(app, login_as, make, db):
    b, me = login_as(perm.CUSTOMER, locale="en")
    order = _order(make, me)
    db.session.commit()
    _pick_up(db, order)
    url = f"/orders/{order.number}"
    assert "Cancel this order" not in text(b.get(url))
    resp = b.post(f"{url}/cancel", {}, form_url=url)
    assert resp.status_code == 302
    assert "can cancel only before pickup" in flashes(text(b.get(url)))
    db.session.expire_all()
    assert order.status is OrderStatus.PICKED_UP and _cancelled_events(db, order) == 0
    with english(app), pytest.raises(DomainError, match="before pickup"):
        order_rules.cancel(order, me)
    db.session.rollback()
    # Customer service still can (the parcel is stopped and sent back by hand).
    order_rules.cancel(order, make.user(perm.CUSTOMER_SERVICE))
    db.session.commit()
    assert order.status is OrderStatus.CANCELLED and _cancelled_events(db, order) == 1


def test_a_customer_cannot_cancel_another_customers_order(login_as, make, db):
    b, me = login_as(perm.CUSTOMER, locale="en")
    theirs = _order(make)
    db.session.commit()
    resp = b.post(f"/orders/{theirs.number}/cancel", {}, form_url="/orders")
    assert resp.status_code == 404
    with pytest.raises(PermissionDenied):
        order_rules.cancel(theirs, me)
    db.session.rollback()
    db.session.expire_all()
    assert theirs.status is OrderStatus.PLACED and _cancelled_events(db, theirs) == 0
    # Department admins have no order permission either.
    with pytest.raises(PermissionDenied):
        order_rules.cancel(theirs, make.user(perm.ADMIN_DEPARTMENT))


@pytest.mark.parametrize(
    "path, data",
    [
        ("/orders/ORD-2026-000001/cancel", {}),  # no such order
        ("/orders/nonsense/cancel", {}),
        ("/orders/{number}/cancel", {"reason": "x" * 501}),
        ("/orders/{number}/cancel", {"reason": "\x00<script>x</script>"}),
    ],
)
def test_bad_input_never_500s_and_changes_nothing(login_as, make, db, path, data):
    b, me = login_as(perm.CUSTOMER, locale="en")
    order = _order(make, me)
    db.session.commit()
    resp = b.post(path.format(number=order.number), data, form_url="/orders")
    assert resp.status_code in (302, 400, 404)
    db.session.expire_all()
    if len(data.get("reason", "")) > 500:
        assert order.status is OrderStatus.PLACED and _cancelled_events(db, order) == 0
    assert _cancelled_events(db, order) <= 1


def test_staff_cancel_on_the_order_page(login_as, make, db):
    b, _staff = login_as(perm.CUSTOMER_SERVICE, locale="en")
    order = _order(make)
    db.session.commit()
    url = f"/admin/orders/details/?id={order.id}"
    status_url = f"/admin/orders/status/?id={order.id}"
    resp = b.post(status_url, {"seen": "placed", "to": "cancelled"}, form_url=url)
    assert resp.status_code == 302
    page = b.get(url).get_data(as_text=True)
    assert "is now Cancelled" in flashes(page) and "Order cancelled" in page
    # The event form offers no cancellation, and a forged one is refused with why.
    event_form = page.split('action="/admin/orders/event/', 1)[1].split("</form>", 1)[0]
    assert 'value="cancelled"' not in event_form
    assert _cancelled_events(db, order) == 1


def test_the_feed_cannot_cancel(app, make, db):
    order = _order(make)
    now = utcnow()
    with english(app):
        (result,) = shipments.record_events(
            [EventIn(order.resi, " Cancelled ", now)], source=TrackingSource.API, now=now
        )
        assert result.outcome == "refused" and "cancelled in carebox" in result.reason
        with pytest.raises(DomainError, match="cancelled in carebox"):
            shipments.add_event(order, "cancelled", make.user(perm.CUSTOMER_SERVICE))
    db.session.rollback()
    assert order.status is OrderStatus.PLACED and _cancelled_events(db, order) == 0


def test_open_chat_and_desk_learn_of_the_cancellation(login_as, make, db):
    b, me = login_as(perm.CUSTOMER, locale="en")
    cs, staff = login_as(perm.CUSTOMER_SERVICE, locale="en")
    order = make.order(me)
    number = make.ticket("team", customer=me, order=order).number
    db.session.commit()
    chat_etag = _chat_poll(b, number).headers["ETag"]
    desk_etag = _desk_poll(cs, number).headers["ETag"]
    order_rules.cancel(order, staff)
    db.session.commit()
    chat = _chat_poll(b, number, chat_etag)
    assert chat.status_code == 200 and chat.headers["ETag"] != chat_etag
    assert "Order cancelled" in chat.get_json()["parcel_html"]
    desk = _desk_poll(cs, number, desk_etag)
    assert desk.status_code == 200 and "Order cancelled" in desk.get_json()["tracking_html"]


def test_a_cancelled_parcels_situation_ends(make, db):
    customer = make.user()
    order = make.order(customer)
    _pick_up(db, order, ago=timedelta(days=10))  # stuck and late
    ticket = make.ticket("team", customer=customer, kind=TicketKind.COMPLAINT, order=order)
    db.session.commit()
    assert ticket.situation is not None
    order_rules.cancel(order, make.user(perm.CUSTOMER_SERVICE))
    db.session.commit()
    db.session.refresh(ticket)
    assert ticket.situation is None


def test_two_cancellations_at_once_record_one_event(app, make, db):
    if db.engine.dialect.name != "mysql":
        pytest.skip("two writers at once need MariaDB")
    customer = make.user()
    order = make.order(customer)
    staff = [make.user(perm.CUSTOMER_SERVICE) for _ in range(2)]
    db.session.commit()
    ids = (order.id, [s.id for s in staff])
    outcomes, barrier = [], threading.Barrier(2)

    def cancel(staff_id):
        with app.app_context():
            from backoffice.extensions import db as tdb
            from backoffice.models import Order, User

            mine = tdb.session.get(Order, ids[0])
            who = tdb.session.get(User, staff_id)
            barrier.wait()
            outcomes.append(order_rules.cancel(mine, who) is not None)
            tdb.session.commit()
            tdb.session.remove()

    threads = [threading.Thread(target=cancel, args=(sid,)) for sid in ids[1]]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == [False, True]
    db.session.commit()  # our snapshot predates theirs
    assert order.status is OrderStatus.CANCELLED and _cancelled_events(db, order) == 1

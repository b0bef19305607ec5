"""Tracking events: appended once, never edited; the order's status follows the latest
event; every refusal carries its reason; staff status changes are events too."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime, timedelta

import flask_babel
import pytest
import sqlalchemy as sa
from sqlalchemy import func, select

from backoffice.domain import DomainError, PermissionDenied, shipments
from backoffice.domain import orders as order_rules
from backoffice.domain import permissions as perm
from backoffice.domain.shipments import EventIn, record_events
from backoffice.models import OrderStatus, TrackingEvent, TrackingEventKind, TrackingSource

NOW = datetime(2026, 12, 1, 12, 0, 0)


@contextmanager
def english(app):
    with app.test_request_context(headers={"Accept-Language": "en"}):
        flask_babel.refresh()
        yield
    flask_babel.refresh()


K = TrackingEventKind


def _events(order):
    return shipments.timeline(order)


def _record(*items, now=NOW):
    return record_events(list(items), source=TrackingSource.IMPORT, now=now)


def test_events_append_and_status_follows_the_latest(make, db):
    order = make.order()
    r = order.resi
    results = _record(
        EventIn(r, "picked_up", "2026-11-30T08:00:00+07:00", "Jakarta"),
        EventIn(r, "at_hub", "2026-11-30T15:00:00+07:00", "Hub Cakung, Jakarta"),
        EventIn(r, "out_for_delivery", "2026-12-01T08:30:00+07:00", "Bandung"),
    )
    assert [x.outcome for x in results] == ["inserted"] * 3
    db.session.commit()
    assert order.status is OrderStatus.IN_TRANSIT
    assert order.last_event is K.OUT_FOR_DELIVERY
    assert order.last_event_at == datetime(2026, 12, 1, 1, 30)  # stored in UTC
    events = _events(order)
    assert [e.event for e in events] == [K.PICKED_UP, K.AT_HUB, K.OUT_FOR_DELIVERY]
    assert events[0].utc_offset == 420 and events[0].location == "Jakarta"
    # An older event that arrives late joins the timeline but does not move the status back.
    late = _record(EventIn(r, "departed_hub", "2026-11-30T18:00:00+07:00", "Jakarta"))
    assert late[0].outcome == "inserted"
    db.session.commit()
    assert order.last_event is K.OUT_FOR_DELIVERY
    assert [e.event for e in _events(order)][2] == K.DEPARTED_HUB
    delivered = _record(EventIn(r, "DELIVERED", "2026-12-01T10:00:00Z", "Bandung"))
    assert delivered[0].outcome == "inserted"
    db.session.commit()
    assert order.status is OrderStatus.DELIVERED and order.last_event is K.DELIVERED
    assert shipments.timeline(order)[-1].utc_offset == 0


def test_the_same_event_twice_is_one_event(make, db):
    order = make.order()
    e = EventIn(order.resi, "at_hub", "2026-11-30T15:00:00+07:00", "Hub Cakung")
    same_moment_other_offset = EventIn(order.resi, "at_hub", "2026-11-30T08:00:00Z", "x")
    first = _record(e, e, same_moment_other_offset)
    assert [x.outcome for x in first] == ["inserted", "unchanged", "unchanged"]
    db.session.commit()
    again = _record(e)
    assert again[0].outcome == "unchanged"
    db.session.commit()
    count = db.session.scalar(select(func.count()).select_from(TrackingEvent))
    assert count == 1


def test_places_and_notes_are_stored_as_written(make, db):
    """Quotes, backslashes, percent signs and non-ASCII text reach the table unchanged
    (the batch insert writes its rows as literals on MariaDB), repeated ones too."""
    order = make.order()
    odd = ["O'Brien \\ Hub 100%", "50%s off; DROP TABLE x;--", 'Jl. "Merdeka" \\\'', "Bandung ☂"]
    items = [
        EventIn(order.resi, "at_hub", f"2026-11-{20 + n}T08:00:00+07:00", text, odd[-1 - n])
        for n, text in enumerate(odd)
    ]
    items.append(EventIn(order.resi, "departed_hub", "2026-11-24T08:00:00+07:00", odd[0], odd[0]))
    assert [r.outcome for r in _record(*items)] == ["inserted"] * 5
    db.session.commit()
    db.session.expire_all()
    stored = [(e.location, e.note) for e in _events(order)]
    assert stored == [(i.location, i.note) for i in items]
    assert [r.outcome for r in _record(*items)] == ["unchanged"] * 5


@pytest.mark.parametrize("isolation", ["REPEATABLE READ", "READ COMMITTED"])
def test_an_event_a_concurrent_batch_of_the_same_second_wrote_is_unchanged(make, db, isolation):
    """Another writer commits one of our events, stamped the same second, between our
    lookup and our insert: the result says which row this call wrote, per event (at
    READ COMMITTED a re-read by recorded_at would take the other's row for ours)."""
    if db.engine.dialect.name != "mysql":
        pytest.skip("a second writer during a transaction needs MariaDB")
    db.session.commit()
    first, second = make.order(), make.order()
    db.session.commit()
    first_id = first.id
    theirs = EventIn(first.resi, "at_hub", "2026-11-30T15:00:00+07:00")
    ours = EventIn(second.resi, "at_hub", "2026-11-30T15:00:00+07:00")
    db.session.commit()  # our batch starts a transaction of its own
    fired = []

    def other_writer(conn, cursor, statement, *args):
        # Our batch's first write (its claim of the orders): after it, our row locks
        # would make the other writer wait for our commit.
        if fired or not statement.startswith("UPDATE customer_order "):
            return
        fired.append(True)
        with db.engine.connect() as other:  # a second connection: a real concurrent commit
            other.execute(
                TrackingEvent.__table__.insert().values(
                    order_id=first_id,
                    event="at_hub",
                    occurred_at=datetime(2026, 11, 30, 8, 0),
                    utc_offset=420,
                    location="",
                    note="",
                    source="api",
                    recorded_at=NOW,
                )
            )
            other.commit()

    db.session.connection(execution_options={"isolation_level": isolation})
    sa.event.listen(db.engine, "before_cursor_execute", other_writer)
    try:
        results = _record(theirs, ours)
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", other_writer)
    assert fired
    assert [r.outcome for r in results] == ["unchanged", "inserted"]
    db.session.commit()
    count = db.session.scalar(select(func.count()).select_from(TrackingEvent))
    assert count == 2


@pytest.mark.parametrize(
    ("item", "reason"),
    [
        (EventIn("CB123456784ID", "at_hub", "2026-11-30T15:00:00+07:00"), "check digit"),
        (EventIn("hello", "at_hub", "2026-11-30T15:00:00+07:00"), "not a resi"),
        (EventIn("CB000000080ID", "at_hub", "2026-11-30T15:00:00+07:00"), "No parcel"),
        (EventIn("{resi}", "teleported", "2026-11-30T15:00:00+07:00"), "Unknown event"),
        (EventIn("{resi}", "at_hub", "30/11/2026 15:00"), "ISO 8601"),
        (EventIn("{resi}", "at_hub", ""), "ISO 8601"),
        (EventIn("{resi}", "at_hub", "2026-11-30T15:00:00+23:00"), "ISO 8601"),
        (EventIn("{resi}", "at_hub", "2027-01-01T00:00:00+07:00"), "future"),
        (EventIn("{resi}", "at_hub", "1999-12-31T00:00:00+07:00"), "before 2000"),
        (EventIn("{resi}", "at_hub", "2026-11-30T15:00:00+07:00", "x" * 121), "too long"),
        (EventIn("{resi}", "at_hub", "2026-11-30T15:00:00+07:00", "", "n" * 501), "too long"),
    ],
)
def test_refused_events_say_why_and_do_not_stop_the_others(app, make, db, item, reason):
    order = make.order()
    item.resi = item.resi.replace("{resi}", order.resi)
    good = EventIn(order.resi, "picked_up", "2026-11-30T08:00:00+07:00", "Jakarta")
    with english(app):
        results = _record(good, item)
    assert results[0].outcome == "inserted"
    assert results[1].outcome == "refused" and reason in results[1].reason
    db.session.commit()
    assert [e.event for e in _events(order)] == [K.PICKED_UP]


def test_a_cancelled_order_takes_no_events(make, db):
    order = make.order()
    staff = make.user(perm.CUSTOMER_SERVICE)
    order_rules.change_status(order, OrderStatus.CANCELLED, staff)
    result = _record(EventIn(order.resi, "at_hub", "2026-11-30T15:00:00+07:00"))[0]
    assert result.outcome == "refused"
    assert order.status is OrderStatus.CANCELLED


def test_events_are_never_edited(make, db):
    order = make.order()
    _record(EventIn(order.resi, "at_hub", "2026-11-30T15:00:00+07:00", "Hub"))
    db.session.commit()
    event = _events(order)[0]
    event.location = "elsewhere"
    with pytest.raises(RuntimeError, match="never edited"):
        db.session.flush()
    db.session.rollback()


def test_staff_status_changes_are_tracking_events(make, db):
    order = make.order()
    staff = make.user(perm.CUSTOMER_SERVICE)
    t0 = NOW - timedelta(hours=5)
    order_rules.change_status(order, OrderStatus.PICKED_UP, staff, now=t0)
    order_rules.change_status(order, OrderStatus.IN_TRANSIT, staff, now=t0 + timedelta(hours=1))
    order_rules.change_status(order, OrderStatus.DELIVERED, staff, now=t0 + timedelta(hours=2))
    db.session.commit()
    events = _events(order)
    assert [e.event for e in events] == [K.PICKED_UP, K.DEPARTED_HUB, K.DELIVERED]
    assert all(e.source is TrackingSource.STAFF and e.actor_id == staff.id for e in events)
    assert order.status is OrderStatus.DELIVERED and order.last_event is K.DELIVERED


def test_staff_add_an_event_by_hand_only_with_the_order_permission(make, db):
    order = make.order()
    for role in (perm.MASTER_ADMIN, perm.CUSTOMER_SERVICE):
        staff = make.user(role)
        at = NOW - timedelta(hours=3 if role == perm.MASTER_ADMIN else 2)
        result = shipments.add_event(order, "at_hub", staff, occurred_at=at, location="Hub")
        assert result.outcome == "inserted"
    for role in (perm.ADMIN_DEPARTMENT, perm.CUSTOMER):
        with pytest.raises(PermissionDenied):
            shipments.add_event(order, "at_hub", make.user(role), occurred_at=NOW)
    with pytest.raises(DomainError):  # the very same event again
        shipments.add_event(order, "at_hub", make.user(perm.MASTER_ADMIN), occurred_at=at)
    assert len(_events(order)) == 2


def test_latest_status_text(app, make, db):
    order = make.order()
    with english(app):
        assert shipments.latest_status_text(order.resi) == "Placed"
        _record(EventIn(order.resi, "out_for_delivery", "2026-12-01T08:30:00+07:00", "Bandung"))
        text = shipments.latest_status_text(order.resi.lower())
        assert text == "Out for delivery, Bandung (01 Dec 2026 08:30 WIB)"
        assert shipments.latest_status_text("CB000000080ID") is None
        assert shipments.latest_status_text("CB123456784ID") is None
        assert shipments.latest_status_text(None) is None


def test_stuck_parcels_are_found_through_the_index(make, db):
    moving, quiet, fresh = make.order(), make.order(), make.order()
    _record(EventIn(quiet.resi, "at_hub", "2026-11-25T10:00:00+07:00"))
    _record(EventIn(moving.resi, "at_hub", "2026-11-30T10:00:00+07:00"))
    db.session.commit()
    stuck = db.session.scalars(shipments.stuck_orders(3, now=NOW)).all()
    assert [o.id for o in stuck] == [quiet.id]
    assert fresh not in stuck
    stmt = shipments.stuck_orders(3, now=NOW)
    compiled = stmt.compile(db.engine, compile_kwargs={"literal_binds": True})
    with db.engine.connect() as conn:
        if db.engine.dialect.name == "sqlite":
            plan = " ".join(str(r) for r in conn.execute(sa.text(f"EXPLAIN QUERY PLAN {compiled}")))
        else:
            plan = " ".join(str(r) for r in conn.execute(sa.text(f"EXPLAIN {compiled}")))
    assert "ix_order_status_last_event" in plan


def test_promised_date_and_late(make, db):
    order = make.order(product="REG")  # 2-3 days
    _record(EventIn(order.resi, "picked_up", "2026-11-20T09:00:00+07:00", "Jakarta"))
    view = shipments.shipment(order, now=NOW)
    assert str(view.promised) == "2026-11-23"
    assert view.late and not view.delivered
    _record(EventIn(order.resi, "delivered", "2026-11-22T09:00:00+07:00", "Bandung"))
    view = shipments.shipment(order, now=NOW)
    assert view.delivered and not view.late


def test_seed_demo_gives_the_demo_parcels_their_timelines(runner, client, db):
    import re

    from backoffice.cli import seed_command
    from backoffice.models import Order

    result = runner.invoke(seed_command, ["--demo"])
    assert result.exit_code == 0, result.output
    resis = re.findall(r"^  (CB\d{9}ID)  (.+)$", result.output, re.M)
    assert [what for _r, what in resis] == [
        "late, stuck at Hub Bandung",
        "delivered",
        "delivery failed",
        "on its way, on time",
    ]
    count = db.session.scalar(select(func.count()).select_from(TrackingEvent))
    again = runner.invoke(seed_command, ["--demo"])
    assert again.exit_code == 0
    assert db.session.scalar(select(func.count()).select_from(TrackingEvent)) == count == 15
    late = db.session.scalar(select(Order).where(Order.resi == resis[0][0]))
    view = shipments.shipment(late)
    assert view.late and late.last_event is K.AT_HUB
    assert late in db.session.scalars(shipments.stuck_orders(3)).all()
    failed = db.session.scalar(select(Order).where(Order.resi == resis[2][0]))
    assert failed.last_event is K.DELIVERY_FAILED
    page = client.get(f"/track/{resis[0][0]}", headers={"Accept-Language": "en"})
    assert page.status_code == 200 and "Hub Bandung" in page.get_data(as_text=True)


def test_staff_add_an_event_on_the_order_page(login_as, make, db):
    from .admin_support import flashes

    order = make.order()
    db.session.commit()
    b, user = login_as(perm.CUSTOMER_SERVICE, locale="en")
    url = f"/admin/orders/details/?id={order.id}"
    page = b.get(url).get_data(as_text=True)
    assert 'id="event-form"' in page and 'value="out_for_delivery"' in page
    event_url = f"/admin/orders/event/?id={order.id}"
    data = {"event": "at_hub", "occurred_at": "2026-11-30 15:00", "location": "Hub Bandung"}
    resp = b.post(event_url, data, form_url=url)
    assert resp.status_code == 302
    page = b.get(url).get_data(as_text=True)
    assert "added to the parcel" in flashes(page)
    assert "Hub Bandung" in page and "30 Nov 2026 15:00 WIB" in page
    db.session.expire_all()
    assert order.last_event is K.AT_HUB and order.status is OrderStatus.IN_TRANSIT
    assert shipments.timeline(order)[0].actor_id == user.id
    # The same event again, and a bad time: refused in words, nothing added.
    b.post(event_url, data, form_url=url)
    assert "already in the parcel" in flashes(b.get(url).get_data(as_text=True))
    b.post(event_url, {**data, "occurred_at": "kemarin"}, form_url=url)
    assert "ISO 8601" in flashes(b.get(url).get_data(as_text=True))
    assert len(shipments.timeline(order)) == 1


@pytest.mark.parametrize("role", [perm.ADMIN_DEPARTMENT, perm.CUSTOMER])
def test_others_cannot_add_events(login_as, make, db, role):
    order = make.order()
    db.session.commit()
    b, _user = login_as(role)
    resp = b.post(
        f"/admin/orders/event/?id={order.id}",
        {"event": "at_hub", "location": "x"},
        form_url="/" if role == perm.CUSTOMER else "/admin/",
    )
    assert resp.status_code in (403, 404)
    assert shipments.timeline(order) == []


@pytest.mark.parametrize(
    ("kind", "age", "warrants"),
    [
        (K.OUT_FOR_DELIVERY, timedelta(hours=1), True),
        (K.DELIVERED, timedelta(hours=1), True),
        (K.DELIVERY_FAILED, timedelta(days=1), True),
        ("delivered", timedelta(0), True),
        (K.DELIVERED, timedelta(days=3), False),  # history, not news
        (K.PICKED_UP, timedelta(0), False),
        (K.AT_HUB, timedelta(0), False),
        (K.DEPARTED_HUB, timedelta(0), False),
        (K.RETURNED, timedelta(0), False),
        (K.ON_HOLD, timedelta(0), False),
        ("no_such_event", timedelta(0), False),
    ],
)
def test_which_events_warrant_a_customer_notification(kind, age, warrants):
    assert shipments.warrants_customer_notification(kind, NOW - age, now=NOW) is warrants


@pytest.mark.parametrize("locale", ["id", "en"])
def test_an_events_local_time_reads_as_babels(app, locale):
    """shipments.local_time (one a scan on every timeline) gives exactly Babel's text of
    LOCAL_TIME_PATTERN: every month's abbreviation, years, month ends, each zone."""
    import random

    rng = random.Random(10)
    start = datetime(1999, 12, 31, 16, 59)
    moments = [datetime(2026, month, 28, 23, 59) for month in range(1, 13)]
    moments += [start + timedelta(minutes=rng.randrange(60 * 24 * 366 * 40)) for _ in range(500)]
    offsets = [420, 480, 540, 0, -150, 345]
    with app.test_request_context("/track"), flask_babel.force_locale(locale):
        for at in moments:
            for offset in offsets:
                local = at + timedelta(minutes=offset)
                babel = flask_babel.format_datetime(
                    local, shipments.LOCAL_TIME_PATTERN, rebase=False
                )
                assert shipments.local_time(at, offset).rsplit(" ", 1)[0] == babel
    with app.test_request_context("/track"), flask_babel.force_locale("id"):
        assert shipments.local_time(datetime(2026, 12, 1, 7, 5), 420) == "01 Des 2026 14:05 WIB"


def test_an_odd_offset_reads_as_itself(app):
    with app.test_request_context("/track"):
        assert shipments.local_time(NOW, -90).endswith(" UTC-01:30")  # was UTC-02:30
        assert shipments.local_time(NOW, 345).endswith(" UTC+05:45")
        assert shipments.local_time(NOW, -150).endswith(" UTC-02:30")

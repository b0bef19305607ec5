"""Loyalty figures and segments on crafted customers, at each threshold."""

from __future__ import annotations

import contextlib
import threading
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from backoffice.domain import loyalty, tickets
from backoffice.domain import permissions as perm
from backoffice.domain.loyalty import Segment
from backoffice.models import CustomerProfile, OrderStatus, TicketKind

NOW = datetime(2026, 6, 1, 12, 0, 0)
# Small numbers so that each threshold is one order or one rupiah away.
SMALL = {
    "window_days": 365,
    "lost_after_days": 180,
    "at_risk_after_days": 60,
    "new_max_orders": 1,
    "loyal_min_orders": 4,
    "loyal_min_monetary": 400,
    "loyal_max_complaint_rate": 0.25,
    "potential_min_orders": 3,
    "potential_min_monetary": 300,
}


@pytest.fixture
def craft(db, make, app, monkeypatch):
    """craft(orders=[(days_ago, price)...], registered=days_ago, complaints=[days_ago...])."""
    monkeypatch.setitem(app.config, "CAREBOX_LOYALTY", SMALL)

    def _craft(orders=(), *, registered=400, complaints=(), ratings=(), cancelled=()):
        user = make.user()
        user.created_at = NOW - timedelta(days=registered)
        for days, price in orders:
            order = make.order(user)
            order.created_at, order.price = NOW - timedelta(days=days), Decimal(price)
        for days, price in cancelled:
            order = make.order(user)
            order.created_at, order.price = NOW - timedelta(days=days), Decimal(price)
            order.status = OrderStatus.CANCELLED
        for days in complaints:
            ticket = tickets.file_ticket(user, TicketKind.COMPLAINT, "Rusak", "Paket rusak")
            ticket.created_at = NOW - timedelta(days=days)
        for score in ratings:
            ticket = tickets.file_ticket(user, TicketKind.QUESTION, "Tanya", "Kapan?")
            ticket.rating = score
        db.session.flush()
        return user

    return _craft


def segments_after_refresh(db, users) -> list[str]:
    db.session.commit()
    loyalty.refresh_all(now=NOW)
    db.session.expire_all()
    return [db.session.get(CustomerProfile, u.id).segment for u in users]


def test_never_ordered_is_new_until_the_lost_threshold(db, craft):
    users = [craft(registered=179), craft(registered=180)]
    assert segments_after_refresh(db, users) == ["new", "lost"]


def test_recency_thresholds_lost_and_at_risk(db, craft):
    users = [
        craft([(180, 100), (181, 100)]),  # last order 180 days ago: lost
        craft([(179, 100), (200, 100)]),  # 179: at risk
        craft([(60, 100), (70, 100)]),  # 60: at risk
        craft([(59, 100), (70, 100)]),  # 59: recent again, 2 orders: active
    ]
    assert segments_after_refresh(db, users) == ["lost", "at_risk", "at_risk", "active"]


def test_frequency_and_value_thresholds(db, craft):
    users = [
        craft([(10, 100)]),  # one order: new
        craft([(10, 100), (20, 100)]),  # two small orders: active
        craft([(10, 100), (20, 100), (30, 50)]),  # three orders: potential loyal
        craft([(10, 150), (20, 150)]),  # 300 spent: potential loyal
        craft([(10, 150), (20, 149)]),  # 299 spent: active
        craft([(10, 100), (20, 100), (30, 100), (40, 100)]),  # 4 orders, 400: loyal
        craft([(10, 100), (20, 100), (30, 100), (40, 99)]),  # 399: potential loyal
    ]
    assert segments_after_refresh(db, users) == [
        "new",
        "active",
        "potential_loyal",
        "potential_loyal",
        "active",
        "loyal",
        "potential_loyal",
    ]


def test_complaint_rate_threshold_for_loyal(db, craft):
    four = [(10, 100), (20, 100), (30, 100), (40, 100)]
    users = [
        craft(four, complaints=[5]),  # 1 / 4 = 0.25: still loyal
        craft(four, complaints=[5, 6]),  # 0.5: potential loyal
        craft(four, complaints=[5, 6, 400]),  # the old complaint is outside the window
    ]
    assert segments_after_refresh(db, users) == ["loyal", "potential_loyal", "potential_loyal"]


def test_cancelled_and_old_orders_do_not_count(db, craft):
    users = [
        craft([(10, 100), (20, 100), (30, 100)], cancelled=[(40, 100)]),  # 3 orders
        craft([(10, 100), (400, 100), (500, 100), (600, 100)]),  # 1 order in the window
    ]
    assert segments_after_refresh(db, users) == ["potential_loyal", "new"]


def test_figures_of_one_customer(db, craft):
    user = craft(
        [(3, 120), (30, 80.5), (400, 999)],
        complaints=[1, 2],
        ratings=[5, 4, 4],
        cancelled=[(1, 1000)],
    )
    segments_after_refresh(db, [user])
    profile = db.session.get(CustomerProfile, user.id)
    assert profile.recency_days == 3
    assert profile.frequency == 2
    assert profile.monetary == Decimal("200.50")
    assert profile.complaint_rate == Decimal("1.0000")  # 2 complaints / 2 orders
    assert profile.avg_rating == Decimal("4.33")
    assert profile.refreshed_at == NOW


def test_complaint_rate_is_capped_and_zero_without_orders(db, craft):
    users = [craft([(3, 100)], complaints=[1, 2, 3]), craft(complaints=[1])]
    segments_after_refresh(db, users)
    rates = [db.session.get(CustomerProfile, u.id).complaint_rate for u in users]
    assert rates == [Decimal("1.0000"), Decimal("0.0000")]


def test_staff_get_no_profile_and_counts_are_reported(db, craft, make):
    make.user(perm.CUSTOMER_SERVICE)
    users = [craft(registered=10), craft([(10, 100)]), craft(registered=500)]
    db.session.commit()
    report = loyalty.refresh_all(now=NOW, batch=2)  # several batches
    assert report.customers == 3
    assert report.segments == {
        "new": 2,
        "active": 0,
        "potential_loyal": 0,
        "loyal": 0,
        "at_risk": 0,
        "lost": 1,
    }
    ids = set(db.session.scalars(select(CustomerProfile.user_id)))
    assert ids == {u.id for u in users}
    assert loyalty.segment_counts()["new"] == 2
    assert {u.id for u in db.session.scalars(loyalty.customers_in_segment(Segment.LOST))} == {
        users[2].id
    }


def test_placing_an_order_refreshes_that_customer(db, make):
    customer = make.user()
    make.order(customer)
    profile = db.session.get(CustomerProfile, customer.id)
    assert (profile.frequency, profile.recency_days, profile.segment) == (1, 0, "new")
    make.order(customer)
    db.session.refresh(profile)
    assert (profile.frequency, profile.segment) == (2, "active")


def test_default_thresholds_are_documented_and_overridable(app, monkeypatch):
    with app.app_context():
        assert loyalty.thresholds() == loyalty.DEFAULT_THRESHOLDS
        monkeypatch.setitem(app.config, "CAREBOX_LOYALTY", {"loyal_min_orders": 20})
        assert loyalty.thresholds()["loyal_min_orders"] == 20
        assert loyalty.thresholds()["lost_after_days"] == 180
    for key in loyalty.DEFAULT_THRESHOLDS:
        if key != "batch":
            assert key in loyalty.__doc__


def test_cli_loyalty_refresh(db, craft, runner):
    craft([(10, 100)])
    db.session.commit()
    result = runner.invoke(args=["loyalty", "refresh"])
    assert result.exit_code == 0, result.output
    assert "1 customers refreshed" in result.output
    assert "new" in result.output


def test_two_orders_of_one_customer_at_once_are_both_counted(db, app, make, monkeypatch):
    """Without the per-customer lock, both orders would be inserted before either refresh:
    on InnoDB the two INSERT … SELECT then deadlock, or plain reads miss the other order."""
    if db.engine.dialect.name == "sqlite":
        pytest.skip("SQLite serialises writers: two orders can never overlap there")
    from backoffice.domain.orders import place_order
    from backoffice.models import Product, User

    customer = make.user()
    make.order(customer)
    db.session.commit()
    customer_id, product_id = customer.id, make.product("REG").id
    real_refresh = loyalty.refresh_customer
    both_inserted = threading.Barrier(2, timeout=2)

    def refresh_once_both_inserted(user_id, now=None):
        with contextlib.suppress(threading.BrokenBarrierError):
            both_inserted.wait()  # only reachable by both if orders are not serialised
        real_refresh(user_id, now=now)

    monkeypatch.setattr(loyalty, "refresh_customer", refresh_once_both_inserted)
    errors = []

    def order():
        try:
            with app.app_context():
                place_order(
                    db.session.get(User, customer_id),
                    db.session.get(Product, product_id),
                    origin="Jakarta",
                    destination="Surabaya",
                    weight_kg="1",
                )
                db.session.commit()
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=order) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    db.session.commit()
    assert db.session.get(CustomerProfile, customer_id).frequency == 3

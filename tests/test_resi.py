"""The resi: UPU S10 check digits, typing forgiveness, finding resi in text, and
unique random resi for every order (also when two orders draw the same serial)."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from backoffice.domain import shipments
from backoffice.domain.shipments import (
    ResiCheck,
    check_digit,
    check_resi,
    find_resis,
    is_valid_resi,
    normalise_resi,
)
from backoffice.models import Order

# Published S10 numbers: the UPU/Wikipedia worked example (47312482 -> 9), a
# check of 11 (-> 5, serial 00000000 and the documented example), and of 10 (-> 0).
VALID = (
    "RR473124829GB",
    "EE473124829US",
    "CB123456785ID",
    "CB000000005ID",
    "CB000000080ID",
    "CP987654326ID",  # 236 mod 11 = 5 -> 6, worked by hand
)
# Each one digit or letter away from a valid one, or the wrong shape.
MISTYPED = ("RR473124828GB", "CB123456784ID", "CB123456758ID", "CB000000000ID", "CB000000085ID")
MALFORMED = (
    "",
    "CB12345678ID",  # eight digits
    "CB1234567855ID",  # ten digits
    "C1123456785ID",
    "CB123456785I",
    "ORD-2026-000001",
    "123456785",
    "CB12345678５ID",  # a full-width digit is not a digit of a resi
)


def test_check_digit_follows_s10():
    assert check_digit("47312482") == 9
    assert check_digit("12345678") == 5  # 11 -> 5
    assert check_digit("00000000") == 5
    assert check_digit("00000008") == 0  # 10 -> 0
    with pytest.raises(ValueError):
        check_digit("1234567")


@pytest.mark.parametrize("resi", VALID)
def test_valid_resi(resi):
    assert is_valid_resi(resi)
    assert check_resi(resi) is ResiCheck.VALID


@pytest.mark.parametrize("resi", MISTYPED)
def test_mistyped_resi_is_told_apart_from_no_resi(resi):
    assert not is_valid_resi(resi)
    assert check_resi(resi) is ResiCheck.MISTYPED


@pytest.mark.parametrize("text", MALFORMED)
def test_malformed_resi(text):
    assert not is_valid_resi(text)
    assert check_resi(text) is ResiCheck.MALFORMED


@pytest.mark.parametrize(
    "typed",
    [
        "cb123456785id",
        " CB 1234 5678 5 ID ",
        "CB-1234-5678-5-ID",
        "cb.12345678.5.id",
        "CB\u00a012345678\u20135ID",  # a no-break space and an en dash from a phone keyboard
        "\tCB123456785ID\n",
    ],
)
def test_normalise_forgives_how_people_type(typed):
    assert normalise_resi(typed) == "CB123456785ID"
    assert is_valid_resi(typed)


def test_normalise_of_nothing():
    assert normalise_resi(None) == ""
    assert normalise_resi("  ") == ""


def test_find_resis_in_free_text():
    text = (
        "Halo, paket saya resi cb 1234 5678 5 id belum sampai. Yang kedua CB000000080ID "
        "juga. Nomor order ORD-2026-000123, telepon 0812-3456-7890, salah ketik CB123456784ID, "
        "dan lagi CB123456785ID."
    )
    assert find_resis(text) == ["CB123456785ID", "CB000000080ID"]


def test_find_resis_needs_a_whole_resi():
    assert find_resis("XCB123456785ID") == []
    assert find_resis("CB123456785IDX") == []
    assert find_resis("CB1234567855ID") == []
    assert find_resis("") == []
    assert find_resis(None) == []
    assert find_resis("(CB123456785ID)") == ["CB123456785ID"]


def test_make_resi_always_valid():
    for serial in (0, 1, 8, 12345678, 99999999, 47312482):
        resi = shipments.make_resi(serial)
        assert len(resi) == 13 and resi.startswith("CB") and resi.endswith("ID")
        assert is_valid_resi(resi)


def test_messages_differ_for_mistyped_and_malformed(app):
    with app.test_request_context(headers={"Accept-Language": "en"}):
        mistyped = shipments.resi_message(ResiCheck.MISTYPED)
        malformed = shipments.resi_message(ResiCheck.MALFORMED)
    assert mistyped != malformed
    assert "check digit" in mistyped
    assert "CB123456785ID" in malformed


def test_every_order_gets_a_valid_unique_random_resi(make, db):
    customer = make.user()
    orders = [make.order(customer) for _ in range(12)]
    resis = [o.resi for o in orders]
    assert all(is_valid_resi(r) for r in resis)
    assert len(set(resis)) == len(resis)
    serials = sorted(int(r[2:10]) for r in resis)
    # Not a counter: twelve random serials of 10^8 are never twelve neighbours.
    assert serials[-1] - serials[0] > 1000
    db.session.commit()
    assert db.session.scalar(select(Order).where(Order.resi == resis[3])).id == orders[3].id
    assert shipments.find_order(resis[3]).id == orders[3].id


def test_prefix_comes_from_the_configuration(app, make, db):
    app.config["CAREBOX_RESI_PREFIX"] = "EA"
    try:
        order = make.order()
    finally:
        app.config.pop("CAREBOX_RESI_PREFIX")
    assert order.resi.startswith("EA") and is_valid_resi(order.resi)


def test_a_taken_serial_is_drawn_again(make, db, monkeypatch):
    first = make.order()
    db.session.commit()
    taken = int(first.resi[2:10])
    draws = iter([taken, taken, 4242])
    monkeypatch.setattr(shipments.resi.secrets, "randbelow", lambda n: next(draws))
    second = make.order(first.customer)
    assert second.resi == shipments.make_resi(4242)
    db.session.commit()


def test_unique_key_collision_retries_inside_the_transaction(make, db, monkeypatch):
    """The lookup misses a resi another transaction is inserting at the same moment; the
    unique key catches it, and the order is placed with a new draw, nothing else lost."""
    first = make.order()
    db.session.commit()
    taken = int(first.resi[2:10])
    draws = iter([taken, 777])
    monkeypatch.setattr(shipments.resi.secrets, "randbelow", lambda n: next(draws))
    real_scalar = db.session.scalar
    misses = {"left": 1}

    def blind_lookup(stmt, *args, **kwargs):
        # Only the first pre-insert lookup is blind (as if the other order were uncommitted).
        if misses["left"] and "customer_order.resi" in str(stmt):
            misses["left"] -= 1
            return None
        return real_scalar(stmt, *args, **kwargs)

    monkeypatch.setattr(db.session, "scalar", blind_lookup)
    customer = first.customer
    second = make.order(customer, notes="second")
    monkeypatch.undo()
    assert second.resi == shipments.make_resi(777)
    assert second.number.startswith("ORD-")
    db.session.commit()
    db.session.expire_all()
    assert db.session.get(Order, second.id).notes == "second"
    assert db.session.scalar(select(Order.id).where(Order.resi == first.resi)) == first.id


def test_concurrent_orders_drawing_the_same_serial_both_land(app, make, db, monkeypatch):
    """Two transactions draw the same serial at the same time: on a server database the
    second waits on the first's unique-key entry and draws again; neither fails."""
    if db.engine.dialect.name != "mysql":
        pytest.skip("SQLite runs one writer at a time: no two inserts overlap")
    customers = [make.user().id, make.user().id]
    db.session.commit()
    barrier = threading.Barrier(2)
    lock = threading.Lock()
    plan = {0: iter([31415926, 111]), 1: iter([31415926, 222])}
    local = threading.local()

    def draw(n):
        with lock:
            return next(plan[local.index])

    monkeypatch.setattr(shipments.resi.secrets, "randbelow", draw)
    results, errors = {}, []

    def place(index):
        local.index = index
        with app.app_context():
            from backoffice.extensions import db as _db
            from backoffice.models import User

            try:
                customer = _db.session.get(User, customers[index])
                barrier.wait(timeout=10)
                order = make.order(customer)
                _db.session.commit()
                results[index] = order.resi
            except Exception as exc:  # noqa: BLE001 - reported below
                errors.append(exc)
                _db.session.rollback()
            finally:
                _db.session.remove()

    threads = [threading.Thread(target=place, args=(i,)) for i in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert len(set(results.values())) == 2
    assert shipments.make_resi(31415926) in results.values()
    # The loser of the race drew again (its second serial), it did not fail.
    assert set(results.values()) & {shipments.make_resi(111), shipments.make_resi(222)}


def test_customer_and_staff_see_the_resi(login_as, make, db):
    from .portal_support import customer

    b, user = customer(login_as)
    order = make.order(user)
    db.session.commit()
    assert order.resi in b.get(f"/orders/{order.number}").get_data(as_text=True)
    assert order.resi in b.get("/orders").get_data(as_text=True)
    staff, _ = login_as("customer_service")
    page = staff.get(f"/admin/orders/details/?id={order.id}").get_data(as_text=True)
    assert order.resi in page
    listed = staff.get(f"/admin/orders/?search={order.resi}").get_data(as_text=True)
    assert order.number in listed


def test_placing_an_order_tells_its_resi(login_as, db):
    from .portal_support import customer, text

    b, user = customer(login_as)
    resp = b.post(
        "/orders/new",
        {
            "service": "REG",
            "origin": "Jl. Sudirman 1, Jakarta",
            "destination": "Jl. Asia Afrika 2, Bandung",
            "weight": "2",
            "receiver_name": "Budi",
            "receiver_phone": "+62 811 000 111",
        },
        follow_redirects=True,
    )
    order = db.session.scalar(select(Order).where(Order.customer_id == user.id))
    assert is_valid_resi(order.resi)
    assert f"Its resi (tracking number) is {order.resi}" in text(resp)

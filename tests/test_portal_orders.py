"""Orders on the portal: the tariff price before and after, validation, list, history."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select

from backoffice.domain import orders as order_rules
from backoffice.domain import permissions as perm
from backoffice.models import Order, OrderStatus

from .portal_support import customer, field_error, text

GOOD = {
    "service": "REG",
    "origin": "Jl. Merdeka 1, Jakarta",
    "destination": "Jl. Asia Afrika 8, Bandung",
    "weight": "2,5",
    "receiver_name": "Ani",
    "receiver_phone": "0812 3456 789",
    "notes": "Titip di satpam",
}


def _orders(db) -> int:
    return db.session.scalar(select(func.count()).select_from(Order))


def test_new_order_form_shows_tariffs(login_as, make):
    b, _user = customer(login_as, locale="id")
    page = text(b.get("/orders/new?service=EXPRESS"))
    express = make.product("EXPRESS")
    assert express.name_id in page
    assert 'data-per-kg="' in page and "portal-order.js" in page
    assert (
        '<option value="EXPRESS" ' in page and "selected" in page.split('value="EXPRESS"')[1][:200]
    )
    # Add-ons (kind: product) cannot be ordered as a service.
    assert 'value="INSURE' not in page and 'value="PACK' not in page


def test_preview_shows_the_tariff_price_and_saves_nothing(login_as, db, make):
    b, _user = customer(login_as, locale="id")
    resp = b.post("/orders/new", {**GOOD, "action": "preview"})
    assert resp.status_code == 200
    price = make.product("REG").price_for(Decimal("2.5"))  # 3 started kilograms
    assert price == Decimal("9000") + 3 * Decimal("8000")
    assert "Rp" in text(resp) and "33.000" in text(resp)  # Indonesian number format
    assert _orders(db) == 0
    b.post("/lang/en", {"next": "/"}, form_url="/")
    english = b.post("/orders/new", {**GOOD, "action": "preview"})
    assert "IDR" in text(english) and "33,000" in text(english)
    assert _orders(db) == 0


def test_placing_an_order_uses_the_tariff_and_shows_it_afterwards(login_as, db, make):
    b, user = customer(login_as, locale="id")
    resp = b.post("/orders/new", {**GOOD, "action": "place"}, form_url="/orders/new")
    assert resp.status_code == 302, text(resp)[-2000:]
    order = db.session.scalars(select(Order)).one()
    assert order.customer_id == user.id and order.weight_kg == Decimal("2.50")
    assert order.price == make.product("REG").price_for(Decimal("2.5"))
    assert resp.headers["Location"].endswith(f"/orders/{order.number}")
    page = text(b.get(f"/orders/{order.number}"))
    assert order.number in page and "33.000" in page and "Titip di satpam" in page
    assert "Ani" in page and "Bandung" in page
    # The list shows it, and the order page links to a ticket about it.
    assert order.number in text(b.get("/orders"))
    assert f"/tickets/new?order_number={order.number}" in b.get(f"/orders/{order.number}").get_data(
        as_text=True
    )


def test_order_page_shows_the_status_history(login_as, db, make):
    b, user = customer(login_as)
    order = make.order(customer=user)
    staff = make.user(perm.CUSTOMER_SERVICE)
    order_rules.change_status(order, OrderStatus.PICKED_UP, staff, note="Kurir Andi")
    db.session.commit()
    page = text(b.get(f"/orders/{order.number}"))
    history = page[page.index("Status history") :]
    assert history.index("Placed") < history.index("Picked up") < history.index("Kurir Andi")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"weight": "0"}, "weight"),
        ({"weight": "31"}, "weight"),
        ({"weight": "dua"}, "weight"),
        ({"weight": "1e3"}, "weight"),
        ({"weight": "-2"}, "weight"),
        ({"service": "INSURE"}, "service"),
        ({"service": "NOPE"}, "service"),
        ({"origin": ""}, "origin"),
        ({"destination": "x" * 201}, "destination"),
        ({"receiver_phone": "nomor saya"}, "receiver_phone"),
        ({"notes": "n" * 2001}, "notes"),
        ({"origin": "\x00\x00"}, "origin"),
    ],
)
def test_bad_order_input_is_shown_next_to_the_field(login_as, db, change, field):
    b, _user = customer(login_as)
    resp = b.post("/orders/new", {**GOOD, **change, "action": "place"}, form_url="/orders/new")
    assert resp.status_code == 400
    assert field_error(resp, field), text(resp)[-3000:]
    assert _orders(db) == 0


def test_odd_unicode_in_an_order_is_kept_and_escaped(login_as, db):
    b, _user = customer(login_as)
    fields = {**GOOD, "origin": "Gang 🐈 <b>Kucing</b> \u202e", "notes": "baris\r\nbaru\x07"}
    resp = b.post("/orders/new", {**fields, "action": "place"}, form_url="/orders/new")
    assert resp.status_code == 302
    order = db.session.scalars(select(Order)).one()
    assert order.origin == "Gang 🐈 <b>Kucing</b>"  # the bidi override is dropped (issue 9 #7)
    assert order.notes == "baris\nbaru"
    html = b.get(f"/orders/{order.number}").get_data(as_text=True)
    assert "&lt;b&gt;Kucing&lt;/b&gt;" in html and "<b>Kucing</b>" not in html


def test_orders_without_csrf_change_nothing(login_as, db):
    b, _user = customer(login_as)
    resp = b.client.post("/orders/new", data={**GOOD, "action": "place"})
    assert resp.status_code == 400 and "expired" in text(resp)
    assert _orders(db) == 0


def test_orders_are_for_customers(login_as, client):
    resp = client.get("/orders")
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]
    staff, _user = login_as(perm.CUSTOMER_SERVICE)
    assert staff.get("/orders").status_code == 403
    assert staff.get("/orders/new").status_code == 403


def test_orders_list_pages(login_as, db, make):
    b, user = customer(login_as)
    for _ in range(21):
        make.order(customer=user)
    db.session.commit()
    first = text(b.get("/orders"))
    assert first.count('href="/orders/ORD-') == 20 and "/orders?page=2" in first
    assert text(b.get("/orders?page=2")).count('href="/orders/ORD-') == 1
    assert b.get("/orders?page=abc").status_code == 200

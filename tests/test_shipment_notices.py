"""Item 5, the customer's side: the order confirmation with its resi, and, with consent,
an email when the parcel is out for delivery, delivered or a delivery failed — by
import, API or the staff form alike, in the customer's language, escaped, never twice
for one event, and set-based (a batch's statements do not grow with its emails)."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import event, select

from backoffice.cli import tracking_group
from backoffice.domain import api_tokens, shipments
from backoffice.domain import permissions as perm
from backoffice.domain.orders import change_status
from backoffice.domain.shipments import EventIn, record_events
from backoffice.models import OrderStatus, OutboxEmail, TrackingSource
from backoffice.models.base import utcnow

from .portal_support import customer

GOOD = {
    "service": "REG",
    "origin": 'Jl. <b>Merdeka</b> 1, Jakarta & "Co"',
    "destination": "Jl. Asia Afrika 8, Bandung",
    "weight": "2,5",
    "receiver_name": "Ani",
    "receiver_phone": "0812 3456 789",
    "notes": "",
}
NASTY_NAME = 'Dewi <script>alert("x")</script> & Co'


def _wib(hours_ago: float = 1) -> str:
    moment = utcnow() + timedelta(hours=7) - timedelta(hours=hours_ago)
    return moment.replace(microsecond=0).isoformat() + "+07:00"


def _mails(db, prefix="shipment:") -> list[OutboxEmail]:
    db.session.flush()
    stmt = select(OutboxEmail).order_by(OutboxEmail.id)
    if prefix:
        stmt = stmt.where(OutboxEmail.dedupe_key.startswith(prefix))
    return list(db.session.scalars(stmt))


def _parcel(make, db, *, consent=True, locale="en", name="Dewi"):
    user = make.user(email=f"c{uuid.uuid4().hex[:10]}@example.com", locale=locale, name=name)
    user.shipment_updates = consent
    order = make.order(user)
    db.session.commit()
    return order


# --- the order confirmation ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("locale", "words"), [("en", "Your order is placed"), ("id", "Pesanan Anda sudah dibuat")]
)
def test_placing_an_order_sends_its_confirmation_with_the_resi(login_as, db, locale, words):
    b, user = customer(login_as, locale=locale, name=NASTY_NAME)
    resp = b.post("/orders/new", {**GOOD, "action": "place"}, form_url="/orders/new")
    assert resp.status_code == 302
    [mail] = _mails(db, prefix=None)
    from backoffice.models import Order

    order = db.session.scalars(select(Order)).one()
    assert user.email in mail.recipient
    assert order.resi in mail.subject and order.number in mail.subject and words in mail.subject
    for body in (mail.body_text, mail.body_html):
        assert order.resi in body
        assert f"/track/{order.resi}" in body and f"/orders/{order.number}" in body
    assert "<script>" not in mail.body_html and "&lt;script&gt;" in mail.body_html
    assert "<b>Merdeka</b>" not in mail.body_html and "&lt;b&gt;Merdeka" in mail.body_html
    assert "<b>Merdeka</b>" in mail.body_text  # plain text is not HTML


# --- shipment updates -------------------------------------------------------------------


def test_consent_is_set_on_the_account_page(login_as, db):
    b, user = customer(login_as, locale="en")
    page = b.get("/account").get_data(as_text=True)
    assert 'name="shipment_updates"' in page and "out for delivery" in page
    data = {"name": "Dewi", "phone": "", "locale": "en", "shipment_updates": "y"}
    assert b.post("/account", data).status_code == 302
    db.session.expire_all()
    assert user.shipment_updates is True
    assert b.post("/account", {**data, "shipment_updates": ""}).status_code == 302
    db.session.expire_all()
    assert user.shipment_updates is False


def test_each_way_in_sends_one_email_per_notable_event(
    app, client, runner, login_as, make, db, tmp_path
):
    by_api, by_import, by_staff = (_parcel(make, db) for _ in range(3))
    # The API: out for delivery.
    secret = api_tokens.create("ops", ["tracking:write"])[1]
    db.session.commit()
    body = {
        "events": [
            {"resi": by_api.resi, "event": "at_hub", "occurred_at": _wib(5), "location": "Hub"},
            {
                "resi": by_api.resi,
                "event": "out_for_delivery",
                "occurred_at": _wib(1),
                "location": "Bandung <Kota>",
            },
        ]
    }
    headers = {"Authorization": f"Bearer {secret}"}
    assert client.post("/api/v1/tracking-events", json=body, headers=headers).status_code == 200
    assert client.post("/api/v1/tracking-events", json=body, headers=headers).status_code == 200
    # The import: delivery failed (twice: the same file again).
    path = tmp_path / "events.csv"
    path.write_text(f"{by_import.resi},delivery_failed,{_wib(2)},Bandung,nobody home\n")
    assert runner.invoke(tracking_group, ["import", str(path)]).exit_code == 0
    assert runner.invoke(tracking_group, ["import", str(path)]).exit_code == 0
    # The staff form: delivered.
    b, _staff = login_as(perm.CUSTOMER_SERVICE, locale="en")
    url = f"/admin/orders/details/?id={by_staff.id}"
    at = (utcnow() + timedelta(hours=6)).strftime("%Y-%m-%d %H:%M")
    resp = b.post(
        f"/admin/orders/event/?id={by_staff.id}",
        {"event": "delivered", "occurred_at": at, "location": "Bandung"},
        form_url=url,
    )
    assert resp.status_code == 302
    mails = _mails(db)
    assert len(mails) == 3
    subjects = {m.recipient.split("<")[-1].rstrip(">"): m.subject for m in mails}
    assert "Out for delivery" in subjects[by_api.customer.email]
    assert "Delivery failed" in subjects[by_import.customer.email]
    assert "Delivered" in subjects[by_staff.customer.email]
    api_mail = next(m for m in mails if by_api.customer.email in m.recipient)
    assert by_api.resi in api_mail.subject
    assert "Bandung &lt;Kota&gt;" in api_mail.body_html and "<Kota>" not in api_mail.body_html
    assert f"/track/{by_api.resi}" in api_mail.body_text and "/account" in api_mail.body_text
    assert "nobody home" not in "".join(m.body_text + m.body_html for m in mails)  # no notes


def test_no_consent_no_email_and_ordinary_or_old_events_send_nothing(make, db):
    without = _parcel(make, db, consent=False)
    with_consent = _parcel(make, db)
    results = record_events(
        [
            EventIn(without.resi, "out_for_delivery", _wib(1)),
            EventIn(with_consent.resi, "at_hub", _wib(1)),
        ],
        source=TrackingSource.IMPORT,
    )
    assert [r.outcome for r in results] == ["inserted", "inserted"]
    old = _parcel(make, db)
    record_events([EventIn(old.resi, "delivered", _wib(24 * 5))], source=TrackingSource.IMPORT)
    assert _mails(db) == []


def test_only_the_latest_event_of_a_batch_is_told(make, db):
    order = _parcel(make, db)
    record_events(
        [
            EventIn(order.resi, "out_for_delivery", _wib(3)),
            EventIn(order.resi, "delivered", _wib(1)),
        ],
        source=TrackingSource.IMPORT,
    )
    [mail] = _mails(db)
    assert "Delivered" in mail.subject
    # An older event arriving later does not become the latest: no email about it.
    record_events([EventIn(order.resi, "delivery_failed", _wib(2))], source=TrackingSource.API)
    assert len(_mails(db)) == 1


def test_in_the_customers_language_and_escaped(make, db):
    order = _parcel(make, db, locale="id", name=NASTY_NAME)
    record_events(
        [EventIn(order.resi, "out_for_delivery", _wib(1), "Hub <i>Cakung</i>")],
        source=TrackingSource.API,
    )
    [mail] = _mails(db)
    assert "Paket Anda: Sedang diantar kurir" in mail.subject
    assert "<script>" not in mail.body_html and "&lt;script&gt;" in mail.body_html
    assert "&lt;i&gt;Cakung&lt;/i&gt;" in mail.body_html
    assert "Hub <i>Cakung</i>" in mail.body_text and NASTY_NAME in mail.body_text
    assert "WIB" in mail.body_text


def test_a_staff_status_change_to_delivered_is_one_email_not_two(make, db):
    order = _parcel(make, db)
    cs = make.user(perm.CUSTOMER_SERVICE)
    before = len(_mails(db, prefix=None))
    change_status(order, OrderStatus.PICKED_UP, cs)
    change_status(order, OrderStatus.IN_TRANSIT, cs)
    change_status(order, OrderStatus.DELIVERED, cs)
    mails = _mails(db, prefix=None)[before:]
    delivered = [m for m in mails if "Delivered" in m.subject]
    assert len(delivered) == 1 and delivered[0].dedupe_key.startswith("shipment:")
    # Without consent the order-status email tells it, as before.
    other = _parcel(make, db, consent=False)
    change_status(other, OrderStatus.PICKED_UP, cs)
    change_status(other, OrderStatus.IN_TRANSIT, cs)
    change_status(other, OrderStatus.DELIVERED, cs)
    assert [
        m for m in _mails(db, prefix=None) if other.number in m.subject and "Delivered" in m.subject
    ]


def test_a_thousand_events_cost_the_same_few_statements(app, make, db):
    """Set-based: the statements of one batch do not grow with the emails it queues."""
    orders = [_parcel(make, db) for _ in range(60)]

    def statements(items):
        seen = []

        def count(conn, cursor, statement, *args):
            seen.append(statement)

        engine = db.engine
        event.listen(engine, "before_cursor_execute", count)
        try:
            record_events(items, source=TrackingSource.IMPORT)
            db.session.flush()
        finally:
            event.remove(engine, "before_cursor_execute", count)
        return len(seen)

    few = statements([EventIn(o.resi, "out_for_delivery", _wib(2)) for o in orders[:3]])
    many = statements([EventIn(o.resi, "delivered", _wib(1)) for o in orders])
    assert len(_mails(db)) == 3 + 60
    assert many <= few + 2, (few, many)


def test_two_identical_batches_at_once_email_once(app, make, db):
    if db.engine.dialect.name != "mysql":
        pytest.skip("concurrent writers need MariaDB (SQLite serialises them)")
    orders = [_parcel(make, db) for _ in range(20)]
    secret = api_tokens.create("ops", ["tracking:write"])[1]
    db.session.commit()
    body = {
        "events": [
            {"resi": o.resi, "event": "out_for_delivery", "occurred_at": _wib(1)} for o in orders
        ]
    }
    barrier = threading.Barrier(2)
    codes, errors = [], []

    def post():
        try:
            c = app.test_client()
            barrier.wait(timeout=10)
            codes.append(
                c.post(
                    "/api/v1/tracking-events",
                    json=body,
                    headers={"Authorization": f"Bearer {secret}"},
                ).status_code
            )
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=post) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == [] and codes == [200, 200]
    db.session.rollback()  # a new snapshot
    assert len(_mails(db)) == 20


@pytest.mark.parametrize("isolation", ["REPEATABLE READ", "READ COMMITTED"])
def test_a_batch_overtaken_by_a_newer_event_tells_nothing(app, make, db, isolation):
    """Two writers at once: batch A has looked the parcel up (in transit) when batch B
    records and commits "delivered"; A's older "out for delivery" is inserted but does
    not become the latest, so only "delivered" is emailed."""
    if db.engine.dialect.name != "mysql":
        pytest.skip("concurrent writers need MariaDB (SQLite serialises them)")
    order = _parcel(make, db)
    record_events([EventIn(order.resi, "in_transit", _wib(5))], source=TrackingSource.IMPORT)
    db.session.commit()
    a_looked_up, b_done = threading.Event(), threading.Event()
    errors, outcomes = [], {}
    threads = {}

    def pause_a_before_its_insert(conn, cursor, statement, *args):
        # A's first write (its claim of the order): after it, A's row lock would make B
        # wait for A's commit.
        if threading.current_thread() is threads["a"] and statement.startswith(
            "UPDATE customer_order "
        ):
            a_looked_up.set()
            assert b_done.wait(timeout=30)

    def batch(name, kind, hours_ago, wait=None):
        try:
            with app.app_context():
                db.session.connection(execution_options={"isolation_level": isolation})
                if wait is not None:
                    assert wait.wait(timeout=30)
                [result] = record_events(
                    [EventIn(order.resi, kind, _wib(hours_ago))], source=TrackingSource.API
                )
                db.session.commit()
                outcomes[name] = result.outcome
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            if name == "b":
                b_done.set()

    threads["a"] = threading.Thread(target=batch, args=("a", "out_for_delivery", 2))
    threads["b"] = threading.Thread(target=batch, args=("b", "delivered", 1, a_looked_up))
    event.listen(db.engine, "before_cursor_execute", pause_a_before_its_insert)
    try:
        for t in threads.values():
            t.start()
        for t in threads.values():
            t.join(timeout=60)
    finally:
        event.remove(db.engine, "before_cursor_execute", pause_a_before_its_insert)
    assert errors == [] and outcomes == {"a": "inserted", "b": "inserted"}
    db.session.rollback()  # a new snapshot
    db.session.refresh(order)
    assert order.last_event == "delivered"
    assert ["Delivered" in m.subject for m in _mails(db)] == [True]


def test_the_hook_is_the_one_rule(make, db, monkeypatch):
    """The email path asks shipments.warrants_customer_notification (WhatsApp does too);
    patched where the recording code looks it up."""
    order = _parcel(make, db)
    monkeypatch.setattr(
        shipments.recording, "warrants_customer_notification", lambda *a, **k: False
    )
    record_events([EventIn(order.resi, "delivered", _wib(1))], source=TrackingSource.IMPORT)
    assert _mails(db) == []

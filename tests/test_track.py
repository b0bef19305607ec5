"""Public tracking: /track and /track/<resi>, no login, several resi at once, a typo told
apart from an unknown resi before any lookup, nothing personal, rate-limited."""

from __future__ import annotations

import pytest

from backoffice.domain import shipments
from backoffice.domain.shipments import EventIn
from backoffice.models import TicketStatus, TrackingSource

from .portal_support import text


def _parcel(make, db, **fields):
    customer = make.user(name="Siti Rahmawati Sender", phone="+62 811 1234 5678")
    order = make.order(
        customer,
        origin="Jl. Kenanga No. 7, Menteng, Jakarta",
        destination="Jl. Dago 99, Bandung",
        receiver_name="Budi Santoso Receiver",
        receiver_phone="+62 822 9876 5432",
        notes="Titip ke satpam",
        **fields,
    )
    shipments.record_events(
        [
            EventIn(order.resi, "picked_up", "2026-11-20T08:00:00+07:00", "Jakarta"),
            EventIn(order.resi, "at_hub", "2026-11-20T15:00:00+07:00", "Hub Cakung, Jakarta"),
            EventIn(
                order.resi,
                "delivery_failed",
                "2026-11-21T10:00:00+07:00",
                "Bandung",
                "Budi Santoso Receiver tidak di rumah, telp +62 822 9876 5432",
            ),
        ],
        source=TrackingSource.IMPORT,
    )
    db.session.commit()
    return order


def test_anyone_follows_a_parcel_without_login_and_sees_nothing_personal(client, make, db):
    order = _parcel(make, db)
    for url in (f"/track/{order.resi}", f"/track?resi={order.resi.lower()}"):
        resp = client.get(url, headers={"Accept-Language": "en"})
        assert resp.status_code == 200
        page = text(resp)
        assert order.resi in page
        assert "Picked up" in page and "Hub Cakung, Jakarta" in page
        assert "Delivery failed" in page
        assert "20 Nov 2026 15:00 WIB" in page
        assert "Late" in page  # REG promises 2-3 days; it is long past
        for secret in (
            "Siti",
            "Rahmawati",
            "Budi",
            "Santoso",
            "811 1234",
            "822 9876",
            "9876 5432",
            "Kenanga",
            "Menteng",
            "Dago",
            "satpam",
            order.customer.email,
            order.number,
        ):
            assert secret not in page, secret
        assert resp.headers["Cache-Control"] == "no-store"


def test_a_typo_and_an_unknown_resi_get_different_messages(client, make, db):
    order = _parcel(make, db)
    typo = order.resi[:10] + str((int(order.resi[10]) + 1) % 10) + order.resi[11:]
    resp = client.get(f"/track?resi={typo}", headers={"Accept-Language": "en"})
    assert resp.status_code == 200
    assert "check digit" in text(resp)
    unknown = shipments.make_resi(int(order.resi[2:10]) ^ 1)
    resp = client.get(f"/track/{unknown}", headers={"Accept-Language": "en"})
    assert resp.status_code == 404
    assert "No parcel has the resi" in text(resp) and "check digit" not in text(resp)
    resp = client.get("/track?resi=hello", headers={"Accept-Language": "en"})
    assert "not a resi" in text(resp)


def test_up_to_ten_at_once(client, make, db):
    orders = [_parcel(make, db) for _ in range(2)]
    typed = " , ".join([orders[0].resi, "cb 0000 0008 0 id", orders[1].resi.lower()])
    page = text(client.get(f"/track?resi={typed}", headers={"Accept-Language": "en"}))
    assert orders[0].resi in page and orders[1].resi in page
    assert "CB000000080ID" in page and "No parcel has the resi CB000000080ID" in page
    many = ",".join(shipments.make_resi(n) for n in range(12))
    page = text(client.get(f"/track?resi={many}", headers={"Accept-Language": "en"}))
    assert "At most 10 resi at once" in page
    assert 'id="resi-10"' in page and 'id="resi-11"' not in page


def test_spaces_between_whole_resi_also_separate_them(client, make, db):
    a, b = _parcel(make, db), _parcel(make, db)
    page = text(client.get(f"/track?resi={a.resi} {b.resi}"))
    assert a.resi in page and b.resi in page


@pytest.mark.parametrize(
    "url",
    ["/track?resi=" + "x" * 5000, "/track/%00", "/track?resi=%ff%fe", "/track/" + "9" * 300],
)
def test_odd_input_is_never_an_error(client, url):
    assert client.get(url).status_code in (200, 404)


def test_the_form_is_on_home_and_in_both_languages(client):
    home = client.get("/", headers={"Accept-Language": "id"})
    page = home.get_data(as_text=True)
    assert 'action="/track"' in page and 'name="resi"' in page
    assert "Lacak Paket" in page and "Lacak paket Anda" in page
    english = client.get("/track", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "Track parcel" in english


def test_tracking_is_rate_limited_per_address(limited_app, make, db):
    app = limited_app(RATELIMIT_TRACK="3 per minute")
    c = app.test_client()
    answers = [c.get(f"/track?resi={shipments.make_resi(n)}") for n in range(3)]
    answers.append(c.get(f"/track/{shipments.make_resi(5)}"))
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert 0 < int(answers[3].headers["Retry-After"]) <= 60  # when the minute's window ends
    assert "X-RateLimit-Remaining" not in answers[0].headers  # not read back on every page
    other = app.test_client()
    resp = other.get("/track", environ_base={"REMOTE_ADDR": "10.9.9.9"})
    assert resp.status_code == 200


def test_a_resi_in_the_chat_box_shows_its_status_first(client, make, db):
    order = _parcel(make, db)
    data = client.get(
        f"/faq/suggest?q=paket saya {order.resi.lower()} belum sampai",
        headers={"Accept-Language": "en"},
    ).get_json()
    assert data["parcels"][0]["resi"] == order.resi
    assert data["parcels"][0]["status"].startswith("Delivery failed, Bandung")
    assert data["parcels"][0]["url"] == f"/track/{order.resi}"
    assert "Budi" not in str(data["parcels"])  # the courier's note stays private
    assert client.get("/faq/suggest?q=ongkir").get_json()["parcels"] == []


def test_without_javascript_the_faq_search_shows_the_parcel_first(client, make, db):
    order = _parcel(make, db)
    page = text(client.get(f"/faq?q=resi {order.resi}", headers={"Accept-Language": "en"}))
    assert f'href="/track/{order.resi}"' in page
    assert page.index(order.resi) < page.index("Delivery failed, Bandung") + 200


def test_a_ticket_about_a_parcel_shows_its_timeline_to_staff_and_customer(login_as, make, db):
    from backoffice.domain import permissions as perm

    from .portal_support import customer

    b, user = customer(login_as)
    order = make.order(user)
    shipments.record_events(
        [EventIn(order.resi, "at_hub", "2026-11-20T15:00:00+07:00", "Hub Bandung")],
        source=TrackingSource.IMPORT,
    )
    ticket = make.ticket(TicketStatus.TEAM, customer=user, order=order)
    db.session.commit()
    mine = text(b.get(f"/tickets/{ticket.number}", headers={"Accept-Language": "en"}))
    assert "Hub Bandung" in mine and "20 Nov 2026 15:00 WIB" in mine
    staff, _user = login_as(perm.CUSTOMER_SERVICE, locale="en")
    desk = text(staff.get(f"/admin/tickets/desk/{ticket.number}/"))
    assert 'id="tracking-timeline"' in desk and "Hub Bandung" in desk


def test_ten_parcels_cost_what_one_does(client, make, db):
    """Their orders, services and timelines in one statement: no query per parcel (issue
    16: the 10-resi page read each timeline on its own), and none that reads a note."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    resis = [_parcel(make, db).resi for _ in range(10)]
    sent: list[str] = []

    def count(conn, cursor, statement, *args):
        sent.append(statement)

    db.session.expunge_all()
    event.listen(Engine, "before_cursor_execute", count)  # every engine: MariaDB's reader too
    try:
        one = client.get(f"/track/{resis[0]}")
        n_one = len(sent)
        ten = client.get("/track?resi=" + ",".join(resis))
    finally:
        event.remove(Engine, "before_cursor_execute", count)
    assert one.status_code == ten.status_code == 200
    assert text(ten).count("Hub Cakung, Jakarta") == 10
    assert n_one == 1 and len(sent) == 2, sent
    assert not any("note" in statement for statement in sent), sent

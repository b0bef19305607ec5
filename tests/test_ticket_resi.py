"""The portal's ticket form takes an optional resi: checked (check digit, a known parcel,
the customer's own) with a clear message each and nothing saved, prefilled from the
tracking page; the same linking rule as email and WhatsApp (shipments.customer_parcel)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from backoffice.domain import shipments
from backoffice.models import Ticket
from backoffice.models.base import utcnow

from .conftest import Browser
from .portal_support import customer, field_error, text

GOOD = {"kind": "complaint", "subject": "Paket belum sampai", "body": "Sudah lima hari."}


def _count(db) -> int:
    db.session.commit()  # a fresh snapshot on MariaDB
    return db.session.scalar(select(func.count()).select_from(Ticket))


def _mistyped(resi: str) -> str:
    """The same resi with a wrong check digit."""
    return resi[:10] + str((int(resi[10]) + 1) % 10) + resi[11:]


def test_a_ticket_about_an_own_parcel_by_its_resi(login_as, db, make):
    b, user = customer(login_as)
    order = make.order(customer=user)
    db.session.commit()
    spaced = f"{order.resi[:2].lower()} {order.resi[2:6]}-{order.resi[6:]}"
    resp = b.post("/tickets/new", {**GOOD, "resi": spaced})
    assert resp.status_code == 302, text(resp)[-1500:]
    ticket = db.session.scalars(select(Ticket)).one()
    assert ticket.order_id == order.id
    page = text(b.get(f"/tickets/{ticket.number}"))
    assert order.resi in page  # the chat shows the parcel beside the conversation


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("mistyped", "has a typing mistake"),
        ("CB12345", "That is not a resi"),
        ("unknown", "No parcel has the resi"),
        ("theirs", "is not one of your orders"),
    ],
)
def test_a_bad_resi_is_told_apart_and_nothing_is_saved(login_as, db, make, typed, message):
    b, user = customer(login_as)
    mine = make.order(customer=user)
    theirs = make.order(customer=make.user())
    db.session.commit()
    value = {
        "mistyped": _mistyped(mine.resi),
        "unknown": shipments.make_resi(12345678)
        if not shipments.find_order(shipments.make_resi(12345678))
        else shipments.make_resi(87654321),
        "theirs": theirs.resi,
    }.get(typed, typed)
    resp = b.post("/tickets/new", {**GOOD, "resi": value})
    assert resp.status_code == 400
    assert message in field_error(resp, "resi")
    assert theirs.resi not in field_error(resp, "resi") or typed == "theirs"
    assert _count(db) == 0


def test_resi_and_order_number_of_two_orders_are_refused(login_as, db, make):
    b, user = customer(login_as)
    one, other = make.order(customer=user), make.order(customer=user)
    db.session.commit()
    resp = b.post("/tickets/new", {**GOOD, "resi": other.resi, "order_number": one.number})
    assert resp.status_code == 400
    assert other.number in field_error(resp, "resi")
    assert _count(db) == 0
    resp = b.post("/tickets/new", {**GOOD, "resi": one.resi, "order_number": one.number})
    assert resp.status_code == 302


def test_filing_from_the_tracking_page_comes_prefilled_for_its_owner(app, login_as, db, make):
    b, user = customer(login_as)
    order = make.order(customer=user)
    stranger, _other = customer(login_as)
    db.session.commit()
    tell_us = "A problem with this parcel? Tell us"

    page = b.get(f"/track/{order.resi}").get_data(as_text=True)
    assert tell_us in page
    link = page.split(tell_us)[0].rsplit('href="', 1)[1].split('"')[0].replace("&amp;", "&")
    form = text(b.get(link))
    assert f'value="{order.resi}"' in form and 'value="About parcel' in form
    assert 'value="complaint" selected' in form or 'selected value="complaint"' in form

    # Someone else's parcel: tracked, but no invitation to file a ticket about it.
    assert tell_us not in stranger.get(f"/track/{order.resi}").get_data(as_text=True)
    # Anonymous: the link leads to the login first.
    anonymous = Browser(app.test_client())
    anon_page = anonymous.get(f"/track/{order.resi}", headers={"Accept-Language": "en"})
    assert tell_us in anon_page.get_data(as_text=True)
    assert anonymous.get(link).status_code in (302, 401)


def test_email_and_whatsapp_link_the_resi_by_the_same_rule(db, make):
    from backoffice.domain import inbound
    from backoffice.models import MessageChannel

    user = make.user(phone="+62 812 7777 0001")
    mine = make.order(customer=user)
    theirs = make.order(customer=make.user())
    db.session.commit()
    got = inbound.receive(
        inbound.Incoming(
            MessageChannel.EMAIL,
            f"Paket {theirs.resi} dan {mine.resi.lower()} belum sampai",
            email=user.email,
            external_id=f"<{utcnow().timestamp()}@example.com>",
        )
    )
    assert got.ticket.order_id == mine.id  # the stranger's parcel links nothing
    assert shipments.customer_parcel(theirs.resi, user)[0] is None
    assert shipments.customer_parcel(mine.resi, user) == (mine, "")


def test_staff_link_a_ticket_to_its_customers_parcel_on_the_desk(db, login_as, make):
    from datetime import timedelta

    from backoffice.domain import permissions as perm
    from backoffice.models import EventAction, TicketEvent, TicketKind, TrackingSource

    from .admin_support import flashes

    cs, _ = login_as(perm.CUSTOMER_SERVICE, locale="en")
    customer = make.user()
    mine = make.order(customer, product="ECO")
    now = utcnow()
    shipments.record_events(
        [shipments.EventIn(mine.resi, "picked_up", now - timedelta(days=9), "Jakarta")],
        source=TrackingSource.IMPORT,
    )
    theirs = make.order(make.user())
    ticket = make.ticket("team", customer=customer, kind=TicketKind.QUESTION)  # no parcel
    db.session.commit()
    desk = f"/admin/tickets/desk/{ticket.number}/"
    url = f"{desk}parcel"
    assert 'id="parcel-form"' in cs.get(desk).get_data(as_text=True)

    for typed, message in (
        (_mistyped(mine.resi), "has a typing mistake"),
        (theirs.resi, "belongs to another customer"),
    ):
        data = {"resi": typed, "expected_version": str(ticket.version_id)}
        page = cs.post(url, data, form_url=desk, follow_redirects=True).get_data(as_text=True)
        assert message in flashes(page)
        db.session.expire_all()
        assert db.session.get(Ticket, ticket.id).order_id is None

    data = {"resi": mine.resi.lower(), "expected_version": str(ticket.version_id)}
    page = cs.post(url, data, form_url=desk, follow_redirects=True).get_data(as_text=True)
    assert "Parcel linked to the ticket." in flashes(page)
    assert "situation-stuck" in page and mine.resi in page  # no event for 9 days
    db.session.expire_all()
    linked = db.session.get(Ticket, ticket.id)
    assert linked.order_id == mine.id and linked.situation.value == "stuck"
    last = db.session.scalars(
        select(TicketEvent)
        .where(TicketEvent.ticket_id == ticket.id)
        .order_by(TicketEvent.id.desc())
    ).first()
    assert last.action is EventAction.PARCEL_LINKED and last.note == mine.resi

    # A department admin replies and notes, but does not set the ticket's parcel.
    dept, _ = login_as(perm.ADMIN_DEPARTMENT, department=linked.department.code, locale="en")
    assert 'id="parcel-form"' not in dept.get(desk).get_data(as_text=True)
    data = {"resi": mine.resi, "expected_version": str(linked.version_id)}
    assert dept.post(url, data, form_url=desk).status_code == 403

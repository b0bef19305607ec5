"""One step, then the next (issue 13 item 5) over HTTP with CSRF on: send and finish,
send then next ticket, previous/next within the list the agent came from."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import func, select

from backoffice.domain import permissions as perm
from backoffice.models import Ticket, TicketMessage, TicketStatus
from backoffice.models.base import utcnow

from .admin_support import flashes
from .test_admin_desk import desk, reload, version_on


def _reply(b, number, page, **data):
    data.setdefault("body", "Sudah kami proses.")
    data.setdefault("visibility", "public")
    data.setdefault("expected_version", version_on(page))
    return b.post(f"/admin/tickets/desk/{number}/reply", data, form_url=desk(number))


def _messages(ticket) -> int:
    from backoffice.extensions import db

    return db.session.scalar(
        select(func.count()).select_from(TicketMessage).where(TicketMessage.ticket_id == ticket.id)
    )


def test_send_and_finish_is_one_step(login_as, make, db):
    t = make.ticket("team")
    db.session.commit()
    b, _ = login_as(perm.CUSTOMER_SERVICE, locale="en")
    page = b.get(desk(t.number)).get_data(as_text=True)
    assert 'id="send-finish"' in page
    resp = _reply(b, t.number, page, then="finish")
    assert resp.status_code == 302
    t = reload(t)
    assert t.status is TicketStatus.FINISHED and t.first_response_at is not None
    assert _messages(t) == 2  # the customer's and the reply
    assert "Reply sent and ticket finished." in flashes(
        b.get(resp.headers["Location"]).get_data(as_text=True)
    )


def test_send_and_finish_on_a_stale_page_changes_nothing(login_as, make, db):
    t = make.ticket("team")
    db.session.commit()
    b, _ = login_as(perm.CUSTOMER_SERVICE, locale="en")
    page = b.get(desk(t.number)).get_data(as_text=True)
    resp = _reply(b, t.number, page, then="finish", expected_version="1")
    assert resp.status_code == 409
    assert "Sudah kami proses." in resp.get_data(as_text=True)  # the text is kept
    assert reload(t).status is TicketStatus.TEAM and _messages(t) == 1


def test_department_admin_cannot_send_and_finish(login_as, make, db):
    t = make.ticket("team", department="OPS")
    db.session.commit()
    b, _ = login_as(perm.ADMIN_DEPARTMENT, department="OPS", locale="en")
    page = b.get(desk(t.number)).get_data(as_text=True)
    assert 'id="send-finish"' not in page
    resp = _reply(b, t.number, page, then="finish")
    assert resp.status_code == 422 and "You cannot finish this ticket" in resp.get_data(
        as_text=True
    )
    assert reload(t).status is TicketStatus.TEAM and _messages(t) == 1


def test_previous_and_next_follow_the_list_the_agent_came_from(login_as, make, db):
    now = utcnow()
    first, second, third = (make.ticket("team", now=now - timedelta(hours=h)) for h in (3, 2, 1))
    db.session.commit()
    b, me = login_as(perm.CUSTOMER_SERVICE, locale="en")
    origin = "/admin/tickets/team/?assignee=none"
    # Arrived from the list (the browser's Referer), in its order: most urgent first.
    html = b.get(
        desk(second.number), headers={"Referer": f"http://localhost{origin}&page=2"}
    ).get_data(as_text=True)
    assert f'href="/admin/tickets/desk/{first.number}/?from=' in html  # previous
    assert re.search(rf'id="desk-next"[^>]*>|href="[^"]*{third.number}[^"]*" id="desk-next"', html)
    assert 'id="desk-back"' in html and "/admin/tickets/team/?assignee=none" in html
    # Send, then next: the answered ticket leaves Team; the next is the most urgent left.
    page = b.get(desk(first.number), query_string={"from": origin}).get_data(as_text=True)
    assert 'id="send-next"' in page
    resp = _reply(b, first.number, page, then="next", **{"from": origin})
    assert resp.status_code == 302
    assert resp.headers["Location"].startswith(f"/admin/tickets/desk/{second.number}/?from=")
    assert reload(first).status is TicketStatus.RESPONDED
    # The last one: back to the list with a message.
    for t in (second, third):
        page = b.get(desk(t.number), query_string={"from": origin}).get_data(as_text=True)
        resp = _reply(b, t.number, page, then="next", **{"from": origin})
    assert resp.headers["Location"] == origin
    assert "last ticket of this list" in flashes(b.get(origin).get_data(as_text=True))


def test_the_origin_is_only_ever_one_of_the_lists(login_as, make, db):
    t = make.ticket("team")
    db.session.commit()
    b, _ = login_as(perm.CUSTOMER_SERVICE)
    for bad in ("https://evil.example/phish", "/admin/staff/", "//evil.example/admin/"):
        html = b.get(desk(t.number), query_string={"from": bad}).get_data(as_text=True)
        assert 'id="desk-back"' not in html
        assert 'href="https://evil' not in html and 'href="//evil' not in html
    # A foreign host's list-shaped URL keeps only our own path and queue arguments.
    html = b.get(
        desk(t.number),
        query_string={"from": "https://evil.example/admin/tickets/team/?assignee=me&x=<b>"},
    ).get_data(as_text=True)
    assert 'href="/admin/tickets/team/?assignee=me" class="mx-2" id="desk-back"' in html
    assert 'href="https://evil' not in html and "x=" not in html.split('id="desk-back"')[0][-200:]
    assert db.session.get(Ticket, t.id) is not None

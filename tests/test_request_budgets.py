"""Statement budgets of the single-ticket paths (issue 16 items 2 and 4): the desk's
statements do not grow with the conversation, a poll that finds nothing new (304)
reads the ticket's row joined to the session's user (and, on the desk, who else is
here), and the cheap paths refuse exactly what the full pages refuse.

Each counted request starts from an empty session, as every request does in
production (the tests' app context, and so its session, outlives a request)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from backoffice.domain import permissions as perm
from backoffice.domain import presence
from backoffice.domain import tickets as lifecycle
from backoffice.models import Ticket, TicketViewer, User

from .admin_support import counting_queries
from .test_admin_desk import desk

# The desk's first paint: the user with their roles; the ticket with customer and
# profile, assignee, department, order and product, the colleagues here now, the first
# open ticket on its parcel and the user's unread notices (the menu's count); its
# events; its messages with authors, files and WhatsApp states; the presence upsert.
# Colleagues, departments, merge candidates, canned replies and the customer's history
# are the panels' (loaded after the page): PANEL_* below.
DESK = 5
# ... and a parcel's tracking timeline.
DESK_WITH_PARCEL = 6
# The panels: the user, the ticket, then their own reads.
PANEL_ACTIONS = 2 + 3  # the departments, the colleagues with their roles, merge candidates
PANEL_CUSTOMER = 2 + 3  # the two counts together, the orders, the earlier tickets
PANEL_CANNED = 2 + 1
# The idle poll's short way (backoffice/idle_polls.py): the ticket's row joined to the
# session's user and their roles and to its viewers (the heartbeat is fresh).
DESK_POLL_304 = 1
# The customer's ticket's row joined to the session's user and their roles.
PORTAL_POLL_304 = 1


def fresh_count(db, fn) -> tuple[object, int]:
    """(fn()'s result, statements it sent) from an empty session."""
    db.session.expunge_all()
    with counting_queries(db.engine) as statements:
        result = fn()
    return result, len(statements)


def conversation(make, db, staff, messages: int):
    t = make.ticket("team")
    for i in range(messages - 1):  # filing wrote the first
        author = staff if i % 2 else t.customer
        lifecycle.post_message(t, author, f"message {i}", internal=bool(staff is author and i % 4))
    db.session.commit()
    return t.number


def test_the_desk_costs_the_same_with_3_and_30_messages(login_as, make, db):
    b, staff = login_as(perm.MASTER_ADMIN, locale="en")
    make.user(role=perm.CUSTOMER_SERVICE)  # a colleague to assign to
    make.user(role=perm.ADMIN_DEPARTMENT, department="OPS")
    db.session.commit()
    short, long = conversation(make, db, staff, 3), conversation(make, db, staff, 30)
    for number in (short, long):
        b.get(desk(number))  # the first visit inserts the presence row
    resp, n_short = fresh_count(db, lambda: b.get(desk(short)))
    assert resp.status_code == 200
    resp, n_long = fresh_count(db, lambda: b.get(desk(long)))
    assert resp.status_code == 200
    assert resp.get_data(as_text=True).count('class="msg ') == 30
    assert (n_short, n_long) == (DESK, DESK)


def test_a_parcel_adds_its_timeline_and_nothing_else(login_as, make, db):
    from backoffice.domain import shipments

    b, staff = login_as(perm.CUSTOMER_SERVICE, locale="en")
    customer = make.user(perm.CUSTOMER)
    order = make.order(customer)
    shipments.add_event(order, "picked_up", staff, location="Jakarta Hub")
    # The same customer and parcel twice: the second one is flagged as a duplicate.
    first = make.ticket("team", customer=customer, order=order)
    second = make.ticket("team", customer=customer, order=order)
    for i in range(20):
        lifecycle.post_message(second, customer if i % 2 else staff, f"message {i}")
    db.session.commit()
    number, first_number = second.number, first.number
    b.get(desk(number))
    resp, n = fresh_count(db, lambda: b.get(desk(number)))
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "Jakarta Hub" in html
    assert f"Duplicate of {first_number}" in html
    assert n == DESK_WITH_PARCEL


def test_others_here_and_unread_notices_come_with_the_ticket(login_as, make, db):
    """Who else is viewing and the menu's count are read in the ticket's statement; the
    ticket's notices are marked read (one UPDATE more) only when there are some."""
    from backoffice.domain import staff_notices

    b, me = login_as(perm.CUSTOMER_SERVICE, name="Alice", locale="en")
    sari, _ = login_as(perm.CUSTOMER_SERVICE, name="Sari", locale="en")
    number = conversation(make, db, me, 3)
    other = conversation(make, db, me, 1)
    _poll(sari, number)  # Sari has the desk open
    b.get(desk(number))
    me_id = me.id
    ticket = db.session.scalar(select(Ticket).where(Ticket.number == number))
    elsewhere = db.session.scalar(select(Ticket).where(Ticket.number == other))
    for t in (ticket, elsewhere):
        t.assignee_id = me.id
        db.session.flush()
        staff_notices.customer_replied(t)
    db.session.commit()
    resp, n = fresh_count(db, lambda: b.get(desk(number)))
    html = resp.get_data(as_text=True)
    assert "Also viewing: Sari" in html
    # The menu counts the notice still unread (the other ticket's), not this one's.
    assert re.search(r'id="menu-notice-count">1<', html), html
    assert n == DESK + 1
    assert staff_notices.unread_count(db.session.get(User, me_id)) == 1
    resp, n = fresh_count(db, lambda: b.get(desk(number)))
    assert n == DESK


def test_each_panel_costs_the_same_whatever_the_conversation(login_as, make, db):
    b, staff = login_as(perm.CUSTOMER_SERVICE, locale="en")
    for _ in range(3):
        make.user(role=perm.CUSTOMER_SERVICE)
    db.session.commit()
    numbers = [conversation(make, db, staff, messages) for messages in (3, 30)]
    for number in numbers:
        for part, budget in (
            ("actions", PANEL_ACTIONS),
            ("customer", PANEL_CUSTOMER),
            ("canned", PANEL_CANNED),
        ):
            url = f"{desk(number)}panel/{part}"
            resp, n = fresh_count(db, lambda url=url: b.get(url, query_string={"partial": "1"}))
            assert resp.status_code == 200, part
            assert n == budget, (part, number)


def test_more_colleagues_cost_no_more_statements(login_as, make, db):
    b, staff = login_as(perm.MASTER_ADMIN, locale="en")
    number = conversation(make, db, staff, 3)
    url = f"{desk(number)}panel/actions"
    _, few = fresh_count(db, lambda: b.get(url, query_string={"partial": "1"}))
    for _ in range(6):
        make.user(role=perm.CUSTOMER_SERVICE)
    db.session.commit()
    resp, many = fresh_count(db, lambda: b.get(url, query_string={"partial": "1"}))
    assert resp.status_code == 200 and many == few == PANEL_ACTIONS
    assert resp.get_data(as_text=True).count("<option") >= 7


def _poll(b, number, etag=None, typing=False):
    return b.get(
        f"{desk(number)}poll",
        query_string={"after": 0, **({"typing": "1"} if typing else {})},
        headers={"If-None-Match": etag} if etag else {},
    )


def test_an_idle_desk_poll_reads_one_statement_and_writes_nothing(login_as, make, db):
    b, staff = login_as(perm.CUSTOMER_SERVICE, locale="en")
    number = conversation(make, db, staff, 3)
    etag = _poll(b, number).headers["ETag"]  # this heartbeat is written
    resp, n = fresh_count(db, lambda: _poll(b, number, etag))
    assert resp.status_code == 304 and n == DESK_POLL_304
    # A heartbeat older than SEEN_REFRESH is written again (one UPDATE more).
    for row in db.session.scalars(select(TicketViewer)):
        row.seen_at -= presence.SEEN_REFRESH + timedelta(seconds=1)
    db.session.commit()
    resp, n = fresh_count(db, lambda: _poll(b, number, etag))
    assert resp.status_code == 304 and n == DESK_POLL_304 + 1
    resp, n = fresh_count(db, lambda: _poll(b, number, etag))
    assert n == DESK_POLL_304


def test_typing_is_written_when_due_and_seen_by_a_colleague(login_as, make, db):
    alice, staff = login_as(perm.CUSTOMER_SERVICE, name="Alice", locale="en")
    sari, _ = login_as(perm.CUSTOMER_SERVICE, name="Sari", locale="en")
    number = conversation(make, db, staff, 3)
    _poll(alice, number)
    _poll(sari, number)  # viewing, not typing
    assert _poll(alice, number).get_json()["presence"] == "Also viewing: Sari"
    # Sari starts typing seconds after her last heartbeat: written although it is fresh.
    _poll(sari, number, typing=True)
    assert _poll(alice, number).get_json()["presence"] == "Sari is replying…"


def test_a_desk_poll_still_refuses_what_the_desk_refuses(login_as, make, db, client):
    ops_admin, _ = login_as(perm.ADMIN_DEPARTMENT, department="OPS", locale="en")
    claims_admin, claims = login_as(perm.ADMIN_DEPARTMENT, department="CLAIMS", locale="en")
    customer, _ = login_as(perm.CUSTOMER, locale="en")
    t = make.ticket("team", department="OPS")
    db.session.commit()
    assert _poll(ops_admin, t.number).status_code == 200
    assert _poll(claims_admin, t.number).status_code == 404  # another department's
    assert _poll(customer, t.number).status_code == 403  # no back office
    assert _poll(client, t.number).status_code == 302  # signed out: the login page
    # Deactivated: the session names nobody any more.
    db.session.get(User, claims.id).active = False
    etag = _poll(ops_admin, t.number).headers["ETag"]
    db.session.commit()
    assert _poll(claims_admin, t.number, etag).status_code == 302
    assert _poll(ops_admin, t.number, etag).status_code == 304


def _portal_poll(b, number, etag=None):
    headers = {"If-None-Match": etag} if etag else {}
    return b.get(f"/tickets/{number}/messages", headers=headers)


def test_an_idle_portal_chat_poll_reads_the_user_and_the_ticket(login_as, make, db):
    b, me = login_as(perm.CUSTOMER, locale="en")
    number = make.ticket("team", customer=me).number
    db.session.commit()
    etag = _portal_poll(b, number).headers["ETag"]
    resp, n = fresh_count(db, lambda: _portal_poll(b, number, etag))
    assert resp.status_code == 304 and n == PORTAL_POLL_304


def test_a_portal_poll_still_refuses_what_the_page_refuses(login_as, make, db, client):
    b, me = login_as(perm.CUSTOMER, locale="en")
    other, other_user = login_as(perm.CUSTOMER, locale="en")
    staff, _ = login_as(perm.MASTER_ADMIN, locale="en")
    number = make.ticket("team", customer=me).number
    db.session.commit()
    etag = _portal_poll(b, number).headers["ETag"]
    assert _portal_poll(other, number, etag).status_code == 404  # another customer's
    assert _portal_poll(staff, number, etag).status_code == 403  # not a customer
    signed_out = _portal_poll(client, number, etag)
    assert signed_out.status_code == 302 and "/login" in signed_out.headers["Location"]
    db.session.get(User, me.id).active = False
    db.session.commit()
    assert _portal_poll(b, number, etag).status_code == 302


@pytest.mark.parametrize("seconds", [0, 9, 14])
def test_a_fresh_heartbeat_is_not_rewritten(make, db, seconds):
    """The domain rule beneath the budget: within SEEN_REFRESH a poll only reads."""
    staff = make.user(role=perm.CUSTOMER_SERVICE)
    t = make.ticket("team")
    start = presence.utcnow()
    _people, wrote = presence.poll(t, staff, typing=False, now=start)
    assert wrote
    later = start + timedelta(seconds=seconds)
    assert presence.poll(t, staff, typing=False, now=later) == ([], False)
    much_later = start + presence.SEEN_REFRESH + timedelta(seconds=1)
    assert presence.poll(t, staff, typing=False, now=much_later) == ([], True)


def test_filing_reads_neither_its_token_nor_the_new_ticket_back(login_as, db):
    """Issue 16 item 3: a first sending is not looked up by its token (the unique
    index answers a second one, tests/test_idempotent_filing.py), and the redirect
    does not reload the ticket the commit expired."""
    from .test_idempotent_filing import _form

    b, me = login_as(perm.CUSTOMER, locale="en")
    form = _form(b)
    resp, _n = fresh_count(db, lambda: b.client.post("/tickets/new", data=form))
    assert resp.status_code == 302
    with counting_queries(db.engine) as statements:
        resp = b.client.post("/tickets/new", data=_form(b))
        sent = list(statements)
    assert resp.status_code == 302
    inserted = next(i for i, s in enumerate(sent) if s.startswith("INSERT INTO ticket "))
    reads = [s for s in sent[inserted:] if s.startswith("SELECT") and "FROM ticket \n" in s]
    assert not any("ticket.submission" in s for s in sent[:inserted])
    assert reads == [], reads


# A portal filing that a rule routes to a department with agents: the user with their
# roles and the setup's token (domain/setup_cache.py); then one flush: the ticket's INSERT,
# the message, the FILED and ROUTED events (one INSERT on MariaDB: same columns; SQLite's
# INSERT … RETURNING goes row by row); the number's UPDATE (the id makes it); the
# department's people with their roles (the members for the notices and the admins for the
# emails, picked in Python from the roles Flask-Security reads); the new notices' one
# INSERT (no unread ones to look for: the ticket is new); the customer's and the admin's
# emails (one executemany INSERT on MariaDB; on SQLite one INSERT … RETURNING each).
# The first filing of a process after the setup changed also reads the rules with their
# departments, the calendars' departments with their shifts, and the company days.
# Before issue 16 item 3's cuts: 18 with one agent, 21 with four (one notice INSERT each;
# the rule's department, the default calendar's id and the customer's last email looked
# up on their own, that last one again for each admin's email); then 16 (15 on MariaDB),
# with the role table, the members, the admins and the unread notices read on their own
# and the events inserted one by one (the FILED event lacked the note the ROUTED one has);
# then 13 (11), reading the rules and the calendars on every filing.
FILING_ROUTED = {"sqlite": 10, "mysql": 8}
SETUP_READS = 3


@pytest.mark.parametrize("agents", [1, 4])
def test_filing_costs_the_same_whatever_the_department_size(login_as, make, db, agents):
    """Issue 16 item 3: routing, the calendar and the notices cost a fixed number of
    statements (no lazy load per member of the department, no thread lookup for a
    ticket whose only message was typed on the portal), and the setup is read only by
    the first filing after it changed."""
    from backoffice.models import RoutingRule, StaffNotice, Ticket, TicketKind

    from .test_idempotent_filing import _form  # files a question

    ops = make.department("OPS")
    ops_id = ops.id
    for rule in db.session.scalars(select(RoutingRule)):
        rule.active = False  # the seed's rules send questions to Customer Service
    db.session.add(RoutingRule(department=ops, kind=TicketKind.QUESTION))
    make.user(perm.ADMIN_DEPARTMENT, department=ops)
    for _ in range(agents):
        make.user(perm.CUSTOMER_SERVICE, department=ops)
    b, _me = login_as(perm.CUSTOMER, locale="en")
    expected = FILING_ROUTED[db.engine.dialect.name]
    for reads in (SETUP_READS, 0):  # after the change, then from the process's copies
        form = _form(b)
        db.session.expunge_all()
        with counting_queries(db.engine) as statements:
            resp = b.client.post("/tickets/new", data=form)
            sent = list(statements)
        assert resp.status_code == 302
        assert len(sent) == expected + reads, "\n".join(s[:120] for s in sent)
        assert not any("ticket_message.external_id" in s and s.startswith("SELECT") for s in sent)
    db.session.commit()
    tickets = db.session.scalars(select(Ticket.department_id)).all()
    assert tickets == [ops_id, ops_id], tickets
    notices = db.session.scalars(select(StaffNotice.user_id)).all()
    assert len(notices) == 2 * (agents + 1)  # the agents and the admin, for each ticket


def test_the_desk_reads_a_parcels_events_once(login_as, make, db):
    """The order panel's status line takes the latest event from the timeline it has
    already read (shipments.status_text_of), not from a second query."""
    from backoffice.domain import shipments

    b, staff = login_as(perm.MASTER_ADMIN, locale="en")
    customer = make.user(perm.CUSTOMER)
    order = make.order(customer)
    shipments.add_event(order, "picked_up", staff, location="Jakarta Hub")
    number = make.ticket("team", customer=customer, order=order).number
    db.session.commit()
    b.get(desk(number))
    db.session.expunge_all()
    with counting_queries(db.engine) as statements:
        resp = b.get(desk(number))
        sent = list(statements)
    assert resp.status_code == 200
    assert "Jakarta Hub" in resp.get_data(as_text=True)
    assert sum("FROM tracking_event" in s for s in sent) == 1, sent


def test_the_notifications_page_counts_the_unread_once(login_as, db):
    """The page's own count and the menu's badge are one statement (they were two)."""
    b, _me = login_as(perm.CUSTOMER_SERVICE, locale="en")
    with counting_queries(db.engine) as statements:
        assert b.get("/admin/notifications/").status_code == 200
    counts = [s for s in statements if "count(" in s.lower() and "staff_notice" in s]
    assert len(counts) == 1, counts

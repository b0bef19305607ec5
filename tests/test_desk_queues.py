"""Queues (issue 13 item 1): most urgent first, the assignee and "who spoke last"
filters, the unread mark, and the home page's ways in."""

from __future__ import annotations

import re
from datetime import timedelta

from backoffice.domain import permissions as perm
from backoffice.domain import tickets
from backoffice.models import Priority, Ticket
from backoffice.models.base import utcnow
from backoffice.security_setup import user_datastore

from .admin_support import flashes, listed_numbers


def _order(html: str) -> list[str]:
    return re.findall(r'href="/admin/tickets/desk/([A-Z0-9-]+)/"', html)


def _row(html: str, number: str) -> str:
    return next(r for r in html.split("<tr") if f"desk/{number}/" in r)


def test_team_list_puts_the_most_urgent_first_and_a_column_still_sorts(login_as, make, db):
    master = make._master()
    relaxed = make.ticket("team")  # normal: first response due in 8 h
    tickets.set_priority(relaxed, Priority.LOW, master)  # 24 h
    newest_urgent = make.ticket("team")
    tickets.set_priority(newest_urgent, Priority.URGENT, master)  # 1 h
    old_normal = make.ticket("team", now=utcnow() - timedelta(hours=5))  # due in 3 h
    db.session.commit()
    b, _ = login_as(perm.CUSTOMER_SERVICE, locale="en")
    html = b.get("/admin/tickets/team/").get_data(as_text=True)
    assert _order(html) == [newest_urgent.number, old_normal.number, relaxed.number]
    # A click on a column header still sorts by it (Age: oldest first).
    age = re.search(r'href="([^"]*sort=\d+[^"]*)"[^>]*>\s*Age', html).group(1)
    page = b.get(age.replace("&amp;", "&")).get_data(as_text=True)
    assert _order(page)[0] == old_normal.number
    # The order is the stored next_due_at's, which the lifecycle keeps.
    stored = [db.session.get(Ticket, t.id).next_due_at for t in (newest_urgent, old_normal)]
    assert stored[0] < stored[1]


def test_a_deep_page_keeps_the_queue_order(login_as, make, db):
    made = [make.ticket("team", now=utcnow() - timedelta(minutes=i)) for i in range(5)]
    db.session.commit()
    b, _ = login_as(perm.CUSTOMER_SERVICE)
    first = _order(b.get("/admin/tickets/team/?page_size=25").get_data(as_text=True))
    assert first == [t.number for t in reversed(made)]  # the oldest is due first
    # Flask-Admin's smallest page is 25: check page 1 of 25 is empty and page 0 whole.
    assert _order(b.get("/admin/tickets/team/?page=1").get_data(as_text=True)) == []


def test_the_colleague_picker_offers_every_active_staff_member_once(login_as, make, db):
    """Whoever a role grants the back office (each staff role), once each even with two
    such roles, by name; not customers, not deactivated accounts."""
    cs = make.user(perm.CUSTOMER_SERVICE, name="Cici Agen")
    dept = make.user(perm.ADMIN_DEPARTMENT, name="Dodo Dept")
    both = make.user(perm.CUSTOMER_SERVICE, name="Bima Dua Peran")
    user_datastore.add_role_to_user(both, perm.MASTER_ADMIN)
    gone = make.user(perm.CUSTOMER_SERVICE, name="Gita Pergi")
    gone.active = False
    customer = make.user(name="Eko Pelanggan")
    master = make._master()
    db.session.commit()
    b, me = login_as(perm.MASTER_ADMIN, name="Ani Master", locale="en")
    html = b.get("/admin/tickets/team/").get_data(as_text=True)
    picker = html.split('id="queue-assignee"', 1)[1].split("</select>", 1)[0]
    offered = re.findall(r'<option value="(\d+)"[^>]*>([^<]*)</option>', picker)
    staff = sorted((u.name, u.id) for u in (cs, dept, both, me, master))
    assert offered == [(str(i), n) for n, i in staff], offered
    assert str(gone.id) not in dict(offered) and str(customer.id) not in dict(offered)


def test_assignee_filter_me_none_and_a_colleague(login_as, make, db):
    mine, theirs, nobody = (make.ticket("team") for _ in range(3))
    colleague = make.user(perm.CUSTOMER_SERVICE, name="Sari Wulandari")
    db.session.commit()
    b, me = login_as(perm.CUSTOMER_SERVICE, locale="en")
    master = make._master()
    tickets.assign(mine, me, master)
    tickets.assign(theirs, colleague, master)
    db.session.commit()

    def numbers(query: str) -> set[str]:
        resp = b.get(f"/admin/tickets/team/?{query}")
        assert resp.status_code == 200
        return listed_numbers(resp.get_data(as_text=True))

    assert numbers("") == {mine.number, theirs.number, nobody.number}
    assert numbers("assignee=me") == {mine.number}
    assert numbers("assignee=none") == {nobody.number}
    assert numbers(f"assignee={colleague.id}") == {theirs.number}
    html = b.get("/admin/tickets/team/?assignee=me").get_data(as_text=True)
    assert "List (1)" in html  # the count follows the filter
    assert "Sari Wulandari" in html  # offered in the colleague picker
    # Nonsense is refused with a message and the list shows everyone's.
    for bad in ("x' OR 1=1", "-3", "99999999999999999999"):
        resp = b.get("/admin/tickets/team/", query_string={"assignee": bad})
        assert resp.status_code == 200
        page = resp.get_data(as_text=True)
        assert "is not an assignee filter" in flashes(page)
        assert listed_numbers(page) == {mine.number, theirs.number, nobody.number}
    # Pager and sort links keep the filter.
    assert re.search(r'href="[^"]*sort=\d+[^"]*assignee=me|href="[^"]*assignee=me[^"]*sort=', html)


def test_assignee_filter_stays_inside_the_role_scope(login_as, make, db):
    ops = make.ticket("team", department="OPS")
    claims = make.ticket("team", department="CLAIMS")
    db.session.commit()
    b, me = login_as(perm.ADMIN_DEPARTMENT, department="OPS")
    cs = make.user(perm.CUSTOMER_SERVICE)
    for t in (ops, claims):
        tickets.assign(t, cs, make._master())
    db.session.commit()
    page = b.get(f"/admin/tickets/team/?assignee={cs.id}").get_data(as_text=True)
    assert listed_numbers(page) == {ops.number}


def test_who_spoke_last_column_filter_and_unread_mark(login_as, make, db):
    b, me = login_as(perm.CUSTOMER_SERVICE, locale="en")
    waiting = make.ticket("team")
    answered = make.ticket("responded")
    tickets.assign(waiting, me, make._master())
    tickets.assign(answered, me, make._master())
    db.session.commit()
    html = b.get("/admin/tickets/team/").get_data(as_text=True)
    assert "Spoke last" in html
    row = _row(html, waiting.number)
    assert "Customer" in row and "unread" in row  # never opened by its assignee
    # Opening the desk clears the mark ...
    assert b.get(f"/admin/tickets/desk/{waiting.number}/").status_code == 200
    row = _row(b.get("/admin/tickets/team/").get_data(as_text=True), waiting.number)
    assert "Customer" in row and "unread" not in row
    # ... until the customer writes again.
    t = db.session.get(Ticket, waiting.id)
    tickets.post_message(t, t.customer, "Halo, ada kabar?", now=utcnow() + timedelta(seconds=2))
    db.session.commit()
    row = _row(b.get("/admin/tickets/team/").get_data(as_text=True), waiting.number)
    assert "unread" in row
    # Staff spoke last on the responded ticket: no mark; the filter tells them apart.
    page = b.get("/admin/tickets/responded/").get_data(as_text=True)
    assert "Staff" in _row(page, answered.number) and "unread" not in _row(page, answered.number)
    assert listed_numbers(b.get("/admin/tickets/team/?spoke=customer").get_data(as_text=True)) == {
        waiting.number
    }
    assert listed_numbers(b.get("/admin/tickets/team/?spoke=staff").get_data(as_text=True)) == set()
    assert "is not a" in flashes(b.get("/admin/tickets/team/?spoke=robot").get_data(as_text=True))


def test_unread_is_about_the_assignee_not_whoever_opened_it(login_as, make, db):
    t = make.ticket("team")
    assignee = make.user(perm.CUSTOMER_SERVICE)
    tickets.assign(t, assignee, make._master())
    db.session.commit()
    b, _ = login_as(perm.CUSTOMER_SERVICE)
    b.get(f"/admin/tickets/desk/{t.number}/")  # a colleague opens it
    assert "unread" in _row(b.get("/admin/tickets/team/").get_data(as_text=True), t.number)
    version = db.session.get(Ticket, t.id).version_id
    assert version == t.version_id  # opening a desk never changes the ticket


def test_home_links_mine_unassigned_and_waiting(login_as):
    b, _ = login_as(perm.CUSTOMER_SERVICE, locale="en")
    html = b.get("/admin/").get_data(as_text=True)
    links = html.split('id="queue-links"', 1)[1].split("</nav>", 1)[0]
    assert 'href="/admin/tickets/team/?assignee=me"' in links and ">Mine<" in links
    assert 'href="/admin/tickets/team/?assignee=none"' in links and ">Unassigned<" in links
    assert 'href="/admin/tickets/responded/?assignee=me"' in links
    assert "Waiting for the customer" in links
    dept, _ = login_as(perm.ADMIN_DEPARTMENT, locale="en")
    links = dept.get("/admin/").get_data(as_text=True).split('id="queue-links"', 1)[1]
    links = links.split("</nav>", 1)[0]
    assert ">Mine<" in links and "responded" not in links  # only the lists they see
    indo, _ = login_as(perm.CUSTOMER_SERVICE, locale="id")
    html = indo.get("/admin/").get_data(as_text=True)
    assert "Menunggu pelanggan" in html

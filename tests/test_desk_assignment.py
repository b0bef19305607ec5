"""Assignment (issue 13 item 2): to a named colleague who can see the ticket, from the
desk and in bulk; round-robin per department, skipping agents marked away; fair,
and two tickets filed at the same moment go to two agents."""

from __future__ import annotations

import os
import threading
from collections import Counter

import pytest
from sqlalchemy import select

from backoffice.domain import DomainError, tickets
from backoffice.domain import permissions as perm
from backoffice.models import Department, EventAction, Ticket, TicketEvent, TicketKind, User

from .admin_support import flashes
from .test_admin_desk import act, desk, desk_page, reload

ON_MARIADB = os.environ.get("TEST_DATABASE_URL", "").startswith("mysql")


def test_desk_assigns_to_a_colleague_who_can_see_the_ticket(login_as, make, db):
    t = make.ticket("team", department="OPS")
    sari = make.user(perm.CUSTOMER_SERVICE, name="Sari Wulandari")
    ops_admin = make.user(perm.ADMIN_DEPARTMENT, department="OPS", name="Budi Ops")
    claims_admin = make.user(perm.ADMIN_DEPARTMENT, department="CLAIMS", name="Citra Klaim")
    customer = make.user()
    db.session.commit()
    b, me = login_as(perm.CUSTOMER_SERVICE, locale="en")
    html = desk_page(b, t.number)
    picker = html.split('id="assign-colleague"', 1)[1].split("</form>", 1)[0]
    # Offered: those who can work on it; not the CLAIMS admin, not the customer, not me.
    assert "Sari Wulandari" in picker and "Budi Ops" in picker
    assert "Citra Klaim" not in picker and customer.display_name not in picker
    assert act(b, t.number, "assign", assignee=str(sari.id)).status_code == 302
    assert reload(t).assignee_id == sari.id
    assert act(b, t.number, "assign", assignee=str(ops_admin.id)).status_code == 302
    assert reload(t).assignee_id == ops_admin.id
    # Refused, nothing changed: someone who cannot see it, a customer, nonsense.
    for bad in (str(claims_admin.id), str(customer.id), "x", "99999999999999999999", ""):
        resp = act(b, t.number, "assign", assignee=bad)
        assert resp.status_code == 302, bad
        page = b.get(resp.headers["Location"]).get_data(as_text=True)
        assert "cannot take this ticket" in flashes(page) or "Choose a colleague" in flashes(page)
        assert reload(t).assignee_id == ops_admin.id
    # Without the CSRF token nothing happens.
    b.client.post(
        f"/admin/tickets/desk/{t.number}/assign",
        data={"assignee": "me", "expected_version": reload(t).version_id},
    )
    assert reload(t).assignee_id == ops_admin.id


def test_department_admin_cannot_assign_anyone(login_as, make, db):
    t = make.ticket("team", department="OPS")
    colleague = make.user(perm.ADMIN_DEPARTMENT, department="OPS")
    db.session.commit()
    b, _ = login_as(perm.ADMIN_DEPARTMENT, department="OPS")
    assert 'id="assign-colleague"' not in b.get(desk(t.number)).get_data(as_text=True)
    assert act(b, t.number, "assign", assignee=str(colleague.id)).status_code == 403
    assert reload(t).assignee_id is None


def test_the_one_rule_refuses_in_the_lifecycle_too(make, db):
    t = make.ticket("team", department="OPS")
    away_dept = make.user(perm.ADMIN_DEPARTMENT, department="CLAIMS")
    with pytest.raises(DomainError):
        tickets.assign(t, away_dept, make._master())
    inactive = make.user(perm.CUSTOMER_SERVICE)
    inactive.active = False
    with pytest.raises(DomainError):
        tickets.assign(t, inactive, make._master())
    assert perm.can_work_on(make.user(perm.CUSTOMER_SERVICE), t)


def test_bulk_assign_reports_done_and_refused_rows(login_as, make, db):
    ops = [make.ticket("team", department="OPS") for _ in range(2)]
    claims = make.ticket("team", department="CLAIMS")
    progress = make.ticket("progress")
    target = make.user(perm.ADMIN_DEPARTMENT, department="OPS", name="Budi Ops")
    db.session.commit()
    b, _ = login_as(perm.CUSTOMER_SERVICE, locale="en")
    page = b.get("/admin/tickets/team/").get_data(as_text=True)
    assert 'id="bulk-assignee"' in page and "Budi Ops" in page
    rows = [str(t.id) for t in (*ops, claims, progress)]
    resp = b.post(
        "/admin/tickets/team/action/",
        {"action": "assign", "rowid": rows, "assignee": str(target.id)},
        form_url="/admin/tickets/team/",
    )
    assert resp.status_code == 302
    summary = flashes(b.get("/admin/tickets/team/").get_data(as_text=True))
    assert "2 tickets done." in summary
    assert f"1 refused: {claims.number}:" in summary and "cannot take this ticket" in summary
    assert "1 is not in this list any more." in summary  # the progress ticket
    assert [reload(t).assignee_id for t in ops] == [target.id, target.id]
    assert reload(claims).assignee_id is None and reload(progress).assignee_id is None
    # No token: nothing.
    b.client.post(
        "/admin/tickets/team/action/",
        data={"action": "assign", "rowid": str(claims.id), "assignee": "me"},
    )
    assert reload(claims).assignee_id is None
    # A nonsense assignee: a message, nothing changed.
    b.post(
        "/admin/tickets/team/action/",
        {"action": "assign", "rowid": str(claims.id), "assignee": "nobody'"},
        form_url="/admin/tickets/team/",
    )
    assert "Choose a colleague" in flashes(b.get("/admin/tickets/team/").get_data(as_text=True))
    assert reload(claims).assignee_id is None


def test_department_admin_has_no_bulk_assign(login_as, make, db):
    t = make.ticket("team", department="OPS")
    db.session.commit()
    b, me = login_as(perm.ADMIN_DEPARTMENT, department="OPS")
    assert 'id="bulk-assignee"' not in b.get("/admin/tickets/team/").get_data(as_text=True)
    b.post(
        "/admin/tickets/team/action/",
        {"action": "assign", "rowid": str(t.id), "assignee": "me"},
        form_url="/admin/tickets/team/",
    )
    assert reload(t).assignee_id is None


def _round_robin(db, code="CS", on=True) -> Department:
    dept = db.session.scalar(select(Department).where(Department.code == code))
    dept.round_robin = on
    db.session.commit()
    return dept


def test_round_robin_is_fair_and_skips_agents_who_are_away(make, db):
    dept = _round_robin(db, "CS")
    agents = [make.user(perm.ADMIN_DEPARTMENT, department="CS") for _ in range(3)]
    away = make.user(perm.ADMIN_DEPARTMENT, department="CS", away=True)
    make.user(perm.ADMIN_DEPARTMENT, department="CS").active = False
    make.user(perm.ADMIN_DEPARTMENT, department="OPS")  # another department
    db.session.commit()
    filed = [
        make.ticket("progress", kind=TicketKind.QUESTION)  # routed to CS on filing
        for _ in range(9)
    ]
    db.session.commit()
    assert {t.department_id for t in filed} == {dept.id}
    counts = Counter(t.assignee_id for t in filed)
    assert counts == {a.id: 3 for a in agents}
    assert away.id not in counts
    # In turn, not in bursts: the first three tickets went to three different agents.
    assert len({t.assignee_id for t in filed[:3]}) == 3
    event = db.session.scalar(
        select(TicketEvent).where(
            TicketEvent.ticket_id == filed[0].id, TicketEvent.action == EventAction.ASSIGNED
        )
    )
    assert event is not None and event.actor_id is None  # done by the system
    # A dispatch to a round-robin department assigns too; round-robin off: nobody.
    dispatched = make.ticket("team", department="CS")
    assert dispatched.assignee_id in {a.id for a in agents}
    _round_robin(db, "CS", on=False)
    assert make.ticket("progress", kind=TicketKind.QUESTION).assignee_id is None


def test_round_robin_with_everyone_away_leaves_the_ticket_unassigned(make, db):
    _round_robin(db, "CS")
    make.user(perm.ADMIN_DEPARTMENT, department="CS", away=True)
    db.session.commit()
    t = make.ticket("progress", kind=TicketKind.QUESTION)
    assert t.status.value == "team" and t.assignee_id is None


def test_away_toggle_on_the_home_page(login_as, db):
    b, me = login_as(perm.ADMIN_DEPARTMENT, department="CS", locale="en")
    html = b.get("/admin/").get_data(as_text=True)
    assert "Mark me away" in html
    b.post("/admin/away", form_url="/admin/")
    db.session.expire_all()
    assert db.session.get(User, me.id).away is True
    html = b.get("/admin/").get_data(as_text=True)
    assert "I am back" in html and 'id="away-state"' in html
    # Without the token nothing changes.
    b.client.post("/admin/away")
    db.session.expire_all()
    assert db.session.get(User, me.id).away is True
    b.post("/admin/away", form_url="/admin/")
    db.session.expire_all()
    assert db.session.get(User, me.id).away is False
    # Anonymous: to the login page; a customer: refused.
    anon = b.client.application.test_client()
    assert anon.post("/admin/away").status_code == 302


def test_round_robin_switch_is_on_the_department_form(login_as, make, db):
    b, _ = login_as(perm.MASTER_ADMIN, locale="en")
    dept = make.department("CS")
    html = b.get(f"/admin/departments/edit/?id={dept.id}").get_data(as_text=True)
    assert 'name="round_robin"' in html
    cs, _ = login_as(perm.CUSTOMER_SERVICE)
    assert cs.get(f"/admin/departments/edit/?id={dept.id}").status_code == 403


@pytest.mark.skipif(not ON_MARIADB, reason="real concurrency needs MariaDB (SQLite serialises)")
def test_two_tickets_filed_at_once_go_to_two_agents(app, make, db):
    _round_robin(db, "CS")
    agents = [make.user(perm.ADMIN_DEPARTMENT, department="CS") for _ in range(2)]
    customers = [make.user() for _ in range(2)]
    db.session.commit()
    customer_ids = [c.id for c in customers]
    rounds = 5
    results: dict[int, list[int]] = {i: [] for i in range(rounds)}
    errors: list[Exception] = []
    start = threading.Barrier(2)

    def worker(customer_id):
        with app.app_context():
            try:
                for i in range(rounds):
                    customer = db.session.get(User, customer_id)
                    start.wait(timeout=30)
                    t = tickets.file_ticket(customer, TicketKind.QUESTION, "Serentak", "Bersamaan")
                    db.session.commit()
                    results[i].append(t.assignee_id)
            except Exception as exc:  # reported below
                errors.append(exc)
                start.abort()
            finally:
                db.session.remove()

    threads = [threading.Thread(target=worker, args=(c,)) for c in customer_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    db.session.rollback()  # this thread's snapshot predates the workers' commits
    for i in range(rounds):
        assert sorted(results[i]) == sorted(a.id for a in agents), (i, results[i])
    stored = Counter(
        db.session.scalars(select(Ticket.assignee_id).where(Ticket.customer_id.in_(customer_ids)))
    )
    assert stored == {agents[0].id: rounds, agents[1].id: rounds}

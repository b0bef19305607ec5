"""Bulk actions on the lists (issue 13 item 4) with CSRF on: each row goes through the
lifecycle, refused rows say why, one summary; each role's actions both ways."""

from __future__ import annotations

import pytest

from backoffice.domain import permissions as perm
from backoffice.domain import tickets
from backoffice.models import Priority, TicketStatus

from .admin_support import flashes
from .test_admin_desk import reload

TEAM = "/admin/tickets/team/"


def _bulk(b, url, action, tickets_, **extra):
    return b.post(
        f"{url}action/",
        {"action": action, "rowid": [str(t.id) for t in tickets_], **extra},
        form_url=url,
    )


def _summary(b, url=TEAM) -> str:
    return flashes(b.get(url).get_data(as_text=True))


def test_master_dispatches_progress_tickets_in_bulk(login_as, make, db):
    a, b_ = make.ticket("progress"), make.ticket("progress")
    finished = make.ticket("finished")
    db.session.commit()
    master, _ = login_as(perm.MASTER_ADMIN, locale="en")
    url = "/admin/tickets/progress/"
    page = master.get(url).get_data(as_text=True)
    assert 'id="bulk-department"' in page and 'value="dispatch"' in page.replace(
        "data-admin-action", "value"
    )
    # No department chosen: refused as a whole, nothing changed.
    _bulk(master, url, "dispatch", [a, b_])
    assert "Choose a department" in _summary(master, url)
    assert reload(a).status is TicketStatus.PROGRESS
    ops = make.department("OPS")
    _bulk(master, url, "dispatch", [a, b_, finished], department=str(ops.id))
    summary = _summary(master, url)
    assert "2 tickets done." in summary and "1 is not in this list any more." in summary
    assert {reload(t).status for t in (a, b_)} == {TicketStatus.TEAM}
    assert reload(a).department_id == ops.id


def test_escalate_priority_and_finish_with_allowed_and_refused_rows(login_as, make, db):
    ops1, ops2 = make.ticket("team", department="OPS"), make.ticket("team", department="OPS")
    claims = make.ticket("team", department="CLAIMS")
    db.session.commit()
    cs, _ = login_as(perm.CUSTOMER_SERVICE, locale="en")
    claims_dept = make.department("CLAIMS")
    _bulk(cs, TEAM, "escalate", [ops1, claims], department=str(claims_dept.id))
    summary = _summary(cs)
    assert "1 ticket done." in summary
    assert f"1 refused: {claims.number}: The ticket is already with" in summary
    assert reload(ops1).department_id == claims_dept.id
    _bulk(cs, TEAM, "priority", [ops2, claims], priority="urgent")
    assert "2 tickets done." in _summary(cs)
    assert reload(ops2).priority is Priority.URGENT
    _bulk(cs, TEAM, "priority", [ops2], priority="sangat")
    assert "Choose a priority" in _summary(cs)
    _bulk(cs, TEAM, "finish", [ops2, claims])
    assert "2 tickets done." in _summary(cs)
    assert reload(ops2).status is TicketStatus.FINISHED
    # A row changed by someone else meanwhile is refused alone; the others go through.
    t1, t2 = make.ticket("team"), make.ticket("team")
    tickets.finish(t2, make._master())
    db.session.commit()
    _bulk(cs, TEAM, "finish", [t1, t2])
    summary = _summary(cs)
    assert "1 ticket done." in summary and "1 is not in this list any more." in summary


def test_customer_service_cannot_dispatch_and_department_admin_has_no_bulk(login_as, make, db):
    t = make.ticket("team", department="OPS")
    db.session.commit()
    cs, _ = login_as(perm.CUSTOMER_SERVICE, locale="en")
    page = cs.get(TEAM).get_data(as_text=True)
    assert 'data-admin-action="dispatch"' not in page and 'data-admin-action="escalate"' in page
    claims = make.department("CLAIMS")
    _bulk(cs, TEAM, "dispatch", [t], department=str(claims.id))
    assert reload(t).department_id == make.department("OPS").id
    dept, _ = login_as(perm.ADMIN_DEPARTMENT, department="OPS", locale="en")
    page = dept.get(TEAM).get_data(as_text=True)
    assert 'id="bulk-bar"' not in page
    for action, extra in (
        ("escalate", {"department": str(claims.id)}),
        ("priority", {"priority": "urgent"}),
        ("finish", {}),
    ):
        _bulk(dept, TEAM, action, [t], **extra)
    t = reload(t)
    assert t.status is TicketStatus.TEAM and t.priority is Priority.NORMAL


@pytest.mark.parametrize("action", ["dispatch", "escalate", "priority", "finish"])
def test_bulk_without_csrf_does_nothing(login_as, make, db, action):
    t = make.ticket("team", department="OPS")
    db.session.commit()
    master, _ = login_as(perm.MASTER_ADMIN)
    claims = make.department("CLAIMS")
    master.client.post(
        f"{TEAM}action/",
        data={
            "action": action,
            "rowid": str(t.id),
            "department": str(claims.id),
            "priority": "urgent",
        },
    )
    t = reload(t)
    assert t.status is TicketStatus.TEAM and t.department_id != claims.id
    assert t.priority is Priority.NORMAL

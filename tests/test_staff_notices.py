"""Agent notifications (issue 13 item 8) over HTTP with CSRF on: who gets a notice and
who does not, the count on the home page and in the menu, read on opening the ticket,
the optional digest through the outbox, never twice."""

from __future__ import annotations

import re

from sqlalchemy import select

from backoffice.domain import permissions as perm
from backoffice.domain import staff_notices, tickets
from backoffice.models import NoticeKind, OutboxEmail, StaffNotice

from .test_admin_desk import desk, reload


def menu_count(html: str) -> int:
    found = re.search(r'id="menu-notice-count">(\d+)<', html)
    return int(found.group(1)) if found else 0


def home_count(b) -> int:
    html = b.get("/admin/").get_data(as_text=True)
    return int(re.search(r'id="home-notice-count">(\d+)<', html).group(1))


def notices_of(db, user) -> list[StaffNotice]:
    db.session.expire_all()
    return list(db.session.scalars(select(StaffNotice).where(StaffNotice.user_id == user.id)))


def test_a_customer_reply_on_my_ticket_is_counted_and_read_when_i_open_it(login_as, make, db):
    t = make.ticket("responded", department="OPS")
    other = make.ticket("responded", department="OPS")
    db.session.commit()
    cs, me = login_as(perm.CUSTOMER_SERVICE, locale="en")
    colleague, colleague_user = login_as(perm.CUSTOMER_SERVICE, locale="en")
    tickets.assign(reload(t), me, me)
    tickets.assign(reload(other), colleague_user, colleague_user)
    db.session.commit()
    assert home_count(cs) == 0
    tickets.post_message(reload(t), t.customer, "Paketnya belum sampai.")
    tickets.post_message(reload(t), t.customer, "Tolong dicek lagi.")  # the same notice
    db.session.commit()
    assert home_count(cs) == 1
    assert menu_count(cs.get("/admin/tickets/team/").get_data(as_text=True)) == 1
    page = cs.get("/admin/notifications/").get_data(as_text=True)
    assert t.number in page and "The customer replied" in page
    assert home_count(colleague) == 0  # not theirs
    # Internal notes and staff replies are no notice.
    tickets.post_message(reload(other), make._master(), "Catatan.", internal=True)
    db.session.commit()
    assert home_count(colleague) == 0
    # Opening the ticket reads it.
    assert cs.get(desk(t.number)).status_code == 200
    assert home_count(cs) == 0
    assert all(n.read_at is not None for n in notices_of(db, me))


def test_a_ticket_reaching_my_department_tells_its_admins_and_customer_service(login_as, make, db):
    t = make.ticket("progress")
    db.session.commit()
    ops_admin, ops_admin_user = login_as(perm.ADMIN_DEPARTMENT, department="OPS", locale="en")
    ops_cs, ops_cs_user = login_as(perm.CUSTOMER_SERVICE, department="OPS", locale="en")
    claims_admin, claims_user = login_as(perm.ADMIN_DEPARTMENT, department="CLAIMS")
    cs_elsewhere, cs_elsewhere_user = login_as(perm.CUSTOMER_SERVICE)  # no department
    master, master_user = login_as(perm.MASTER_ADMIN, department="OPS", locale="en")
    tickets.dispatch(reload(t), make.department("OPS"), master_user)
    db.session.commit()
    for browser in (ops_admin, ops_cs):
        assert home_count(browser) == 1
        page = browser.get("/admin/notifications/").get_data(as_text=True)
        assert t.number in page and "New ticket for your department" in page
    for browser in (claims_admin, cs_elsewhere, master):  # master sent it: not told
        assert home_count(browser) == 0
    # Escalated on to CLAIMS: its admin hears it; OPS's notices stay until read.
    tickets.escalate(reload(t), make.department("CLAIMS"), ops_cs_user)
    db.session.commit()
    assert home_count(claims_admin) == 1 and home_count(ops_cs) == 1
    # A notice of a ticket that left one's reach is neither counted nor listed.
    assert t.number not in ops_admin.get("/admin/notifications/").get_data(as_text=True)
    assert home_count(ops_admin) == 0
    assert [n.kind for n in notices_of(db, claims_user)] == [NoticeKind.DEPARTMENT]


def test_notifications_page_is_staff_only_and_mark_all_read_needs_csrf(login_as, make, db, client):
    t = make.ticket("progress")
    db.session.commit()
    ops, ops_user = login_as(perm.ADMIN_DEPARTMENT, department="OPS", locale="en")
    tickets.dispatch(reload(t), make.department("OPS"), make._master())
    db.session.commit()
    customer, _ = login_as(perm.CUSTOMER)
    assert customer.get("/admin/notifications/").status_code == 403
    assert client.get("/admin/notifications/").status_code == 302  # to the login page
    ops.client.post("/admin/notifications/read")  # no CSRF token: nothing read
    assert home_count(ops) == 1
    resp = ops.post("/admin/notifications/read", form_url="/admin/notifications/")
    assert resp.status_code == 302 and home_count(ops) == 0


def _digest_setup(login_as, make, db):
    t = make.ticket("progress", subject="Paket <b>rusak</b>")
    db.session.commit()
    ops, ops_user = login_as(perm.ADMIN_DEPARTMENT, department="OPS", locale="en")
    quiet, quiet_user = login_as(perm.CUSTOMER_SERVICE, department="OPS", locale="en")
    resp = ops.post("/admin/notifications/digest", form_url="/admin/")
    assert resp.status_code == 302
    assert "Stop the email digest" in ops.get("/admin/").get_data(as_text=True)
    tickets.dispatch(reload(t), make.department("OPS"), make._master())
    db.session.commit()
    return t, ops_user, quiet_user


def _digests(db, user) -> list[OutboxEmail]:
    db.session.expire_all()
    return [
        e
        for e in db.session.scalars(select(OutboxEmail).order_by(OutboxEmail.id))
        if user.email in e.recipient and "notifications to look at" in e.subject
    ]


def test_digest_goes_once_to_who_asked_for_it(login_as, make, db, app):
    t, ops_user, quiet_user = _digest_setup(login_as, make, db)
    from backoffice.cli_sla import notices_group

    result = app.test_cli_runner().invoke(notices_group, ["digest"])
    assert result.exit_code == 0 and "1 digests queued" in result.output
    [mail] = _digests(db, ops_user)
    assert t.number in mail.body_text and f"/admin/tickets/desk/{t.number}/" in mail.body_text
    assert "Paket &lt;b&gt;rusak&lt;/b&gt;" in mail.body_html and "<b>rusak" not in mail.body_html
    assert _digests(db, quiet_user) == []  # never switched on
    # Never twice: a second run has nothing new for anyone.
    assert staff_notices.send_digests() == 0
    assert len(_digests(db, ops_user)) == 1
    # A new notice goes in the next digest; a read one never does.
    second = make.ticket("progress")
    third = make.ticket("progress")
    tickets.dispatch(second, make.department("OPS"), make._master())
    tickets.dispatch(third, make.department("OPS"), make._master())
    db.session.commit()
    staff_notices.mark_read(ops_user, reload(third))
    db.session.commit()
    assert staff_notices.send_digests() == 1
    latest = _digests(db, ops_user)[-1]
    assert second.number in latest.body_text and third.number not in latest.body_text
    assert t.number not in latest.body_text


def test_digest_switch_needs_csrf_and_is_staff_only(login_as, make, db):
    ops, ops_user = login_as(perm.ADMIN_DEPARTMENT, department="OPS")
    ops.client.post("/admin/notifications/digest")
    assert reload_user(db, ops_user).notice_digest is False
    customer, _ = login_as(perm.CUSTOMER)
    assert customer.client.post("/admin/notifications/digest").status_code in (400, 403)


def reload_user(db, user):
    from backoffice.models import User

    db.session.expire_all()
    return db.session.get(User, user.id)

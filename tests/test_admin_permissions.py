"""The back office's permissions matrix: role (or anonymous) × URL → expected answer.

Expected answers: a status code, or LOGIN (a redirect to the login page), or
MOVED (a redirect elsewhere, e.g. a Flask-Admin action returning to its list).
Out-of-scope ids sit next to in-scope ones for every details, edit, action,
export, desk, poll and attachment URL. POSTs that would change data carry a
stale `expected_version` (or order status), so a permitted role gets the
conflict answer and nothing changes while the loop runs.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from backoffice.models import Announcement, AnnouncementSend, Ticket, User

from .admin_support import build_world

LOGIN, MOVED = "login", "moved"
ROLES = ("anonymous", "customer", "admin_department", "customer_service", "master_admin")


def row(anon, customer, dept, cs, master):
    return dict(zip(ROLES, (anon, customer, dept, cs, master), strict=True))


MASTER_ONLY = row(LOGIN, 403, 403, 403, 200)
CS_AND_MASTER = row(LOGIN, 403, 403, 200, 200)
ALL_STAFF = row(LOGIN, 403, 200, 200, 200)

# (method, URL template, expected per role, form data or None)
MATRIX = [
    # home and the four lists
    ("GET", "/admin/", ALL_STAFF, None),
    ("GET", "/admin/tickets/progress/", MASTER_ONLY, None),
    ("GET", "/admin/tickets/team/", ALL_STAFF, None),
    ("GET", "/admin/tickets/responded/", CS_AND_MASTER, None),
    ("GET", "/admin/tickets/finished/", CS_AND_MASTER, None),
    ("GET", "/admin/tickets/team/?search={team_claims}", ALL_STAFF, None),
    # details (= redirect to the desk) in and out of scope
    (
        "GET",
        "/admin/tickets/team/details/?id={team_ops_id}",
        row(LOGIN, 403, MOVED, MOVED, MOVED),
        None,
    ),
    (
        "GET",
        "/admin/tickets/team/details/?id={team_claims_id}",
        row(LOGIN, 403, 404, MOVED, MOVED),
        None,
    ),
    ("GET", "/admin/tickets/team/details/?id={progress_id}", row(LOGIN, 403, 404, 404, 404), None),
    ("GET", "/admin/tickets/team/details/?id=abc", row(LOGIN, 403, 404, 404, 404), None),
    (
        "GET",
        "/admin/tickets/progress/details/?id={progress_id}",
        row(LOGIN, 403, 403, 403, MOVED),
        None,
    ),
    (
        "GET",
        "/admin/tickets/finished/details/?id={finished_id}",
        row(LOGIN, 403, 403, MOVED, MOVED),
        None,
    ),
    # operations the lists do not offer
    ("GET", "/admin/tickets/team/edit/?id={team_ops_id}", row(LOGIN, 403, 404, 404, 404), None),
    ("GET", "/admin/tickets/team/new/", row(LOGIN, 403, 404, 404, 404), None),
    ("GET", "/admin/tickets/team/export/csv/", row(LOGIN, 403, 404, 404, 404), None),
    (
        "POST",
        "/admin/tickets/team/delete/",
        row(LOGIN, 403, 404, 404, 404),
        {"id": "{team_ops_id}"},
    ),
    # a list action with an id outside the list (checked after the loop: nothing assigned)
    (
        "POST",
        "/admin/tickets/responded/action/",
        row(LOGIN, 403, 403, MOVED, MOVED),
        {"action": "assign_to_me", "rowid": "{team_claims_id}"},
    ),
    # the desk, its poll and its attachments
    ("GET", "/admin/tickets/desk/{team_ops}/", ALL_STAFF, None),
    ("GET", "/admin/tickets/desk/{team_claims}/", row(LOGIN, 403, 404, 200, 200), None),
    ("GET", "/admin/tickets/desk/{progress}/", row(LOGIN, 403, 404, 404, 200), None),
    ("GET", "/admin/tickets/desk/{responded}/", row(LOGIN, 403, 404, 200, 200), None),
    ("GET", "/admin/tickets/desk/{finished}/", row(LOGIN, 403, 404, 200, 200), None),
    ("GET", "/admin/tickets/desk/CX-0000-999999/", row(LOGIN, 403, 404, 404, 404), None),
    ("GET", "/admin/tickets/desk/?number={team_ops}", row(LOGIN, 403, MOVED, MOVED, MOVED), None),
    ("GET", "/admin/tickets/desk/{team_ops}/poll", ALL_STAFF, None),
    ("GET", "/admin/tickets/desk/{team_claims}/poll", row(LOGIN, 403, 404, 200, 200), None),
    ("GET", "/admin/tickets/desk/{progress}/poll", row(LOGIN, 403, 404, 404, 200), None),
    ("GET", "/admin/tickets/desk/{team_ops}/attachments/{att_ops}", ALL_STAFF, None),
    # the desk's panels (after the first paint, or as pages): the desk's scope, and a
    # panel with nothing for the role (a department admin dispatches and assigns nothing)
    ("GET", "/admin/tickets/desk/{team_ops}/panel/customer", ALL_STAFF, None),
    ("GET", "/admin/tickets/desk/{team_ops}/panel/canned?partial=1", ALL_STAFF, None),
    ("GET", "/admin/tickets/desk/{team_ops}/panel/actions", row(LOGIN, 403, 404, 200, 200), None),
    (
        "GET",
        "/admin/tickets/desk/{team_claims}/panel/customer",
        row(LOGIN, 403, 404, 200, 200),
        None,
    ),
    ("GET", "/admin/tickets/desk/{team_claims}/panel/canned", row(LOGIN, 403, 404, 200, 200), None),
    (
        "GET",
        "/admin/tickets/desk/{team_claims}/panel/actions",
        row(LOGIN, 403, 404, 200, 200),
        None,
    ),
    ("GET", "/admin/tickets/desk/{progress}/panel/customer", row(LOGIN, 403, 404, 404, 200), None),
    ("GET", "/admin/tickets/desk/{progress}/panel/canned", row(LOGIN, 403, 404, 404, 200), None),
    (
        "GET",
        "/admin/tickets/desk/{progress}/panel/actions?partial=1",
        row(LOGIN, 403, 404, 404, 200),
        None,
    ),
    ("GET", "/admin/tickets/desk/{team_ops}/panel/other", row(LOGIN, 403, 404, 404, 404), None),
    (
        "GET",
        "/admin/tickets/desk/{team_claims}/attachments/{att_claims}",
        row(LOGIN, 403, 404, 200, 200),
        None,
    ),
    (
        "GET",
        "/admin/tickets/desk/{team_ops}/attachments/{att_claims}",
        row(LOGIN, 403, 404, 404, 404),
        None,
    ),
    (
        "GET",
        "/admin/tickets/desk/{progress}/attachments/{att_progress}",
        row(LOGIN, 403, 404, 404, 200),
        None,
    ),
    (
        "POST",
        "/admin/tickets/desk/{team_claims}/reply",
        row(LOGIN, 403, 404, 409, 409),
        {"body": "stale", "visibility": "public", "expected_version": "0"},
    ),
    (
        "POST",
        "/admin/tickets/desk/{progress}/dispatch",
        row(LOGIN, 403, 404, 404, 409),
        {"department": "{ops_id}", "expected_version": "0"},
    ),
    (
        "POST",
        "/admin/tickets/desk/{finished}/reopen",
        row(LOGIN, 403, 404, 409, 409),
        {"expected_version": "0"},
    ),
    (
        "POST",
        "/admin/tickets/desk/{team_ops}/finish",
        row(LOGIN, 403, 409, 409, 409),
        {"expected_version": "0"},
    ),
    ("GET", "/admin/tickets/desk/{team_ops}/reply", row(405, 405, 405, 405, 405), None),
    # reports: master admin only
    ("GET", "/admin/reports/", MASTER_ONLY, None),
    ("GET", "/admin/reports/tickets.csv", MASTER_ONLY, None),
    ("GET", "/admin/reports/tickets.xlsx", MASTER_ONLY, None),
    ("GET", "/admin/reports/summary.csv", MASTER_ONLY, None),
    (
        "GET",
        "/admin/reports/tickets.csv?date_from=2026-02-01&date_to=2026-01-01",
        row(LOGIN, 403, 403, 403, 400),
        None,
    ),
    # the SLA and per-agent reports: master admin only (a reversed range is the form's 400)
    ("GET", "/admin/reports/sla/", MASTER_ONLY, None),
    ("GET", "/admin/reports/sla.csv", MASTER_ONLY, None),
    (
        "GET",
        "/admin/reports/sla.csv?date_from=2026-02-01&date_to=2026-01-01",
        row(LOGIN, 403, 403, 403, 400),
        None,
    ),
    ("GET", "/admin/agent-report/", MASTER_ONLY, None),
    ("GET", "/admin/agent-report/agents.csv", MASTER_ONLY, None),
    (
        "GET",
        "/admin/agent-report/agents.csv?date_from=2026-02-01&date_to=2026-01-01",
        row(LOGIN, 403, 403, 403, 400),
        None,
    ),
    # the agent's notifications: every staff member, their own
    ("GET", "/admin/notifications/", ALL_STAFF, None),
    ("POST", "/admin/notifications/read", row(LOGIN, 403, MOVED, MOVED, MOVED), {}),
    ("GET", "/admin/notifications/read", row(405, 405, 405, 405, 405), None),
    ("POST", "/admin/notifications/digest", row(LOGIN, 403, MOVED, MOVED, MOVED), {}),
    # the desk's thumbnails: as their attachments
    ("GET", "/admin/tickets/desk/{team_ops}/attachments/{att_ops}/thumbnail", ALL_STAFF, None),
    (
        "GET",
        "/admin/tickets/desk/{team_claims}/attachments/{att_claims}/thumbnail",
        row(LOGIN, 403, 404, 200, 200),
        None,
    ),
    (
        "GET",
        "/admin/tickets/desk/{team_ops}/attachments/{att_claims}/thumbnail",
        row(LOGIN, 403, 404, 404, 404),
        None,
    ),
    # the desk's merge, parcel link and WhatsApp template (stale versions: nothing changes)
    (
        "POST",
        "/admin/tickets/desk/{team_claims}/merge",
        row(LOGIN, 403, 404, 409, 409),
        {"into": "{team_ops}", "expected_version": "0"},
    ),
    (
        "POST",
        "/admin/tickets/desk/{team_ops}/merge",
        row(LOGIN, 403, MOVED, MOVED, 409),  # only the master admin's lists hold Progress
        {"into": "{progress}", "expected_version": "0"},
    ),
    (
        "POST",
        "/admin/tickets/desk/{progress}/merge",
        row(LOGIN, 403, 404, 404, 409),
        {"into": "{team_ops}", "expected_version": "0"},
    ),
    (
        "POST",
        "/admin/tickets/desk/{team_claims}/parcel",
        row(LOGIN, 403, 404, 409, 409),
        {"resi": "{resi}", "expected_version": "0"},
    ),
    (
        "POST",
        "/admin/tickets/desk/{team_ops}/parcel",
        row(LOGIN, 403, 409, 409, 409),
        {"resi": "{resi}", "expected_version": "0"},
    ),
    (
        "POST",
        "/admin/tickets/desk/{team_claims}/whatsapp-template",
        row(LOGIN, 403, 404, 409, 409),
        {"template_id": "{wa_template_id}", "params-0": "x", "expected_version": "0"},
    ),
    ("GET", "/admin/tickets/desk/{team_ops}/merge", row(405, 405, 405, 405, 405), None),
    # WhatsApp templates: content, master admin only
    ("GET", "/admin/whatsapp-templates/", MASTER_ONLY, None),
    ("GET", "/admin/whatsapp-templates/new/", MASTER_ONLY, None),
    ("GET", "/admin/whatsapp-templates/edit/?id={wa_template_id}", MASTER_ONLY, None),
    ("GET", "/admin/whatsapp-templates/edit/?id=999999", row(LOGIN, 403, 403, 403, 404), None),
    ("GET", "/admin/whatsapp-templates/export/csv/", row(LOGIN, 403, 403, 403, 404), None),
    (
        "POST",
        "/admin/whatsapp-templates/delete/",
        row(LOGIN, 403, 403, 403, 404),
        {"id": "999999"},
    ),
    # people
    ("GET", "/admin/staff/", MASTER_ONLY, None),
    ("GET", "/admin/staff/new/", MASTER_ONLY, None),
    ("GET", "/admin/staff/edit/?id={staff_id}", MASTER_ONLY, None),
    ("GET", "/admin/staff/details/?id={staff_id}", MASTER_ONLY, None),
    ("GET", "/admin/staff/edit/?id={customer_id}", row(LOGIN, 403, 403, 403, 404), None),
    ("GET", "/admin/staff/details/?id={customer_id}", row(LOGIN, 403, 403, 403, 404), None),
    ("GET", "/admin/staff/export/csv/", row(LOGIN, 403, 403, 403, 404), None),
    (
        "POST",
        "/admin/staff/action/",
        row(LOGIN, 403, 403, 403, MOVED),
        {"action": "deactivate", "rowid": "{customer_id}"},
    ),
    ("GET", "/admin/departments/", MASTER_ONLY, None),
    ("GET", "/admin/departments/new/", MASTER_ONLY, None),
    ("GET", "/admin/departments/edit/?id={ops_id}", MASTER_ONLY, None),
    ("POST", "/admin/departments/delete/", row(LOGIN, 403, 403, 403, 404), {"id": "{ops_id}"}),
    ("GET", "/admin/routing_rules/", MASTER_ONLY, None),
    ("GET", "/admin/routing_rules/new/", MASTER_ONLY, None),
    ("GET", "/admin/business-hours/", MASTER_ONLY, None),
    ("GET", "/admin/business-hours/new/", MASTER_ONLY, None),
    ("GET", "/admin/company-days/", MASTER_ONLY, None),
    ("GET", "/admin/company-days/new/", MASTER_ONLY, None),
    # content
    ("GET", "/admin/faq_categories/", MASTER_ONLY, None),
    ("GET", "/admin/faq/", MASTER_ONLY, None),
    ("GET", "/admin/faq/new/", MASTER_ONLY, None),
    ("GET", "/admin/products/", MASTER_ONLY, None),
    ("GET", "/admin/products/new/", MASTER_ONLY, None),
    ("GET", "/admin/announcements/", MASTER_ONLY, None),
    ("GET", "/admin/announcements/new/", MASTER_ONLY, None),
    ("GET", "/admin/announcements/send/?id={ann_id}", MASTER_ONLY, None),
    ("GET", "/admin/announcements/send/?id={ann_id}&audience=all", MASTER_ONLY, None),
    ("GET", "/admin/announcements/send/?id=999999", row(LOGIN, 403, 403, 403, 404), None),
    (
        "POST",
        "/admin/announcements/send/confirm/?id={ann_id}",
        row(LOGIN, 403, 403, 403, MOVED),
        {"audience": "all", "value": "", "expected_count": "999999", "seen_sends": "0"},
    ),
    (
        "POST",
        "/admin/announcements/publish/?id={ann_id}",
        row(LOGIN, 403, 403, 403, MOVED),
        {"published": "maybe"},
    ),
    ("GET", "/admin/announcements/log/", MASTER_ONLY, None),
    # customers, read-only
    ("GET", "/admin/customers/", CS_AND_MASTER, None),
    ("GET", "/admin/customers/details/?id={customer_id}", CS_AND_MASTER, None),
    ("GET", "/admin/customers/details/?id={staff_id}", row(LOGIN, 403, 403, 404, 404), None),
    ("GET", "/admin/customers/edit/?id={customer_id}", row(LOGIN, 403, 403, 404, 404), None),
    ("GET", "/admin/customers/new/", row(LOGIN, 403, 403, 404, 404), None),
    ("GET", "/admin/customers/export.csv", MASTER_ONLY, None),
    ("GET", "/admin/customers/export.csv?segment=vip", row(LOGIN, 403, 403, 403, 400), None),
    # orders
    ("GET", "/admin/orders/", CS_AND_MASTER, None),
    ("GET", "/admin/orders/details/?id={order_id}", CS_AND_MASTER, None),
    ("GET", "/admin/orders/details/?id=999999", row(LOGIN, 403, 403, 404, 404), None),
    ("GET", "/admin/orders/edit/?id={order_id}", row(LOGIN, 403, 403, 404, 404), None),
    (
        "POST",
        "/admin/orders/status/?id={order_id}",
        row(LOGIN, 403, 403, MOVED, MOVED),
        {"seen": "delivered", "to": "picked_up"},
    ),
    # held inbound email (a posted one is out of the list's scope: 404, nothing changes)
    ("GET", "/admin/mail-review/", CS_AND_MASTER, None),
    ("GET", "/admin/mail-review/details/?id={held_mail_id}", CS_AND_MASTER, None),
    (
        "GET",
        "/admin/mail-review/details/?id={posted_mail_id}",
        row(LOGIN, 403, 403, 404, 404),
        None,
    ),
    ("GET", "/admin/mail-review/edit/?id={held_mail_id}", row(LOGIN, 403, 403, 404, 404), None),
    (
        "POST",
        "/admin/mail-review/accept/?id={posted_mail_id}",
        row(LOGIN, 403, 403, 404, 404),
        {},
    ),
    (
        "POST",
        "/admin/mail-review/reject/?id={posted_mail_id}",
        row(LOGIN, 403, 403, 404, 404),
        {},
    ),
]


def _ids(world, make) -> dict:
    return {
        "progress": world.progress.number,
        "team_ops": world.team_ops.number,
        "team_claims": world.team_claims.number,
        "responded": world.responded.number,
        "finished": world.finished.number,
        "progress_id": world.progress.id,
        "team_ops_id": world.team_ops.id,
        "team_claims_id": world.team_claims.id,
        "finished_id": world.finished.id,
        "att_ops": world.att_ops.id,
        "att_claims": world.att_claims.id,
        "att_progress": world.att_progress.id,
        "customer_id": world.customer.id,
        "staff_id": world.staff.id,
        "order_id": world.order.id,
        "ops_id": make.department("OPS").id,
        "ann_id": _announcement(make).id,
        "resi": world.order.resi,
        "wa_template_id": _wa_template(make).id,
        **_inbound_mails(make),
    }


def _inbound_mails(make) -> dict:
    from backoffice.models import InboundEmail, InboundReason, InboundStatus
    from backoffice.models.base import utcnow

    rows = {}
    for key, status in (("held_mail_id", "held"), ("posted_mail_id", "posted")):
        mail = InboundEmail(
            dedup_key=key.ljust(64, "0"),
            raw=b"From: x@example.net\r\nSubject: s\r\n\r\nbody\r\n",
            status=InboundStatus(status),
            reason=InboundReason.WRONG_SENDER if status == "held" else None,
            processed_at=utcnow(),
        )
        make.db.session.add(mail)
        make.db.session.flush()
        rows[key] = mail.id
    make.db.session.commit()
    return rows


def _wa_template(make):
    from backoffice.models import WhatsAppTemplate, WhatsAppTemplateUse

    template = WhatsAppTemplate(
        name="audit_reply",
        language="id",
        use=WhatsAppTemplateUse.DESK,
        parameters='["nama_pelanggan"]',
        body="Halo {{1}}",
        active=True,
    )
    make.db.session.add(template)
    make.db.session.commit()
    return template


def _announcement(make) -> Announcement:
    ann = Announcement(title_id="Kabar", body_id="Isi kabar.")
    make.db.session.add(ann)
    make.db.session.commit()
    return ann


def _outcome(resp) -> str | int:
    if resp.status_code in (301, 302, 303):
        return LOGIN if "/login" in resp.headers["Location"] else MOVED
    return resp.status_code


@pytest.mark.parametrize("role", ROLES)
def test_permissions_matrix(role, app, db, make, client, login_as):
    world = build_world(make, db)
    ids = _ids(world, make)
    if role == "anonymous":
        browser = None
    else:
        browser, _user = login_as(role, department="OPS" if role == "admin_department" else None)
    http = browser.client if browser else client
    token = browser.token("/admin/") if role in ROLES[2:] else None

    mismatches = []
    for method, template, expected, data in MATRIX:
        url = template.format(**ids)
        if method == "GET":
            resp = http.get(url)
        else:
            form = {k: v.format(**ids) for k, v in (data or {}).items()}
            if token:
                form["csrf_token"] = token
            resp = http.post(url, data=form)
        got = _outcome(resp)
        resp.close()  # a sent file stays open until the response is closed
        if got != expected[role]:
            mismatches.append(f"{method} {url}: expected {expected[role]}, got {got}")
    assert mismatches == [], "\n".join(mismatches)

    # The refused or conflicting POSTs changed nothing.
    db.session.expire_all()
    claims = db.session.get(Ticket, world.team_claims.id)
    assert claims.assignee_id is None
    assert claims.status.value == "team"
    assert db.session.get(Ticket, world.finished.id).status.value == "finished"
    assert db.session.get(Ticket, world.progress.id).status.value == "progress"
    assert db.session.get(Ticket, world.team_ops.id).status.value == "team"
    merged = select(Ticket.id).where(Ticket.merged_into_id.is_not(None))
    assert db.session.scalar(merged) is None
    assert db.session.get(Ticket, world.team_ops.id).order_id is None  # no parcel linked
    assert db.session.get(User, world.customer.id).active
    assert world.order.status.value == "placed"
    assert db.session.scalar(select(Ticket.id).where(Ticket.subject == "stale")) is None
    assert db.session.scalar(select(AnnouncementSend.id)) is None
    assert db.session.scalar(select(Announcement.published)) is False
    from backoffice.models import InboundEmail

    statuses = db.session.scalars(select(InboundEmail.status).order_by(InboundEmail.id)).all()
    assert [s.value for s in statuses] == ["held", "posted"]

"""The ticket desk through HTTP with CSRF on: every action, conflicts, live updates, files."""

from __future__ import annotations

import io
import re
from datetime import timedelta

from sqlalchemy import select

from backoffice.domain import permissions as perm
from backoffice.domain import tickets
from backoffice.models import Priority, Ticket, TicketMessage, TicketStatus
from backoffice.models.base import utcnow

from .admin_support import PNG, build_world, flashes


def desk(number: str) -> str:
    return f"/admin/tickets/desk/{number}/"


PANEL_SLOT = re.compile(
    r'(<div class="[^"]*desk-panel[^"]*" id="[^"]+" data-panel-url="([^"]+)">).*?(</div>)', re.S
)


def desk_page(b, number: str, **args) -> str:
    """The desk as a browser with JavaScript shows it: each panel's link replaced by the
    panel (`?partial=1`), as admin-desk.js does after the page."""
    html = b.get(desk(number), query_string=args).get_data(as_text=True)

    def fill(match):
        resp = b.get(match.group(2).replace("&amp;", "&"))
        assert resp.status_code == 200, (match.group(2), resp.status_code)
        return match.group(1) + resp.get_data(as_text=True) + match.group(3)

    return PANEL_SLOT.sub(fill, html)


def version_on(html: str) -> str:
    return re.search(r'name="expected_version" type="hidden" value="(\d+)"', html).group(1)


def act(b, number: str, action: str, **data):
    """POST one desk form with the CSRF token and the version shown on the desk page."""
    page = b.get(desk(number)).get_data(as_text=True)
    data.setdefault("expected_version", version_on(page))
    return b.post(f"/admin/tickets/desk/{number}/{action}", data, form_url=desk(number))


def reload(ticket: Ticket) -> Ticket:
    from backoffice.extensions import db

    db.session.expire_all()
    return db.session.get(Ticket, ticket.id)


def test_desk_shows_the_conversation_context_and_allowed_buttons(login_as, make, db):
    w = build_world(make, db)
    tickets.post_message(w.team_ops, make._master(), "Catatan <script>x</script>", internal=True)
    db.session.commit()
    b, _ = login_as(perm.CUSTOMER_SERVICE, locale="en")
    html = desk_page(b, w.team_ops.number)
    assert "msg-customer" in html and "msg-internal" in html
    assert "&lt;script&gt;x&lt;/script&gt;" in html and "<script>x" not in html
    assert f"/admin/tickets/desk/{w.team_ops.number}/attachments/{w.att_ops.id}" in html
    assert "Timeline" in html and "Filed" in html and "Dispatched" in html
    assert w.order.number in html  # the customer's orders in the summary
    assert w.progress.number not in html  # a progress ticket is outside CS's lists
    for action in ("reply", "dispatch", "priority", "assign", "finish"):
        assert f"/{action}" in html, action
    assert "/reopen" not in html
    assert 'value="internal"' in html and 'value="public"' in html
    assert "admin-desk.js" in html and "<script>" not in html.split("</nav>", 1)[1]

    dept, _ = login_as(perm.ADMIN_DEPARTMENT, department="OPS", locale="en")
    html = desk_page(dept, w.team_ops.number)
    for action in ("dispatch", "priority", "assign", "finish", "reopen"):
        assert f"/{action}" not in html, action
    assert "/reply" in html


def test_public_reply_moves_the_ticket_and_sets_first_response(login_as, make, db):
    t = make.ticket("team")
    db.session.commit()
    b, user = login_as(perm.CUSTOMER_SERVICE)
    resp = act(b, t.number, "reply", body="Paket Anda sedang dikirim.", visibility="public")
    assert resp.status_code == 302 and resp.headers["Location"].endswith(desk(t.number))
    t = reload(t)
    assert t.status is TicketStatus.RESPONDED and t.first_response_at is not None
    msg = db.session.scalars(select(TicketMessage).order_by(TicketMessage.id.desc())).first()
    assert (msg.body, msg.internal, msg.from_staff, msg.author_id) == (
        "Paket Anda sedang dikirim.",
        False,
        True,
        user.id,
    )


def test_internal_note_keeps_the_status(login_as, make, db):
    t = make.ticket("team", department="OPS")
    db.session.commit()
    b, _ = login_as(perm.ADMIN_DEPARTMENT, department="OPS")
    resp = act(b, t.number, "reply", body="Cek gudang Cakung.", visibility="internal")
    assert resp.status_code == 302
    t = reload(t)
    assert t.status is TicketStatus.TEAM and t.first_response_at is None
    note = db.session.scalar(
        select(TicketMessage).where(TicketMessage.body == "Cek gudang Cakung.")
    )
    assert note.internal and note.from_staff


def test_department_admin_reply_sends_the_ticket_out_of_their_list(login_as, make, db):
    """…but not out of their desk (docs/architecture.md §1; more in tests/test_desk_traps.py)."""
    t = make.ticket("team", department="OPS")
    db.session.commit()
    b, _ = login_as(perm.ADMIN_DEPARTMENT, department="OPS", locale="en")
    resp = act(b, t.number, "reply", body="Sudah kami proses.", visibility="public")
    assert resp.status_code == 302
    assert resp.headers["Location"].endswith(desk(t.number))
    page = b.get(resp.headers["Location"]).get_data(as_text=True)
    assert "has left your list" in flashes(page)
    assert t.number not in b.get("/admin/tickets/team/").get_data(as_text=True)
    assert reload(t).status is TicketStatus.RESPONDED


def test_reply_with_attachment_is_served_to_staff_only(login_as, make, db, client):
    t = make.ticket("team")
    db.session.commit()
    b, _ = login_as(perm.CUSTOMER_SERVICE)
    page = b.get(desk(t.number)).get_data(as_text=True)
    resp = b.post(
        f"/admin/tickets/desk/{t.number}/reply",
        {
            "body": "Bukti foto terlampir.",
            "visibility": "public",
            "expected_version": version_on(page),
            "attachment": (io.BytesIO(PNG), "bukti.png"),
        },
        form_url=desk(t.number),
        content_type="multipart/form-data",
    )
    assert resp.status_code == 302
    html = b.get(desk(t.number)).get_data(as_text=True)
    url = re.search(r'href="(/admin/tickets/desk/[^"]+/attachments/\d+)"', html).group(1)
    with b.get(url) as got:
        assert got.status_code == 200 and got.mimetype == "image/png"
        assert got.get_data() == PNG
        assert got.headers["Cache-Control"] == "private, no-store"
    with client.get(url) as anon:
        assert anon.status_code == 302


def test_bad_attachment_keeps_the_text(login_as, make, db):
    t = make.ticket("team")
    db.session.commit()
    b, _ = login_as(perm.CUSTOMER_SERVICE, locale="en")
    page = b.get(desk(t.number)).get_data(as_text=True)
    resp = b.post(
        f"/admin/tickets/desk/{t.number}/reply",
        {
            "body": "Teks yang panjang",
            "visibility": "public",
            "expected_version": version_on(page),
            "attachment": (io.BytesIO(b"MZ not an image"), "virus.exe"),
        },
        form_url=desk(t.number),
        content_type="multipart/form-data",
    )
    assert resp.status_code == 422
    html = resp.get_data(as_text=True)
    assert "Only JPEG, PNG and PDF" in html and "Teks yang panjang</textarea>" in html
    assert reload(t).status is TicketStatus.TEAM


def test_dispatch_escalate_priority_assign_finish_reopen(login_as, make, db):
    t = make.ticket("progress")
    db.session.commit()
    master, master_user = login_as(perm.MASTER_ADMIN, locale="en")
    ops, claims = make.department("OPS"), make.department("CLAIMS")

    assert act(master, t.number, "dispatch", department=str(ops.id)).status_code == 302
    t = reload(t)
    assert (t.status, t.department_id) == (TicketStatus.TEAM, ops.id)

    cs, cs_user = login_as(perm.CUSTOMER_SERVICE, locale="en")
    assert act(cs, t.number, "dispatch", department=str(claims.id)).status_code == 302
    t = reload(t)
    assert (t.status, t.department_id) == (TicketStatus.TEAM, claims.id)
    html = cs.get(desk(t.number)).get_data(as_text=True)
    assert "Escalated" in html

    due = t.first_response_due
    assert act(cs, t.number, "priority", priority="urgent").status_code == 302
    t = reload(t)
    assert t.priority is Priority.URGENT and t.first_response_due < due

    assert act(cs, t.number, "assign", assignee="me").status_code == 302
    assert reload(t).assignee_id == cs_user.id
    assert "Unassign me" in cs.get(desk(t.number)).get_data(as_text=True)
    assert act(cs, t.number, "assign", assignee="none").status_code == 302
    assert reload(t).assignee_id is None

    assert act(cs, t.number, "finish", note="Selesai").status_code == 302
    t = reload(t)
    assert t.status is TicketStatus.FINISHED and t.finished_at is not None

    assert act(master, t.number, "reopen").status_code == 302
    t = reload(t)
    assert t.status is TicketStatus.TEAM and t.reopen_count == 1


def test_actions_outside_the_role_are_refused(login_as, make, db):
    t = make.ticket("team", department="OPS")
    db.session.commit()
    dept, _ = login_as(perm.ADMIN_DEPARTMENT, department="OPS", locale="en")
    assert act(dept, t.number, "finish").status_code == 403
    assert act(dept, t.number, "priority", priority="high").status_code == 403
    assert (
        act(dept, t.number, "dispatch", department=str(make.department("CLAIMS").id)).status_code
        == 403
    )
    t = reload(t)
    assert t.status is TicketStatus.TEAM and t.priority is Priority.NORMAL
    cs, _ = login_as(perm.CUSTOMER_SERVICE, locale="en")
    finished = make.ticket("finished")
    db.session.commit()
    # A finished ticket takes no public reply: the rule's message, the text kept.
    resp = act(cs, finished.number, "reply", body="Halo lagi", visibility="public")
    assert resp.status_code == 422
    assert "Reopen it" in resp.get_data(as_text=True)


def test_posts_without_csrf_change_nothing(login_as, make, db):
    t = make.ticket("team")
    db.session.commit()
    b, _ = login_as(perm.CUSTOMER_SERVICE)
    resp = b.client.post(
        f"/admin/tickets/desk/{t.number}/finish", data={"expected_version": t.version_id}
    )
    assert resp.status_code == 400
    resp = b.client.post(
        f"/admin/tickets/desk/{t.number}/reply",
        data={"expected_version": t.version_id, "body": "x", "visibility": "public"},
    )
    assert resp.status_code == 400
    assert "x</textarea>" in resp.get_data(as_text=True)
    assert reload(t).status is TicketStatus.TEAM


def test_two_staff_on_one_ticket_conflict_without_overwrite(login_as, make, db):
    t = make.ticket("team")
    db.session.commit()
    alice, _ = login_as(perm.CUSTOMER_SERVICE, name="Alice", locale="en")
    bob, _ = login_as(perm.CUSTOMER_SERVICE, name="Bob", locale="en")
    alice_page = alice.get(desk(t.number)).get_data(as_text=True)
    bob_page = bob.get(desk(t.number)).get_data(as_text=True)
    assert version_on(alice_page) == version_on(bob_page)

    resp = alice.post(
        f"/admin/tickets/desk/{t.number}/reply",
        {
            "body": "Jawaban Alice",
            "visibility": "public",
            "expected_version": version_on(alice_page),
        },
        form_url=desk(t.number),
    )
    assert resp.status_code == 302
    resp = bob.post(
        f"/admin/tickets/desk/{t.number}/reply",
        {
            "body": "Jawaban Bob yang lama",
            "visibility": "public",
            "expected_version": version_on(bob_page),
        },
        form_url=desk(t.number),
    )
    assert resp.status_code == 409
    html = resp.get_data(as_text=True)
    assert "changed by someone else" in html
    assert "Jawaban Bob yang lama</textarea>" in html  # nothing typed is lost
    assert "Jawaban Alice" in html  # the redrawn page shows what changed
    bodies = db.session.scalars(select(TicketMessage.body).where(TicketMessage.ticket_id == t.id))
    assert "Jawaban Bob yang lama" not in list(bodies)

    # Bob's redrawn form carries the new version: sending again works.
    resp = bob.post(
        f"/admin/tickets/desk/{t.number}/reply",
        {"body": "Jawaban Bob", "visibility": "internal", "expected_version": version_on(html)},
        form_url=desk(t.number),
    )
    assert resp.status_code == 302

    # A stale finish is refused the same way.
    resp = alice.post(
        f"/admin/tickets/desk/{t.number}/finish",
        {"expected_version": version_on(alice_page)},
        form_url=desk(t.number),
    )
    assert resp.status_code == 409
    assert reload(t).status is TicketStatus.RESPONDED


def test_poll_answers_304_until_something_changes(login_as, make, db):
    t = make.ticket("team")
    db.session.commit()
    b, _ = login_as(perm.CUSTOMER_SERVICE)
    page = b.get(desk(t.number)).get_data(as_text=True)
    last_id = re.search(r'data-last-id="(\d+)"', page).group(1)
    poll = f"/admin/tickets/desk/{t.number}/poll?after={last_id}"
    first = b.get(poll, headers={"Accept": "application/json"})
    assert first.status_code == 200 and first.json["messages"] == []
    etag = first.headers["ETag"]
    again = b.get(poll, headers={"If-None-Match": etag})
    assert again.status_code == 304

    tickets.post_message(t, t.customer, "Pesan baru <img src=x onerror=alert(1)>")
    db.session.commit()
    changed = b.get(poll, headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    (message,) = changed.json["messages"]
    assert "Pesan baru &lt;img" in message["html"] and "<img" not in message["html"]
    assert "msg-customer" in message["html"]
    assert changed.json["state"].startswith("team|")
    assert changed.json["last_id"] == message["id"]


def test_poll_of_a_ticket_out_of_scope_is_404(login_as, make, db):
    t = make.ticket("team", department="CLAIMS")
    db.session.commit()
    b, _ = login_as(perm.ADMIN_DEPARTMENT, department="OPS")
    resp = b.get(f"/admin/tickets/desk/{t.number}/poll", headers={"Accept": "application/json"})
    assert resp.status_code == 404 and resp.is_json


def test_open_by_number(login_as, make, db):
    t = make.ticket("team")
    db.session.commit()
    b, _ = login_as(perm.CUSTOMER_SERVICE, locale="en")
    resp = b.get(f"/admin/tickets/desk/?number={t.number.lower()}")
    assert resp.status_code == 302 and resp.headers["Location"].endswith(desk(t.number))
    resp = b.get("/admin/tickets/desk/?number=CX-1999-000001", follow_redirects=True)
    assert "No ticket CX-1999-000001" in resp.get_data(as_text=True)


def test_note_on_a_finished_ticket_keeps_its_finish_time(login_as, make, db):
    """Regression: notes, assignments and ratings once moved finished_at to their own time."""
    t = make.ticket("finished", now=utcnow() - timedelta(days=2))
    db.session.commit()
    finished_at = reload(t).finished_at
    b, _ = login_as(perm.CUSTOMER_SERVICE)
    assert act(b, t.number, "reply", body="Catatan audit", visibility="internal").status_code == 302
    assert act(b, t.number, "assign", assignee="me").status_code == 302
    t = reload(t)
    assert t.status is TicketStatus.FINISHED and t.finished_at == finished_at

"""The traps of issue 13 item 10, over HTTP with CSRF on: each with the test that
failed before its fix."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select

from backoffice.domain import permissions as perm
from backoffice.domain import tickets
from backoffice.models import EventAction, TicketEvent, TicketKind, TicketMessage, TicketStatus
from backoffice.models.base import utcnow
from backoffice.views.dashboard import master_figures

from .admin_support import PNG, attach, flashes
from .test_admin_desk import act, desk, desk_page, reload
from .test_admin_reports import read_csv
from .test_desk_bulk import _bulk, _summary


def status_of(browser, url: str) -> int:
    """The status of a GET, with the response closed (files are streamed)."""
    with browser.get(url) as resp:
        return resp.status_code


# --- a department admin who replied keeps the desk (docs/architecture.md §1) ---------------------


def _replied_by_department_admin(login_as, make, db):
    t = make.ticket("team", department="OPS")
    photo = attach(t, t.customer)
    db.session.commit()
    b, admin = login_as(perm.ADMIN_DEPARTMENT, department="OPS", locale="en")
    resp = act(b, t.number, "reply", body="Sudah kami proses.", visibility="public")
    assert resp.status_code == 302
    return t, photo, b, admin, resp


def test_department_admin_who_replied_keeps_the_desk_to_read_and_note(login_as, make, db):
    t, photo, b, admin, resp = _replied_by_department_admin(login_as, make, db)
    assert reload(t).status is TicketStatus.RESPONDED
    # Back at the desk, told the ticket left the list (it did: the list is Team only).
    assert resp.headers["Location"].endswith(desk(t.number))
    page = b.get(resp.headers["Location"]).get_data(as_text=True)
    assert "has left your list" in flashes(page)
    assert "Sudah kami proses." in page
    assert t.number not in b.get("/admin/tickets/team/").get_data(as_text=True)
    # Read: the desk, its poll, the customer's photo (file and thumbnail).
    assert b.get(f"{desk(t.number)}poll").status_code == 200
    base = f"{desk(t.number)}attachments/{photo.id}"
    assert status_of(b, base) == 200 and status_of(b, f"{base}/thumbnail") == 200
    # Note: allowed, and the status stays.
    assert 'value="internal"' in page and 'value="public"' not in page
    assert act(b, t.number, "reply", body="Cek gudang.", visibility="internal").status_code == 302
    assert reload(t).status is TicketStatus.RESPONDED
    assert db.session.scalar(
        select(TicketMessage).where(TicketMessage.body == "Cek gudang.", TicketMessage.internal)
    )
    # The customer answers: back in Team, in the list, a reply is theirs again.
    tickets.post_message(reload(t), t.customer, "Terima kasih, tapi belum sampai.")
    db.session.commit()
    assert t.number in b.get("/admin/tickets/team/").get_data(as_text=True)
    assert 'value="public"' in b.get(desk(t.number)).get_data(as_text=True)


def test_department_admin_off_the_list_may_not_do_more_than_note(login_as, make, db):
    t, _photo, b, admin, _resp = _replied_by_department_admin(login_as, make, db)
    # A second public reply (Responded → Responded) is customer service's, not theirs.
    resp = act(b, t.number, "reply", body="Tambahan.", visibility="public")
    assert resp.status_code == 403
    for action, data in (
        ("finish", {}),
        ("priority", {"priority": "urgent"}),
        ("assign", {"assignee": "me"}),
        ("dispatch", {"department": str(make.department("CLAIMS").id)}),
    ):
        assert act(b, t.number, action, **data).status_code in (400, 403), action
    t = reload(t)
    assert t.status is TicketStatus.RESPONDED and t.assignee_id is None
    assert t.priority.value == "normal" and t.department.code == "OPS"
    assert not db.session.scalar(select(TicketMessage).where(TicketMessage.body == "Tambahan."))
    # The rule itself: reached at the desk, read and note only.
    assert perm.can_open_at_desk(admin, t) and not perm.can_see_ticket(admin, t)
    assert perm.may(admin, t, perm.TICKET_NOTE) and not perm.may(admin, t, perm.TICKET_REPLY)
    assert tickets.allowed_actions(t, admin) == {tickets.Action.NOTE}


def test_the_desk_reach_stops_at_what_the_department_admin_worked_on(login_as, make, db):
    t, photo, b, admin, _resp = _replied_by_department_admin(login_as, make, db)
    untouched = make.ticket("responded", department="OPS")
    db.session.commit()
    # A colleague of the same department who never wrote on it: not reachable.
    colleague, _ = login_as(perm.ADMIN_DEPARTMENT, department="OPS")
    other, _ = login_as(perm.ADMIN_DEPARTMENT, department="CLAIMS")
    for browser in (colleague, other):
        assert browser.get(desk(t.number)).status_code == 404
        assert status_of(browser, f"{desk(t.number)}attachments/{photo.id}") == 404
        assert status_of(browser, f"{desk(t.number)}attachments/{photo.id}/thumbnail") == 404
    assert b.get(desk(untouched.number)).status_code == 404
    # Once finished, it is closed to them too (the lists of Finished are not theirs).
    tickets.finish(reload(t), make._master())
    db.session.commit()
    assert b.get(desk(t.number)).status_code == 404
    assert not perm.can_open_at_desk(admin, reload(t))
    # SQL scope and in-memory twin agree.
    for ticket in (reload(t), untouched):
        in_sql = db.session.scalar(
            perm.desk_tickets(admin).where(perm.desk_scope(admin), ticket.__class__.id == ticket.id)
        )
        assert (in_sql is not None) == perm.can_open_at_desk(admin, ticket)


def test_desk_scope_sql_and_memory_agree_while_open(login_as, make, db):
    t, _photo, _b, admin, _resp = _replied_by_department_admin(login_as, make, db)
    t = reload(t)
    found = db.session.scalar(perm.desk_tickets(admin).where(t.__class__.id == t.id))
    assert found is not None and perm.can_open_at_desk(admin, t)


# --- escalate and dispatch: no preselected department -----------------------------


def _department_select(html: str) -> str:
    return re.search(r'<select[^>]*id="department".*?</select>', html, re.S).group(0)


def test_dispatch_and_escalate_selects_start_empty_and_required(login_as, make, db):
    progress = make.ticket("progress")
    team = make.ticket("team", department="OPS")
    db.session.commit()
    master, _ = login_as(perm.MASTER_ADMIN, locale="en")
    cs, _ = login_as(perm.CUSTOMER_SERVICE, locale="en")
    for browser, ticket in ((master, progress), (cs, team)):
        select_html = _department_select(desk_page(browser, ticket.number))
        assert "required" in select_html.split(">", 1)[0]
        options = re.findall(r"<option([^>]*)>", select_html)
        assert 'value=""' in options[0] and "selected" in options[0]
        assert all("selected" not in o for o in options[1:])
    # Sent without a choice: refused, nothing moved.
    assert act(master, progress.number, "dispatch", department="").status_code == 400
    assert act(cs, team.number, "dispatch", department="").status_code == 400
    assert reload(progress).status is TicketStatus.PROGRESS
    assert reload(team).department.code == "OPS"


# --- bulk escalate is the escalate operation --------------------------------------


def test_bulk_escalate_does_not_dispatch_a_progress_ticket(login_as, make, db):
    progress, team = make.ticket("progress"), make.ticket("team", department="OPS")
    db.session.commit()
    master, _ = login_as(perm.MASTER_ADMIN, locale="en")
    claims = make.department("CLAIMS")
    url = "/admin/tickets/progress/"
    _bulk(master, url, "escalate", [progress], department=str(claims.id))
    summary = _summary(master, url)
    assert "1 refused" in summary and "dispatched, not escalated" in summary
    assert reload(progress).status is TicketStatus.PROGRESS
    assert not db.session.scalar(
        select(TicketEvent).where(
            TicketEvent.ticket_id == progress.id, TicketEvent.action == EventAction.DISPATCHED
        )
    )
    # … and bulk dispatch does not escalate a Team ticket; each on its own list works.
    _bulk(master, "/admin/tickets/team/", "dispatch", [team], department=str(claims.id))
    assert "1 refused" in _summary(master, "/admin/tickets/team/")
    assert reload(team).department.code == "OPS"
    _bulk(master, "/admin/tickets/team/", "escalate", [team], department=str(claims.id))
    assert reload(team).department_id == claims.id
    _bulk(master, url, "dispatch", [progress], department=str(claims.id))
    assert reload(progress).status is TicketStatus.TEAM


# --- ratings of tickets nobody answered --------------------------------------------


def _rated_answered_and_unanswered(make, db):
    now = utcnow().replace(microsecond=0)
    master = make._master()
    answered = make.ticket("team", department="OPS", now=now - timedelta(hours=5))
    tickets.post_message(answered, master, "Sudah kami cek.", now=now - timedelta(hours=4))
    tickets.finish(answered, master, now=now - timedelta(hours=3))
    tickets.rate(answered, answered.customer, 5, now=now - timedelta(hours=2))
    unanswered = make.ticket("team", department="OPS", now=now - timedelta(hours=5))
    tickets.finish(unanswered, unanswered.customer, now=now - timedelta(hours=3))  # the close
    tickets.rate(unanswered, unanswered.customer, 1, now=now - timedelta(hours=2))
    db.session.commit()
    return answered, unanswered


def test_ratings_of_unanswered_tickets_stay_out_of_the_averages(login_as, make, db):
    answered, unanswered = _rated_answered_and_unanswered(make, db)
    assert reload(unanswered).status is TicketStatus.FINISHED and unanswered.rating == 1
    figures = master_figures()
    assert figures["average_rating"] == 5 and figures["rated"] == 1
    b, _ = login_as(perm.MASTER_ADMIN, locale="en")
    home = b.get("/admin/").get_data(as_text=True)
    assert re.search(r'id="fig-rating">5.00 / 5<', home)
    assert "not counting tickets closed before any staff answer" in home
    rows = read_csv(b.get("/admin/reports/summary.csv"))
    ops = [r for r in rows[1:] if r[1] == "OPS" and r[-1] == TicketKind.CRITICISM.value]
    assert len(ops) == 1 and ops[0][3] == "2" and ops[0][-2] == "5.0"
    page = b.get("/admin/reports/").get_data(as_text=True)
    assert 'id="rating-note"' in page and "before anyone from staff answered" in page


# --- the desk's cards ----------------------------------------------------------------


def test_actions_card_is_not_an_empty_box_for_a_department_admin(login_as, make, db):
    t = make.ticket("team", department="OPS")
    db.session.commit()
    b, _ = login_as(perm.ADMIN_DEPARTMENT, department="OPS", locale="en")
    html = b.get(desk(t.number)).get_data(as_text=True)
    card = html.split('id="desk-actions-title"', 1)[1].split("</section>", 1)[0]
    assert 'id="desk-actions-none"' in card
    assert "You reply and add internal notes" in card
    cs, _ = login_as(perm.CUSTOMER_SERVICE, locale="en")
    card = cs.get(desk(t.number)).get_data(as_text=True).split('id="desk-actions-title"', 1)[1]
    assert 'id="desk-actions-none"' not in card.split("</section>", 1)[0]


def test_unassign_me_is_an_outlined_dark_button(login_as, make, db):
    t = make.ticket("team", department="OPS")
    db.session.commit()
    cs, user = login_as(perm.CUSTOMER_SERVICE, locale="en")
    tickets.assign(reload(t), user, user)
    db.session.commit()
    html = cs.get(desk(t.number)).get_data(as_text=True)
    button = re.search(r'<button[^>]*id="unassign-me"[^>]*>', html).group(0)
    assert "btn-outline-dark" in button and "btn-secondary" not in button


def test_customer_photo_is_shown_as_a_picture_and_a_pdf_as_an_icon(login_as, make, db, client):
    import io

    from backoffice.domain import attachments

    t = make.ticket("team", department="OPS")
    photo = attach(t, t.customer)
    pdf = attachments.store(io.BytesIO(b"%PDF-1.4\n%%EOF\n"), "resi.pdf")
    tickets.post_message(t, t.customer, "Ini resinya", attachments=[pdf])
    db.session.commit()
    cs, _ = login_as(perm.CUSTOMER_SERVICE, locale="en")
    html = cs.get(desk(t.number)).get_data(as_text=True)
    thumb = f"{desk(t.number)}attachments/{photo.id}/thumbnail"
    img = re.search(r'<img class="msg-thumb"[^>]*>', html, re.S).group(0)
    assert f'src="{thumb}"' in img and 'width="160"' in img and 'height="120"' in img
    assert 'alt="Picture: foto.png"' in img
    assert 'class="msg-file-icon"' in html  # the PDF's icon
    with cs.get(thumb) as got:
        assert got.status_code == 200 and got.mimetype == "image/png" and got.get_data() == PNG
    assert status_of(cs, f"{desk(t.number)}attachments/{pdf.id}/thumbnail") == 404
    assert status_of(client, thumb) == 302  # signed out: to the login page
    customer = make.user()
    db.session.commit()
    from .conftest import Browser

    stranger = Browser(client)
    stranger.login(customer)
    assert status_of(stranger, thumb) in (403, 404)

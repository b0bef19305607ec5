"""The master admin's working calendars in the back office: hours, company days, zones."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import func, select

from backoffice.domain import event_notes, tickets
from backoffice.domain import permissions as perm
from backoffice.models import BusinessHours, CompanyDay, EventAction, TicketEvent, TicketKind

from .test_sla import WEEKDAYS_8_20, _hours


def _question(make, db):
    """Filed Tue 2 Feb 2027 19:00 WIB on Customer Service's Mon–Fri 08–20: 8 h → Wed 15:00."""
    _hours(db, make, "CS", WEEKDAYS_8_20)
    t = tickets.file_ticket(
        make.user(), TicketKind.QUESTION, "Jam?", "Halo", now=datetime(2027, 2, 2, 12, 0)
    )
    db.session.commit()
    assert t.first_response_due == datetime(2027, 2, 3, 8, 0)
    return t


def _count(db, model):
    return db.session.scalar(select(func.count()).select_from(model))


def test_master_adds_and_removes_a_company_day_and_open_tickets_follow(login_as, make, db):
    t = _question(make, db)
    b, master = login_as(perm.MASTER_ADMIN)
    resp = b.post(
        "/admin/company-days/new/",
        {"day": "2027-02-03", "closed": "y", "name": "Ulang tahun <b>carebox</b>"},
    )
    assert resp.status_code == 302
    day = db.session.scalar(select(CompanyDay))
    assert (day.day, day.closed, day.created_by_id) == (date(2027, 2, 3), True, master.id)
    db.session.expire_all()
    assert t.first_response_due == t.next_due_at == datetime(2027, 2, 4, 8, 0)  # Thu 15:00
    note = db.session.scalar(
        select(TicketEvent.note).where(
            TicketEvent.ticket_id == t.id, TicketEvent.action == EventAction.DUE_MOVED
        )
    )
    note = event_notes.text(note)  # stored neutral, read in the viewer's language
    assert "03-02-2027" in note and "04-02-2027 15:00 WIB" in note
    listing = b.get("/admin/company-days/").get_data(as_text=True)
    assert "Ulang tahun &lt;b&gt;carebox&lt;/b&gt;" in listing and "<b>carebox" not in listing

    resp = b.post(
        "/admin/company-days/delete/", {"id": str(day.id)}, form_url="/admin/company-days/"
    )
    assert resp.status_code == 302 and _count(db, CompanyDay) == 0
    db.session.expire_all()
    assert t.first_response_due == datetime(2027, 2, 3, 8, 0)


def test_master_edits_hours_and_refused_input_changes_nothing(login_as, make, db):
    t = _question(make, db)
    cs = make.department("CS")
    b, _ = login_as(perm.MASTER_ADMIN, locale="en")
    before = _count(db, BusinessHours)
    for start, end, message in (
        ("25:00", "20:00", "A time is HH:MM"),
        ("20:00", "08:00", "A shift ends after it starts"),
        ("", "08:00", "This field is required"),
    ):
        resp = b.post(
            "/admin/business-hours/new/",
            {"department": str(cs.id), "weekday": "2", "start_minute": start, "end_minute": end},
        )
        assert resp.status_code == 200 and message in resp.get_data(as_text=True), start
    assert _count(db, BusinessHours) == before
    # Wednesday gets an early shift too: 06:00–08:00 → the due time comes 2 h earlier
    resp = b.post(
        "/admin/business-hours/new/",
        {"department": str(cs.id), "weekday": "2", "start_minute": "06:00", "end_minute": "08:00"},
    )
    assert resp.status_code == 302 and _count(db, BusinessHours) == before + 1
    db.session.expire_all()
    assert t.first_response_due == datetime(2027, 2, 3, 6, 0)  # Wed 13:00 WIB
    assert "06:00" in b.get("/admin/business-hours/").get_data(as_text=True)


def test_a_new_zone_moves_the_departments_tickets(login_as, make, db):
    t = _question(make, db)
    cs = make.department("CS")
    b, _ = login_as(perm.MASTER_ADMIN)
    form = {
        "code": "CS",
        "name_id": cs.name_id,
        "name_en": cs.name_en,
        "email": cs.email or "",
        "timezone": "Asia/Jayapura",
        "observes_holidays": "y",
        "active": "y",
    }
    assert b.post(f"/admin/departments/edit/?id={cs.id}", form).status_code == 302
    db.session.expire_all()
    assert cs.timezone == "Asia/Jayapura"
    # filed 12:00 UTC = 21:00 WIT Tuesday: 8 h on Wed from 08:00 WIT → 16:00 WIT = 07:00 UTC
    assert t.first_response_due == datetime(2027, 2, 3, 7, 0)
    form["timezone"] = "Europe/Paris"  # not offered: refused, nothing changed
    resp = b.post(f"/admin/departments/edit/?id={cs.id}", form)
    assert resp.status_code == 200
    db.session.expire_all()
    assert cs.timezone == "Asia/Jayapura"


def test_only_the_master_admin_changes_calendars(login_as, make, db):
    cs_dept = make.department("CS")
    for role in (perm.CUSTOMER_SERVICE, perm.ADMIN_DEPARTMENT, perm.CUSTOMER):
        b, _ = login_as(role)
        assert b.get("/admin/company-days/").status_code == 403, role
        assert b.get("/admin/business-hours/").status_code == 403, role
        data = {"day": "2027-02-03", "name": "x", "csrf_token": b.token("/")}
        resp = b.post("/admin/company-days/new/", data)
        assert resp.status_code == 403, role
        resp = b.post(
            "/admin/business-hours/new/",
            {
                "department": str(cs_dept.id),
                "weekday": "1",
                "start_minute": "06:00",
                "end_minute": "07:00",
                "csrf_token": data["csrf_token"],
            },
        )
        assert resp.status_code == 403, role
    assert _count(db, CompanyDay) == 0 and _count(db, BusinessHours) == 0
    b, _ = login_as(perm.MASTER_ADMIN)
    assert b.get("/admin/company-days/").status_code == 200
    assert b.get("/admin/business-hours/new/").status_code == 200

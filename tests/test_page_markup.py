"""What the Nu HTML checker and axe-core asked of the pages, held over HTTP (fast, both
databases): the browser suite's tests/browser/test_page_quality.py runs the real tools.

Issue 9 items 18, 19 and 22: a <main> landmark and no IE meta tag in the back office,
unique ids where a page repeats a form, `<time>` values HTML accepts, required selects
that start empty (nothing chosen for the user), and /favicon.ico.
"""

from __future__ import annotations

import re
from collections import Counter
from html.parser import HTMLParser

from sqlalchemy import func, select

from backoffice.domain import permissions as perm
from backoffice.models import Ticket, TicketStatus

from .conftest import Browser
from .portal_support import customer


class _Scan(HTMLParser):
    """The ids, the <main> elements and the <select>s of a page."""

    def __init__(self):
        super().__init__()
        self.ids: Counter = Counter()
        self.mains = 0
        self.selects: list[dict] = []  # {"attrs", "options": [(value, text, selected)]}
        self._option = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids[a["id"]] += 1
        if tag == "main":
            self.mains += 1
        elif tag == "select":
            self.selects.append({"attrs": a, "options": []})
        elif tag == "option" and self.selects:
            self._option = [a.get("value"), "", "selected" in a]
            self.selects[-1]["options"].append(self._option)

    def handle_data(self, data):
        if self._option is not None:
            self._option[1] += data.strip()

    def handle_endtag(self, tag):
        if tag == "option":
            self._option = None


def scan(html: str) -> _Scan:
    s = _Scan()
    s.feed(html)
    return s


def duplicate_ids(html: str) -> list[str]:
    return sorted(i for i, n in scan(html).ids.items() if n > 1)


def required_selects_start_empty(html: str) -> list[str]:
    """Names of required selects whose first option is a real choice (HTML forbids it)."""
    bad = []
    for sel in scan(html).selects:
        if "required" in sel["attrs"] and "multiple" not in sel["attrs"]:
            first = sel["options"][0] if sel["options"] else None
            if first is not None and first[0] not in ("", None) and first[1]:
                bad.append(sel["attrs"].get("name"))
    return bad


TIME_VALUE = re.compile(r'<time datetime="([^"]+)"')


def test_back_office_pages_have_one_main_landmark_and_no_ie_tag(login_as, make, db):
    ticket = make.ticket(TicketStatus.TEAM)
    db.session.commit()
    b, _ = login_as(perm.MASTER_ADMIN)
    for url in (
        "/admin/",
        "/admin/tickets/team/",
        f"/admin/tickets/desk/{ticket.number}/",
        "/admin/reports/",
        "/admin/reports/sla/",
        "/admin/staff/new/",
        "/admin/departments/",
    ):
        html = b.get(url).get_data(as_text=True)
        assert scan(html).mains == 1, url
        assert 'id="main"' in html and 'href="#main"' in html, url  # the skip link's target
        assert "X-UA-Compatible" not in html, url
        assert 'rel="icon" href="/favicon.ico"' in html, url


def test_favicon_is_served_where_browsers_look(client):
    resp = client.get("/favicon.ico")
    try:
        assert resp.status_code == 200
        assert resp.mimetype in ("image/vnd.microsoft.icon", "image/x-icon")
        assert resp.get_data()[:4] == b"\x00\x00\x01\x00"  # an ICO header
    finally:
        resp.close()
    assert 'rel="icon" href="/favicon.ico"' in client.get("/").get_data(as_text=True)


def test_list_with_delete_buttons_repeats_no_id(login_as):
    b, _ = login_as(perm.MASTER_ADMIN)
    html = b.get("/admin/routing_rules/").get_data(as_text=True)
    assert html.count('action="/admin/routing_rules/delete/"') > 1  # one form per row
    assert duplicate_ids(html) == []
    # The selection checkboxes are named by more than a tooltip.
    assert re.search(r'class="action-checkbox"[^>]*aria-label="[^"]+"', html)
    assert re.search(r'class="action-rowtoggle"[^>]*aria-label="[^"]+"', html)


def test_desk_has_unique_ids_and_html_times(login_as, make, db):
    ticket = make.ticket(TicketStatus.RESPONDED)
    db.session.commit()
    b, _ = login_as(perm.MASTER_ADMIN)
    html = b.get(f"/admin/tickets/desk/{ticket.number}/").get_data(as_text=True)
    assert html.count('name="expected_version"') > 1  # a form per action
    assert duplicate_ids(html) == []
    assert required_selects_start_empty(html) == []
    times = TIME_VALUE.findall(html)
    assert times and all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", t) for t in times)
    # The scrollable conversation and timeline can be reached with the keyboard.
    assert re.search(r'id="conversation"[^>]*tabindex="0"', html)
    assert re.search(r'id="timeline"[^>]*tabindex="0"', html)


def test_portal_ticket_times_are_html_times_with_a_four_digit_year(login_as, make, db):
    b, user = customer(login_as)
    user.locale = "en"
    ticket = make.ticket(TicketStatus.RESPONDED, customer=user)
    db.session.commit()
    html = b.get(f"/tickets/{ticket.number}").get_data(as_text=True)
    times = TIME_VALUE.findall(html)
    assert times and all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", t) for t in times)
    year = str(ticket.created_at.year)
    shown = re.findall(r'<time datetime="[^"]+">([^<]+)</time>', html)
    # "1 Dec 2026, 14:23": the month by name, the whole year.
    assert all(re.fullmatch(rf"\d{{1,2}} [A-Z][a-z]{{2}} {year}, \d\d:\d\d", t) for t in shown)


def test_new_ticket_form_chooses_no_kind_for_the_customer(login_as, db):
    b, _ = customer(login_as)
    html = b.get("/tickets/new").get_data(as_text=True)
    kind = next(s for s in scan(html).selects if s["attrs"].get("name") == "kind")
    assert kind["options"][0][0] == ""  # an empty first choice …
    assert not any(selected for _v, _t, selected in kind["options"][1:])  # … and none chosen
    assert required_selects_start_empty(html) == []

    before = db.session.scalar(select(func.count()).select_from(Ticket))
    resp = b.post(
        "/tickets/new",
        {"kind": "", "subject": "Paket belum sampai", "body": "Sudah lima hari."},
        form_url="/tickets/new",
    )
    assert resp.status_code == 400  # shown again with the field's message
    db.session.commit()
    assert db.session.scalar(select(func.count()).select_from(Ticket)) == before


def test_required_selects_start_with_an_empty_choice(login_as, make, db):
    b, user = customer(login_as)
    order = make.order(customer=user)
    db.session.commit()
    for url in ("/orders/new", "/account", "/tickets/new"):
        assert required_selects_start_empty(b.get(url).get_data(as_text=True)) == [], url
    master, _ = login_as(perm.MASTER_ADMIN)
    faq = master.get("/admin/faq/").get_data(as_text=True)
    faq_id = re.search(r"/admin/faq/edit/\?id=(\d+)", faq).group(1)
    for url in (
        "/admin/routing_rules/new/",
        f"/admin/faq/edit/?id={faq_id}",
        "/admin/products/new/",
        f"/admin/orders/details/?id={order.id}",
    ):
        html = master.get(url).get_data(as_text=True)
        assert required_selects_start_empty(html) == [], url
        assert 'action=""' not in html, url


def test_the_new_pages_hold_the_same_markup_rules(app, login_as, make, db, whatsapp, client):
    """Session 3's pages, in both languages: one <main> with the skip link's target, no id
    twice (the desk now repeats forms: merge, link a parcel, the template picker), and
    required selects that start empty."""
    from backoffice.domain import phone_claims, tickets
    from backoffice.models import ShipmentSituation

    from .test_whatsapp_outbound import customer_writes
    from .test_whatsapp_templates import add_template

    wa_ticket = customer_writes(client, db, hours_ago=30)
    template = add_template(db)
    owner = make.user(perm.CUSTOMER, phone="081234567890")
    contact = wa_ticket.customer
    assert contact.contact_only and owner.phone_key == contact.contact_phone_key
    claim = phone_claims.token_for(owner, contact)
    first = make.ticket("team", customer=owner)
    first.situation = ShipmentSituation.LATE
    second = make.ticket("team", customer=owner)
    merged = make.ticket("team", customer=owner)
    tickets.merge(merged, first, make._master())
    db.session.commit()
    for lang in ("id", "en"):
        ops, _ = login_as(perm.ADMIN_DEPARTMENT, department="OPS", locale=lang)
        b, _ = login_as(perm.MASTER_ADMIN, locale=lang)
        pages = [(ops, "/admin/notifications/")]
        pages += [
            (b, url)
            for url in (
                "/admin/notifications/",
                "/admin/agent-report/",
                "/admin/reports/sla/",
                "/admin/whatsapp-templates/",
                "/admin/whatsapp-templates/new/",
                f"/admin/whatsapp-templates/edit/?id={template.id}",
                f"/admin/tickets/desk/{first.number}/",  # situation, merge, link a parcel
                f"/admin/tickets/desk/{second.number}/",
                f"/admin/tickets/desk/{merged.number}/",  # leads to the survivor
                f"/admin/tickets/desk/{wa_ticket.number}/",  # the template picker
                f"/admin/tickets/desk/{wa_ticket.number}/?wa_template={template.id}",
            )
        ]
        for browser, url in pages:
            resp = browser.get(url)
            if resp.status_code == 302 and url.endswith(f"/{merged.number}/"):
                resp = browser.get(resp.headers["Location"])
            assert resp.status_code == 200, (lang, url, resp.status_code)
            html = resp.get_data(as_text=True)
            assert scan(html).mains == 1, (lang, url)
            assert 'id="main"' in html and 'href="#main"' in html, (lang, url)
            assert duplicate_ids(html) == [], (lang, url)
            assert required_selects_start_empty(html) == [], (lang, url)
        portal = [
            "/account",
            "/tickets",
            f"/tickets/{first.number}",
            f"/tickets/{merged.number}",
        ]
        portal.append(f"/account/phone/{claim}")  # the claim link sent on WhatsApp
        owner.locale = lang
        db.session.commit()
        c = Browser(app.test_client())
        c.login(owner)
        for url in portal:
            resp = c.get(url)
            if resp.status_code == 302 and url.endswith(f"/{merged.number}"):
                resp = c.get(resp.headers["Location"])  # the merged ticket leads on
            assert resp.status_code == 200, (lang, url, resp.status_code)
            html = resp.get_data(as_text=True)
            assert duplicate_ids(html) == [], (lang, url)
            assert required_selects_start_empty(html) == [], (lang, url)

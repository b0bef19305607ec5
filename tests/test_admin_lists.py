"""The four ticket lists: scoping per role, menus, filters, search, sorting, query count."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest

from backoffice.domain import permissions as perm
from backoffice.domain import tickets
from backoffice.models import Department, Priority, Ticket, TicketKind
from backoffice.models.base import utcnow

from .admin_support import build_world, counting_queries, flashes, listed_numbers

MENU_LINKS = {
    "/admin/tickets/progress/",
    "/admin/tickets/team/",
    "/admin/tickets/responded/",
    "/admin/tickets/finished/",
    "/admin/reports/",
    "/admin/staff/",
    "/admin/departments/",
    "/admin/routing_rules/",
    "/admin/faq_categories/",
    "/admin/faq/",
    "/admin/products/",
    "/admin/announcements/",
    "/admin/customers/",
    "/admin/orders/",
}
EXPECTED_MENU = {
    perm.MASTER_ADMIN: MENU_LINKS,
    perm.CUSTOMER_SERVICE: {
        "/admin/tickets/team/",
        "/admin/tickets/responded/",
        "/admin/tickets/finished/",
        "/admin/customers/",
        "/admin/orders/",
    },
    perm.ADMIN_DEPARTMENT: {"/admin/tickets/team/"},
}


def _menu(html: str) -> set[str]:
    nav = html.split('id="admin-navbar-collapse"', 1)[1].split("</nav>", 1)[0]
    return set(re.findall(r'href="(/admin/[a-z_/]+/)"', nav)) & MENU_LINKS


@pytest.mark.parametrize("role", sorted(EXPECTED_MENU))
def test_menu_shows_exactly_the_lists_of_the_role(role, login_as):
    b, _user = login_as(role)
    html = b.get("/admin/").get_data(as_text=True)
    assert _menu(html) == EXPECTED_MENU[role]


def test_department_admin_without_department_has_no_lists(login_as, db):
    b, user = login_as(perm.ADMIN_DEPARTMENT)
    user.department = None
    db.session.commit()
    assert _menu(b.get("/admin/").get_data(as_text=True)) == set()
    assert b.get("/admin/tickets/team/").status_code == 403
    assert b.get("/admin/").status_code == 200


def test_lists_are_scoped_per_role(login_as, make, db):
    w = build_world(make, db)
    everything = {
        "progress": {w.progress.number},
        "team": {w.team_ops.number, w.team_claims.number},
        "responded": {w.responded.number},
        "finished": {w.finished.number},
    }
    master, _ = login_as(perm.MASTER_ADMIN, locale="en")
    for name, numbers in everything.items():
        assert listed_numbers(master.get(f"/admin/tickets/{name}/").get_data(as_text=True)) == (
            numbers
        )
    cs, _ = login_as(perm.CUSTOMER_SERVICE, locale="en")
    for name in ("team", "responded", "finished"):
        html = cs.get(f"/admin/tickets/{name}/").get_data(as_text=True)
        assert listed_numbers(html) == everything[name]
    dept, _ = login_as(perm.ADMIN_DEPARTMENT, department="OPS", locale="en")
    html = dept.get("/admin/tickets/team/").get_data(as_text=True)
    assert listed_numbers(html) == {w.team_ops.number}
    assert "List (1)" in html  # the count query is scoped as well
    claims, _ = login_as(perm.ADMIN_DEPARTMENT, department="CLAIMS", locale="en")
    html = claims.get("/admin/tickets/team/").get_data(as_text=True)
    assert listed_numbers(html) == {w.team_claims.number}


def test_list_columns_and_sla_marker(login_as, make, db):
    old = utcnow() - timedelta(days=5)
    late = make.ticket("team", subject="<b>Paket hilang</b>", now=old)  # no reply for 5 days
    fresh = make.ticket("team")
    db.session.commit()
    b, _ = login_as(perm.CUSTOMER_SERVICE, locale="en")
    html = b.get("/admin/tickets/team/").get_data(as_text=True)
    assert "&lt;b&gt;Paket hilang&lt;/b&gt;" in html and "<b>Paket hilang" not in html
    rows = html.split("<tr")
    late_row = next(r for r in rows if late.number in r)
    fresh_row = next(r for r in rows if fresh.number in r)
    assert "sla-breached" in late_row and "SLA breached" in late_row
    assert "sla-breached" not in fresh_row
    for header in ("Number", "Kind", "Subject", "Customer", "Order", "Department", "Priority"):
        assert header in html
    for header in ("Age", "SLA due", "Last message", "Assignee"):
        assert header in html


def test_people_are_shown_by_name_else_e_mail_escaped(login_as, make, db):
    """The Customer and Assignee cells are User.display_name (read in the page's
    statement): the name, or the e-mail when the name is empty; both escaped."""
    named = make.user(name="Rina <i>Sari</i>", email="rina@example.com")
    nameless = make.user(name="", email="o'brien@example.com")
    agent = make.user(perm.CUSTOMER_SERVICE, name="", email="agent.x@example.com")
    nameless.name = agent.name = ""  # (the factory names everyone)
    first = make.ticket("team", customer=named)
    second = make.ticket("team", customer=nameless)
    tickets.assign(second, agent, make._master())
    db.session.commit()
    b, _ = login_as(perm.MASTER_ADMIN, locale="en")
    rows = b.get("/admin/tickets/team/").get_data(as_text=True).split("<tr")
    first_row = next(r for r in rows if first.number in r)
    second_row = next(r for r in rows if second.number in r)
    assert '<td class="col-customer">Rina &lt;i&gt;Sari&lt;/i&gt;</td>' in first_row
    assert '<td class="col-customer">o&#39;brien@example.com</td>' in second_row
    assert '<td class="col-assignee">agent.x@example.com</td>' in second_row


def test_every_text_people_wrote_is_escaped_in_the_rows(login_as, make, db):
    """Subjects, customer and assignee names, department names (staff write them) and
    order numbers come out escaped, in both languages."""
    customer = make.user(name='<script>x()</script> & "Sons"')
    agent = make.user(perm.CUSTOMER_SERVICE, name="<img src=x onerror=alert(1)>")
    dept = make.department("OPS")
    dept.name_en, dept.name_id = "<b>Ops</b>", "<i>Operasi</i>"
    t = make.ticket("team", customer=customer, subject="<u>Rusak</u> 'parah'")
    tickets.assign(t, agent, make._master())
    db.session.commit()
    names = {"en": "&lt;b&gt;Ops&lt;/b&gt;", "id": "&lt;i&gt;Operasi&lt;/i&gt;"}
    for locale, dept_html in names.items():
        b, _ = login_as(perm.MASTER_ADMIN, locale=locale)
        html = b.get("/admin/tickets/team/").get_data(as_text=True)
        row = next(r for r in html.split("<tr") if t.number in r)
        assert '<td class="col-subject">&lt;u&gt;Rusak&lt;/u&gt; &#39;parah&#39;</td>' in row
        assert "&lt;script&gt;x()&lt;/script&gt; &amp; &#34;Sons&#34;" in row
        assert "&lt;img src=x onerror=alert(1)&gt;" in row
        assert f'<td class="col-department">{dept_html}</td>' in row
        assert "<script>x()" not in html and "<img src=x" not in html and "<u>" not in row


def test_filters_search_and_sort(app, login_as, make, db):
    w = build_world(make, db)
    urgent = make.ticket("team", kind=TicketKind.COMPLAINT, department="OPS")
    tickets.set_priority(urgent, Priority.URGENT, make._master())
    late = make.ticket("team", department="OPS", now=utcnow() - timedelta(days=4))
    db.session.commit()
    view = next(v for v in app.extensions["admin"][0]._views if v.endpoint == "tickets_team")
    # ticket_filters(): kind, priority, department, created, SLA breached, order number
    kind, prio, dept, created, sla, order_flt, *_later = (
        f"flt0_{view.get_filter_arg(i, f)}" for i, f in enumerate(view._filters)
    )
    b, _ = login_as(perm.MASTER_ADMIN)

    def numbers(query: str) -> set[str]:
        resp = b.get(f"/admin/tickets/team/?{query}")
        assert resp.status_code == 200
        return listed_numbers(resp.get_data(as_text=True))

    everyone = {w.team_ops.number, w.team_claims.number, urgent.number, late.number}
    assert numbers("") == everyone
    assert numbers(f"{kind}=complaint") == {urgent.number}
    assert numbers(f"{prio}=urgent") == {urgent.number}
    claims_id = make.department("CLAIMS").id
    assert numbers(f"{dept}={claims_id}") == {w.team_claims.number}
    assert numbers(f"{sla}=1") == {late.number}
    assert numbers(f"{sla}=0") == everyone - {late.number}
    today = (utcnow() + timedelta(hours=7)).date()
    start = today - timedelta(days=1)
    assert numbers(f"{created}={start} to {today}") == everyone - {late.number}
    # An invalid filter value is refused with a message, not sent to the database.
    html = b.get(f"/admin/tickets/team/?{kind}=nonsense").get_data(as_text=True)
    assert "Invalid Filter Value" in flashes(html) or "nonsense" in flashes(html)
    # Order number filter and search (number, subject, customer name or e-mail).
    order = make.order(customer=w.team_ops.customer)
    with_order = make.ticket("team", customer=order.customer, order=order)
    db.session.commit()
    assert numbers(f"{order_flt}={order.number}") == {with_order.number}
    assert numbers(f"search={w.team_claims.number}") == {w.team_claims.number}
    assert numbers(f"search={w.team_claims.customer.email}") == {w.team_claims.number}
    name_part = w.team_claims.customer.name.split()[-1]
    assert w.team_claims.number in numbers(f"search={name_part}")
    assert numbers(f"search={urgent.subject.replace(' ', '+')}") == {urgent.number}
    # Most urgent first by default (the overdue one, then the urgent one: issue 13);
    # page sizes are offered.
    html = b.get("/admin/tickets/team/").get_data(as_text=True)
    order_seen = re.findall(r'desk/([A-Z0-9-]+)/"', html)
    assert order_seen[:2] == [late.number, urgent.number]
    assert "page_size=50" in html and "page_size=100" in html


def test_list_costs_a_constant_number_of_queries(app, login_as, make, db):
    b, _ = login_as(perm.MASTER_ADMIN)

    def cost() -> int:
        b.get("/admin/tickets/team/?page_size=50")  # the first after a change of the setup
        with counting_queries(db.engine) as statements:
            resp = b.get("/admin/tickets/team/?page_size=50")
        assert resp.status_code == 200
        return len(statements)

    def add(n: int) -> None:
        """n Team tickets, each with its own customer, order, department and assignee."""
        for i in range(n):
            customer = make.user()
            order = make.order(customer=customer)
            dept = "OPS" if i % 2 else "CLAIMS"
            t = make.ticket("team", customer=customer, order=order, department=dept)
            tickets.assign(t, make.user(perm.CUSTOMER_SERVICE), make._master())
        db.session.commit()

    add(2)
    few = cost()
    add(25)
    many = cost()
    html = b.get("/admin/tickets/team/?page_size=50").get_data(as_text=True)
    assert len(listed_numbers(html)) == 27
    assert many == few, (few, many)


def test_a_list_page_reads_its_marks_with_its_rows(login_as, make, db):
    """Issue 16 target 1: a list page is its rows (one statement, with the assignee's
    last opening for the unread mark and the first open ticket on the same parcel for
    the duplicate mark), its capped count, a deep page's ids, the departments (filter
    options and the bars: from the process's copy, read by the first page after a
    change only), the colleagues (with the roles that let them in), the session's user
    and the menu's notices: 5 statements, 6 on a deep page (it was 10 and 11)."""
    b, user = login_as(perm.MASTER_ADMIN, locale="en")
    order = make.order()
    first = make.ticket("team", customer=order.customer, order=order, department="OPS")
    second = make.ticket("team", customer=order.customer, order=order, department="OPS")
    agent = make.user(perm.CUSTOMER_SERVICE)
    tickets.assign(second, agent, make._master())
    for _ in range(25):
        make.ticket("team", department="CLAIMS")
    db.session.commit()

    def cost(url: str) -> tuple[int, str]:
        b.get(url)  # the first page after a change of the setup reads the departments
        with counting_queries(db.engine) as statements:
            resp = b.get(url)
        assert resp.status_code == 200
        return len(statements), resp.get_data(as_text=True)

    count, html = cost("/admin/tickets/team/?page_size=50")
    row = next(r for r in html.split("<tr") if f"desk/{second.number}/" in r)
    assert f"Duplicate of {first.number}" in row and "unread" in row
    assert count == 5, count
    count, html = cost("/admin/tickets/team/?page=1")
    assert count == 6 and len(listed_numbers(html)) == 2, count


def test_a_list_shows_the_departments_as_they_are_now(login_as, make, db):
    """The departments come from the process's copy (domain/setup_cache.py), which a
    change makes old: the next page shows it, in the cells, the filter and the bulk bar."""
    t = make.ticket("team", department="OPS")
    db.session.commit()
    b, _ = login_as(perm.MASTER_ADMIN, locale="en")
    department = db.session.get(Department, t.department_id)
    for name in ("Night desk", "Day desk"):
        department.name_en = name
        db.session.commit()
        html = b.get("/admin/tickets/team/").get_data(as_text=True)
        assert f'<td class="col-department">{name}</td>' in html, name
        assert f"OPS \\u2014 {name}" in html  # the department filter's options
        assert f'<option value="{department.id}">OPS — {name}</option>' in html  # bulk bar
    assert "Night desk" not in html
    department.active = False
    db.session.commit()
    html = b.get("/admin/tickets/team/").get_data(as_text=True)
    assert "OPS \\u2014 Day desk" in html  # still a filter option, no longer a choice
    assert "OPS — Day desk</option>" not in html


def test_list_queries_have_the_shape_their_indexes_serve(login_as, make, db):
    """The capped count selects ids alone (with created_at too, no index of a filtered
    list covered it: assignee=none read 10,001 rows at 200k tickets), and "who spoke
    last" is an equality (with IS the database sorted the whole list instead of
    reading ix_ticket_status_spoke_next_due in order). bench/ticket_lists.py has the plans."""
    make.ticket("team")
    db.session.commit()
    b, _ = login_as(perm.MASTER_ADMIN)
    with counting_queries(db.engine) as statements:
        assert b.get("/admin/tickets/team/?assignee=none&spoke=customer").status_code == 200
    counts = [s for s in statements if "count(*)" in s.lower() and "FROM ticket" in s]
    assert counts and all("created_at" not in s for s in counts), counts
    spoke = [s for s in statements if "last_from_staff" in s and "WHERE" in s]
    assert spoke and all(re.search(r"last_from_staff = ", s) for s in spoke), spoke


def test_assign_to_me_action_stays_inside_the_list(login_as, make, db):
    w = build_world(make, db)
    b, user = login_as(perm.CUSTOMER_SERVICE)
    resp = b.post(
        "/admin/tickets/team/action/",
        {"action": "assign_to_me", "rowid": [str(w.team_ops.id), str(w.progress.id)]},
        form_url="/admin/tickets/team/",
    )
    assert resp.status_code == 302
    db.session.expire_all()
    assert db.session.get(Ticket, w.team_ops.id).assignee_id == user.id
    assert db.session.get(Ticket, w.progress.id).assignee_id is None  # not in the Team list
    # Without a CSRF token the action does nothing.
    resp = b.client.post(
        "/admin/tickets/team/action/",
        data={"action": "assign_to_me", "rowid": str(w.team_claims.id)},
    )
    assert resp.status_code == 302
    db.session.expire_all()
    assert db.session.get(Ticket, w.team_claims.id).assignee_id is None


def test_department_admin_cannot_use_the_assign_action(login_as, make, db):
    w = build_world(make, db)
    b, _ = login_as(perm.ADMIN_DEPARTMENT, department="OPS")
    html = b.get("/admin/tickets/team/").get_data(as_text=True)
    assert "assign_to_me" not in html
    b.post(
        "/admin/tickets/team/action/",
        {"action": "assign_to_me", "rowid": str(w.team_ops.id)},
        form_url="/admin/tickets/team/",
    )
    db.session.expire_all()
    assert db.session.get(Ticket, w.team_ops.id).assignee_id is None


def test_age_and_sla_columns_sort(login_as, make, db):
    old = make.ticket("team", now=utcnow() - timedelta(days=3))
    new = make.ticket("team")
    db.session.commit()
    b, _ = login_as(perm.CUSTOMER_SERVICE, locale="en")
    html = b.get("/admin/tickets/team/").get_data(as_text=True)
    age_sort = re.search(r'href="([^"]*sort=(\d+)[^"]*)"[^>]*>\s*Age', html)
    assert age_sort is not None, "the Age column is sortable"
    page = b.get(age_sort.group(1).replace("&amp;", "&")).get_data(as_text=True)
    seen = re.findall(r'desk/([A-Z0-9-]+)/"', page)
    assert seen.index(old.number) < seen.index(new.number)  # oldest first
    assert re.search(r"sort=\d+[^\"]*\"[^>]*>\s*SLA due", html)


@pytest.mark.parametrize("locale", ["id", "en"])
def test_the_lists_fast_times_read_as_babels(app, locale):
    """formatting.short_datetimes (the lists' two times per row) and datetime_text (the
    admin_dt filter) give exactly Babel's text, across years, month ends and the zone's
    day change."""
    import random

    from flask_babel import force_locale, format_datetime

    from backoffice.views.formatting import SHORT_PATTERN, datetime_text, short_datetimes

    rng = random.Random(16)
    start = datetime(1999, 12, 31, 16, 59)
    moments = [start, start + timedelta(minutes=1), None]
    moments += [start + timedelta(minutes=rng.randrange(60 * 24 * 366 * 40)) for _ in range(2000)]
    with app.test_request_context("/admin/"), force_locale(locale):
        fast = short_datetimes()
        babel = ["—" if m is None else format_datetime(m, SHORT_PATTERN) for m in moments]
        assert [fast(m) for m in moments] == babel
        assert [datetime_text(m) for m in moments] == babel


@pytest.mark.parametrize("locale", ["id", "en"])
def test_the_lists_ages_read_as_babels(app, locale):
    """formatting.age_texts (one Babel call per distinct text a page) gives exactly
    Flask-Babel's format_timedelta at the lists' granularity, around every unit's
    threshold and its roundings, in the past and (a clock ahead) the future."""
    import random

    from flask_babel import force_locale, format_timedelta

    from backoffice.views.formatting import AGE_UNITS, age_texts

    now = datetime(2026, 12, 1, 21, 58, 30)
    rng = random.Random(16)
    seconds = [0, 1, 29, 30, 31, 59, 60, 61, 89, 90, 91]
    for _unit, per in AGE_UNITS:
        for factor in (0.849, 0.85, 0.851, 1, 1.5, 2.5, 3.5):
            seconds += [int(per * factor) + d for d in (-1, 0, 1)]
    seconds += [rng.randrange(3600 * 24 * 365 * 5) for _ in range(3000)]
    created = [now - timedelta(seconds=s, microseconds=rng.randrange(10**6)) for s in seconds]
    created += [now - timedelta(seconds=s) for s in seconds] + [now + timedelta(minutes=3)]
    with app.test_request_context("/admin/"), force_locale(locale):
        fast = age_texts(now)
        assert [fast(c) for c in created] == [
            format_timedelta(now - c, granularity="minute") for c in created
        ]


@pytest.mark.parametrize(
    "query",
    [
        "",
        "page=3&sort=2&desc=1",
        "search=paket+r%C3%BCsak%26co&page_size=50&foo=a%2Fb+c&sort=0",
        "flt0_2=7&flt1_0=complaint&page=1&assignee=me&spoke=customer",
        "page_size=33&desc=1",
    ],
)
def test_the_lists_links_are_flask_admins(app, db, query):
    """The pager, sort and page-size links (urls.ListLinks, encoded once a page) are
    exactly the URLs Flask-Admin's index_view builds (its _get_list_url of a clone of
    the page's arguments), whatever the page's arguments."""
    from backoffice.views.urls import ListLinks

    view = next(v for v in app.extensions["admin"][0]._views if v.endpoint == "tickets_team")
    with app.test_request_context(f"/admin/tickets/team/?{query}"):
        args = view._get_list_extra_args()
        links = ListLinks(view, **_links_args(view, args))
        assert links.exact
        for p in (0, 1, 2, 399):
            want = view._get_list_url(args.clone(page=p or None))
            assert links.pager_url(p) == want
        for column in (0, 6, 9):
            for invert in (False, True):
                desc = 1 if invert and not args.sort_desc else None
                want = view._get_list_url(args.clone(sort=column, sort_desc=desc))
                assert links.sort_url(column, invert) == want
        for size in (25, 50, 100, 0):
            want = view._get_list_url(args.clone(page_size=size or view.page_size))
            assert links.page_size_url(size) == want
    with app.test_request_context("/admin/tickets/team/?_anchor=x"):
        args = view._get_list_extra_args()
        assert not ListLinks(view, **_links_args(view, args)).exact


def _links_args(view, args) -> dict:
    return {
        "page": args.page,
        "sort": args.sort,
        "sort_desc": args.sort_desc,
        "search": args.search,
        "extra_args": args.extra_args,
        "page_size": view.get_safe_page_size(args.page_size),
        "filter_args": view._get_filters(args.filters),
    }


def test_the_lists_pager_is_flask_admins(app):
    """ticket_rows.pager writes the page links Flask-Admin's lib.pager macro writes (the
    same elements, texts and URLs; only the whitespace between them is the lists' own),
    for every page of short and long lists."""
    from flask import render_template_string

    from backoffice.views.ticket_rows import pager

    def url(p):
        return f'/admin/tickets/team/?page={p}&x=<&y="' if p else "/admin/tickets/team/?x=<"

    def squeezed(html: str) -> str:
        return re.sub(r">\s+<", "><", str(html).strip())

    with app.test_request_context("/admin/tickets/team/"):
        for pages in (0, 1, 2, 7, 8, 12, 400):
            for page in sorted({0, 1, 3, 4, pages // 2, max(pages - 4, 0), max(pages - 1, 0)}):
                theirs = render_template_string(
                    "{% import 'admin/lib.html' as lib %}{{ lib.pager(page, pages, url) }}",
                    page=page,
                    pages=pages,
                    url=url,
                )
                assert squeezed(pager(url, page, pages)) == squeezed(theirs), (page, pages)

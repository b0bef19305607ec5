"""The back-office menu is rendered once per (entries shown, page, language) and reused
(views/menu.py); the permissions of a user are worked out once per role list
(User.permission_set). Neither may ever show or allow what the user's roles do not."""

from __future__ import annotations

import re

from backoffice.domain import permissions as perm
from backoffice.models import Role

from .test_admin_lists import EXPECTED_MENU, _menu


def _nav(html: str) -> str:
    return html.split('id="admin-navbar-collapse"', 1)[1].split("</nav>", 1)[0]


def test_the_reused_menu_follows_each_role_page_and_language(login_as, db):
    """Every role in turn, twice, in one app (one cache): each sees its own entries,
    the page's own entry marked, in its own language."""
    master, _ = login_as(perm.MASTER_ADMIN, locale="en")
    agent, _ = login_as(perm.CUSTOMER_SERVICE, locale="id")
    dept, _ = login_as(perm.ADMIN_DEPARTMENT, locale="en")
    for _round in range(2):
        for b, role in ((master, perm.MASTER_ADMIN), (agent, perm.CUSTOMER_SERVICE)):
            for page in ("/admin/", "/admin/tickets/team/"):
                assert _menu(b.get(page).get_data(as_text=True)) == EXPECTED_MENU[role]
        assert (
            _menu(dept.get("/admin/tickets/team/").get_data(as_text=True))
            == (EXPECTED_MENU[perm.ADMIN_DEPARTMENT])
        )
    team = _nav(master.get("/admin/tickets/team/").get_data(as_text=True))
    home = _nav(master.get("/admin/").get_data(as_text=True))
    active = re.compile(r'class="dropdown-item active[^"]*" href="/admin/tickets/team/"')
    assert active.search(team)
    assert not active.search(home)
    assert "Tickets" in team and "Tiket" not in team
    assert "Tiket" in _nav(agent.get("/admin/tickets/team/").get_data(as_text=True))
    master.post("/lang/id", {"next": "/admin/"}, form_url="/admin/")
    assert "Tiket" in _nav(master.get("/admin/tickets/team/").get_data(as_text=True))


def test_the_menu_follows_a_change_of_roles_at_once(login_as, db):
    b, user = login_as(perm.MASTER_ADMIN)
    assert _menu(b.get("/admin/").get_data(as_text=True)) == EXPECTED_MENU[perm.MASTER_ADMIN]
    user.roles = [db.session.scalar(db.select(Role).filter_by(name=perm.CUSTOMER_SERVICE))]
    db.session.commit()
    html = b.get("/admin/").get_data(as_text=True)
    assert _menu(html) == EXPECTED_MENU[perm.CUSTOMER_SERVICE]
    assert b.get("/admin/staff/").status_code == 403


def test_permission_set_follows_changes_in_the_same_session(make, db):
    """The memo never outlives a change: roles added or removed, a role's permissions
    edited in place or replaced."""
    user = make.user(role=perm.CUSTOMER_SERVICE)
    db.session.commit()
    assert user.has_permission(perm.TICKET_REPLY)
    assert not user.has_permission(perm.ADMIN_PEOPLE)
    master = db.session.scalar(db.select(Role).filter_by(name=perm.MASTER_ADMIN))
    user.roles.append(master)
    assert user.has_permission(perm.ADMIN_PEOPLE)
    user.roles.remove(master)
    assert not user.has_permission(perm.ADMIN_PEOPLE)
    role = user.roles[0]
    role.permissions.append(perm.ADMIN_PEOPLE)
    assert user.has_permission(perm.ADMIN_PEOPLE)
    role.permissions = [perm.BACKOFFICE]
    assert not user.has_permission(perm.TICKET_REPLY)
    assert user.has_permission(perm.BACKOFFICE)
    db.session.rollback()
    assert user.has_permission(perm.TICKET_REPLY)
    assert not user.has_permission(perm.ADMIN_PEOPLE)


def test_list_and_static_links_are_what_url_for_builds(app):
    """views/urls.py builds them without werkzeug's rule map: the same strings."""
    from flask import url_for

    from backoffice.views.urls import list_url, static_url_for

    args = [
        {},
        {"page": None, "sort": 2, "desc": 1, "search": "a b&c/é?#%+", "page_size": 25},
        {"flt0_department_equals": "3", "flt1_kind": ["complaint", "question"], "x": True},
    ]
    with app.test_request_context("/admin/tickets/team/"):
        for a in args:
            assert list_url("tickets_team.index_view", a) == url_for("tickets_team.index_view", **a)
    for prefix in ("", "/carebox"):  # the URL prefix is part of what is remembered
        with app.test_request_context(
            "/admin/tickets/team/", base_url=f"http://localhost{prefix}/"
        ):
            for _twice in range(2):
                for endpoint, values in (
                    ("admin.static", {"filename": "admin/js/x.js", "v": "1.0"}),
                    ("static", {"filename": "admin.css"}),
                    ("web.favicon", {}),
                    ("admin.index", {}),
                    ("notices.index", {}),
                    ("security.logout", {}),
                    ("web.set_language", {"code": "en"}),
                ):
                    built = static_url_for(endpoint, **values)
                    assert built == url_for(endpoint, **values)
                    assert built.startswith(f"{prefix}/")
    with app.test_request_context("/admin/tickets/team/"):
        assert static_url_for("static", filename="a.css", _external=True) == url_for(
            "static", filename="a.css", _external=True
        )
    with app.test_request_context("/admin/", base_url="http://example.test/care/"):
        assert static_url_for("static", filename="admin.css") == "/care/static/admin.css"


def test_the_entries_worked_out_once_per_access_key_are_what_every_view_says(
    app, login_as, make, db
):
    """Per role, with and without a department: the entries reused for an access key
    are those every view's own check gives for the user (views/menu.py)."""
    from flask_login import login_user

    from backoffice.views.menu import ask_every_view, shown_items

    admin = app.extensions["admin"][0]
    users = [make.user(role=role) for role in perm.ROLE_PERMISSIONS]
    no_department = make.user(role=perm.ADMIN_DEPARTMENT)
    no_department.department = None
    users.append(no_department)
    users.append(make.user(role=perm.CUSTOMER_SERVICE, department="OPS"))
    db.session.commit()
    admin.__dict__.pop("_carebox_shown", None)
    for _round in range(2):
        for user in users:
            with app.test_request_context("/admin/"):
                login_user(user)
                assert shown_items(admin) == ask_every_view(admin), user.roles
    with app.test_request_context("/admin/"):
        login_user(no_department)
        without = shown_items(admin)
    with_department = next(u for u in users if perm.has(u, perm.TICKETS_DEPARTMENT))
    with app.test_request_context("/admin/"):
        login_user(with_department)
        assert shown_items(admin) != without  # the department's Team list is shown

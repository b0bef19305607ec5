"""The role-gated base of every back-office view."""

from __future__ import annotations

from flask import abort, redirect, request, url_for
from flask_admin import AdminIndexView, expose
from flask_login import current_user

from ..domain import permissions as perm


class StaffAccessMixin:
    """Staff with `required_permission` only: 403 when signed in, login redirect otherwise.

    Flask-Admin never calls Flask-Security's handlers (STACK.md trap 12), so the
    decision is made here. A view whose permission the user lacks is also left
    out of the menu, because Flask-Admin hides inaccessible views.
    """

    required_permission: str = perm.BACKOFFICE

    def is_accessible(self) -> bool:
        return (
            current_user.is_authenticated
            and current_user.active
            and perm.has(current_user, perm.BACKOFFICE)
            and perm.has(current_user, self.required_permission)
        )

    def inaccessible_callback(self, name, **kwargs):
        if current_user.is_authenticated:
            abort(403)
        return redirect(url_for("security.login", next=request.full_path))


class HomeView(StaffAccessMixin, AdminIndexView):
    @expose("/")
    def index(self):
        return self.render("admin/home.html")

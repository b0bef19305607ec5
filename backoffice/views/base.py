"""The role-gated base of every back-office view."""

from __future__ import annotations

import hashlib
import json
from functools import partial

from flask import abort, flash, redirect, request, url_for
from flask_admin.contrib.sqla import ModelView
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy.exc import DBAPIError, IntegrityError
from wtforms import HiddenField

from ..domain import DomainError
from ..domain import permissions as perm
from ..extensions import db
from ..i18n import admin_gettext, current_locale
from ..models.base import MAX_ID
from ..transactions import is_conflict
from .fields import AdminForm, ModelConverter, guard_widgets
from .urls import STATIC_ENDPOINTS, list_url, static_url_for


class StaffAccessMixin:
    """Staff with `required_permission` only: 403 when signed in, login redirect otherwise.

    Flask-Admin never calls Flask-Security's handlers (docs/architecture.md §13, trap 12), so the
    decision is made here. A view whose permission the user lacks is also left
    out of the menu, because Flask-Admin hides inaccessible views.
    """

    required_permission: str = perm.BACKOFFICE

    @staticmethod
    def access_key(user) -> tuple:
        """Everything `is_accessible` (here and in every subclass) reads of the user:
        signed in and active, their permissions, whether they have a department. Two
        users with one key are let into the same views; the menu works its entries out
        once per key (views/menu.py). A check that reads more must add it here."""
        if not (user.is_authenticated and user.active):
            return ()
        return (user.permission_set(), user.department_id is not None)

    def is_accessible(self) -> bool:
        # The user itself, not the proxy: the menu asks every view on every page.
        user = current_user._get_current_object()
        return (
            user.is_authenticated
            and user.active
            and perm.has(user, perm.BACKOFFICE)
            and perm.has(user, self.required_permission)
        )

    def render(self, template, **kwargs):
        """Flask-Admin's render, with its templates' `_gettext` remembered per language
        (i18n.admin_gettext) instead of asked of flask_babel's domain every time."""
        self._template_args["_gettext"] = partial(admin_gettext, self.admin.translations_path)
        return super().render(template, **kwargs)

    def get_url(self, endpoint, **kwargs):
        """Flask-Admin's static files (its templates ask the view) built once."""
        if endpoint in STATIC_ENDPOINTS:
            return static_url_for(endpoint, **kwargs)
        return super().get_url(endpoint, **kwargs)

    def inaccessible_callback(self, name, **kwargs):
        if current_user.is_authenticated:
            abort(403)
        return redirect(url_for("security.login", next=request.full_path))


def enum_label(view, context, model, name):
    """Column formatter: an enum column shown by its translated label."""
    value = getattr(model, name)
    return value.label if value is not None else ""


class SecureModelView(StaffAccessMixin, ModelView):
    """A Flask-Admin ModelView that is safe by default.

    Guarantees:
    - every form (create, edit, delete, actions) carries and checks a CSRF
      token (docs/architecture.md §13, trap 1);
    - `scope()` narrows the list, its count, `get_one` (details, edit, delete,
      ajax) and the actions, which all read `get_query` (trap 2);
    - an operation the view does not offer answers 404 instead of Flask-Admin's
      silent redirect; export is off (reports stream their own, trap 5);
    - a DomainError or a broken unique/foreign key becomes a flashed message;
    - two people editing one record cannot silently overwrite each other: the
      edit form carries a fingerprint of the record as it was shown, and a save
      whose record has changed since is refused (trap 8).
    """

    form_base_class = AdminForm
    model_form_converter = ModelConverter
    can_create = False
    can_edit = False
    can_delete = False
    can_view_details = False
    can_export = False
    page_size = 25
    can_set_page_size = True
    page_size_options = (25, 50, 100)

    def scope(self):
        """The WHERE clause of the rows this user may reach here; None means all rows."""
        return None

    def get_query(self):
        query = super().get_query()
        clause = self.scope()
        return query if clause is None else query.filter(clause)

    def get_count_query(self):
        query = super().get_count_query()
        clause = self.scope()
        return query if clause is None else query.filter(clause)

    def get_one(self, id):
        """The row with this primary key inside `scope()`, else 404 (never another's row)."""
        try:
            pk = int(id)
        except (TypeError, ValueError):
            abort(404)
        if not 0 < pk <= MAX_ID:
            abort(404)
        obj = self.get_query().filter(self.model.id == pk).one_or_none()
        if obj is None:
            abort(404)
        return obj

    def get_url(self, endpoint, **kwargs):
        """The list's own links (sort, pager, filters) on its index URL built once."""
        if endpoint == ".index_view" and not any(k.startswith("_") for k in kwargs):
            return list_url(f"{self.endpoint}.index_view", kwargs)
        return super().get_url(endpoint, **kwargs)

    def _get_list_extra_args(self):
        """A hand-edited ?page= stays in range: never negative (MariaDB refuses a negative
        OFFSET), never past what the database's integers hold (an empty page instead)."""
        args = super()._get_list_extra_args()
        size = args.page_size if args.page_size in self.page_size_options else self.page_size
        args.page = min(max(args.page or 0, 0), MAX_ID // (2 * size))
        return args

    def scoped_ids(self, ids):
        """The rows of an action's posted ids that are inside `scope()`."""
        wanted = []
        for raw in ids:
            try:
                pk = int(raw)
            except (TypeError, ValueError):
                continue
            if 0 < pk <= MAX_ID:
                wanted.append(pk)
        if not wanted:
            return []
        return self.get_query().filter(self.model.id.in_(wanted)).all()

    def _get_filter_groups(self):
        """Flask-Admin's filter groups (their names and fixed options, in this language),
        made once per language; a filter with `load_options()` (e.g. departments) gets
        fresh options on every request."""
        language = str(current_locale())
        made = self.__dict__.setdefault("_filter_groups_made", {})
        if language not in made:
            made[language] = super()._get_filter_groups()
        groups = made[language]
        if groups is None:
            return None
        fresh = {}
        for key, items in groups.items():
            fresh[key] = []
            for item in items:
                flt = self._filters[item["index"]]
                if hasattr(flt, "load_options"):
                    item = {**item, "options": [(k, str(v)) for k, v in flt.load_options()]}
                fresh[key].append(item)
        return fresh

    _OFFERED = {
        "create_view": "can_create",
        "edit_view": "can_edit",
        "delete_view": "can_delete",
        "details_view": "can_view_details",
        "export": "can_export",
    }

    def _handle_view(self, name, **kwargs):
        response = super()._handle_view(name, **kwargs)
        if response is not None:
            return response
        flag = self._OFFERED.get(name)
        if flag and not getattr(self, flag):
            abort(404)
        if name == "ajax_update" and not self.column_editable_list:
            abort(404)
        return None

    def create_form(self, obj=None):
        return guard_widgets(super().create_form(obj))

    def get_edit_form(self):
        class EditForm(super().get_edit_form()):
            row_state = HiddenField()

        return EditForm

    def edit_form(self, obj=None):
        form = guard_widgets(super().edit_form(obj))
        if request.method == "GET" and obj is not None:
            form.row_state.data = self.row_state(form, obj)
        return form

    @staticmethod
    def row_state(form, obj) -> str:
        """A fingerprint of what the edit form shows of `obj` (its fields' current values)."""
        shown = {}
        for name in form.data:
            if name in ("csrf_token", "row_state") or not hasattr(obj, name):
                continue
            value = getattr(obj, name)
            if isinstance(value, list | tuple | set):
                value = sorted(str(getattr(v, "id", v)) for v in value)
            elif hasattr(value, "__table__"):
                value = value.id
            shown[name] = value
        text = json.dumps(shown, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def update_model(self, form, model) -> bool:
        """Save only if the record is still as the form showed it; check and write are
        one step: the row is read again under a row lock (SELECT … FOR UPDATE), so a
        second save of the same record waits for the first to commit and then sees its
        change (issue 9 item 14). SQLite has no row locks but runs one writer at a time."""
        seen = form.row_state.data
        if seen:
            db.session.refresh(model, with_for_update=True)
        if seen and seen != self.row_state(form, model):
            flash(
                _(
                    "Someone else changed this record while you were editing it, so "
                    "nothing was saved. Open it again to see their change, then redo yours."
                ),
                "error",
            )
            return False
        return super().update_model(form, model)

    def handle_view_exception(self, exc: Exception) -> bool:
        if isinstance(exc, DBAPIError):
            # Before any flash: its translation may read the user's language from the
            # database, which a failed flush leaves unusable until the rollback.
            db.session.rollback()
        if isinstance(exc, DomainError):
            flash(str(exc), "error")
            return True
        if is_conflict(exc):  # Galera: another node's commit won (backoffice/transactions.py)
            flash(
                _(
                    "Someone else changed this record while you were editing it, so "
                    "nothing was saved. Open it again to see their change, then redo yours."
                ),
                "error",
            )
            return True
        if isinstance(exc, IntegrityError):
            flash(
                _(
                    "This change conflicts with existing data: a code or e-mail "
                    "address is already used, or the record is still referenced."
                ),
                "error",
            )
            return True
        return super().handle_view_exception(exc)

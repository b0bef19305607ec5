"""The role-gated base of every back-office view."""

from __future__ import annotations

import copy

from flask import abort, flash, redirect, request, url_for
from flask_admin.contrib.sqla import ModelView
from flask_babel import gettext as _
from flask_login import current_user
from flask_wtf import FlaskForm
from flask_wtf.form import _Auto
from sqlalchemy.exc import IntegrityError
from wtforms import SelectField
from wtforms.validators import Regexp, ValidationError

from ..domain import DomainError
from ..domain import permissions as perm
from .fields import ModelConverter

try:
    from wtforms import SelectChoice
except ImportError:  # WTForms before 3.3 takes (value, label) tuples
    SelectChoice = None


def to_choices(pairs) -> list:
    """(value, label) pairs as WTForms wants them: SelectChoice since 3.3
    (tuples are deprecated there), tuples before."""
    pairs = list(pairs)
    return [SelectChoice(v, lbl) for v, lbl in pairs] if SelectChoice else pairs


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


class EnumSelectField(SelectField):
    """A select of a LabelledEnum: translated labels, the member as data.

    Flask-Admin's own Enum converter coerces members by *name*, while carebox
    stores values, so an edit form would preselect nothing.
    """

    def __init__(self, label=None, validators=None, enum=None, allow_blank=False, **kwargs):
        self.enum = enum
        kwargs.pop("coerce", None)
        kwargs.pop("choices", None)
        super().__init__(label, validators, coerce=self._coerce, choices=self._choices, **kwargs)
        self.allow_blank = allow_blank

    def _coerce(self, value):
        if value in (None, "", "None"):
            return None
        return self.enum(value)

    def _choices(self):
        blank = [("", "—")] if self.allow_blank else []
        return to_choices(blank + [(m.value, m.label) for m in self.enum])


class Pattern(Regexp):
    """Regexp whose (lazy) message reaches the page.

    Flask-Admin shows a field error only if it is a `str`; a lazy_gettext
    message would fail that test and the user would see no reason at all.
    """

    def __call__(self, form, field):
        try:
            super().__call__(form, field)
        except ValidationError as exc:
            raise ValidationError(str(exc)) from None


def enum_label(view, context, model, name):
    """Column formatter: an enum column shown by its translated label."""
    value = getattr(model, name)
    return value.label if value is not None else ""


class AdminForm(FlaskForm):
    """Flask-WTF's form (CSRF token checked) that remembers the edited object.

    Flask-Admin's own BaseForm keeps it as `_obj`, and its Unique validator
    needs it to let a row keep its own value; FlaskForm alone would make every
    unchanged unique field "Already exists." on edit.
    """

    def __init__(self, formdata=_Auto, obj=None, **kwargs):
        self._obj = obj
        super().__init__(formdata=formdata, obj=obj, **kwargs)


def _guard_widgets(form):
    """Give every widget an `input_type`.

    Flask-Admin's lib.html compares `field.widget.input_type` without an
    `is defined` guard when a field shows an error or a description; a
    textarea or select has none, which a strict Jinja environment (the test
    suite's) refuses. A per-form copy of the widget keeps the classes untouched.
    """
    for field in form:
        if not hasattr(field.widget, "input_type"):
            widget = copy.copy(field.widget)
            widget.input_type = None
            field.widget = widget
    return form


class SecureModelView(StaffAccessMixin, ModelView):
    """A Flask-Admin ModelView that is safe by default.

    Guarantees:
    - every form (create, edit, delete, actions) carries and checks a CSRF
      token (STACK.md trap 1);
    - `scope()` narrows the list, its count, `get_one` (details, edit, delete,
      ajax) and the actions, which all read `get_query` (trap 2);
    - an operation the view does not offer answers 404 instead of Flask-Admin's
      silent redirect; export is off (reports stream their own, trap 5);
    - a DomainError or a broken unique/foreign key becomes a flashed message.
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
        obj = self.get_query().filter(self.model.id == pk).one_or_none()
        if obj is None:
            abort(404)
        return obj

    def scoped_ids(self, ids):
        """The rows of an action's posted ids that are inside `scope()`."""
        wanted = []
        for raw in ids:
            try:
                wanted.append(int(raw))
            except (TypeError, ValueError):
                continue
        if not wanted:
            return []
        return self.get_query().filter(self.model.id.in_(wanted)).all()

    def _get_filter_groups(self):
        """Flask-Admin computes filter options once at start-up; a filter with
        `load_options()` (e.g. departments) gets fresh ones on every request."""
        groups = super()._get_filter_groups()
        for items in (groups or {}).values():
            for item in items:
                flt = self._filters[item["index"]]
                if hasattr(flt, "load_options"):
                    item["options"] = [(k, str(v)) for k, v in flt.load_options()]
        return groups

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
        return _guard_widgets(super().create_form(obj))

    def edit_form(self, obj=None):
        return _guard_widgets(super().edit_form(obj))

    def handle_view_exception(self, exc: Exception) -> bool:
        if isinstance(exc, DomainError):
            flash(str(exc), "error")
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

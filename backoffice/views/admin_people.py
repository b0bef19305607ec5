"""The master admin's people: staff users, departments and routing rules (ADMIN_PEOPLE)."""

from __future__ import annotations

import uuid

from flask import current_app, flash
from flask_admin.actions import action
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from flask_login import current_user
from flask_security import hash_password
from flask_security.mail_util import EmailValidateException
from sqlalchemy import func, inspect, or_, select
from wtforms import PasswordField, SelectField
from wtforms.validators import DataRequired, Length, Optional, ValidationError

from ..domain import event_notes, worktime
from ..domain import permissions as perm
from ..extensions import db
from ..models import Department, Role, ShipmentSituation, TicketKind, User
from ..models.base import utcnow
from ..passwords import password_problems
from .base import SecureModelView, enum_label
from .fields import EnumSelectField, Pattern, to_choices
from .formatting import datetime_text

PEOPLE = _l("People")


def staff_roles() -> list[Role]:
    """Roles that open the back office: the only ones this screen hands out."""
    return [
        r
        for r in db.session.scalars(select(Role).order_by(Role.name))
        if _grants(r, perm.BACKOFFICE)
    ]


def _grants(role: Role, permission: str) -> bool:
    return permission in (role.permissions or [])


def _role_label(role: Role) -> str:
    label = perm.ROLE_LABELS.get(role.name)
    return str(label) if label is not None else (role.description or role.name)


class StaffUserView(SecureModelView):
    """Staff accounts. Passwords are set here but never shown (nor are their hashes)."""

    required_permission = perm.ADMIN_PEOPLE
    can_create = True
    can_edit = True
    can_view_details = True
    column_list = ["email", "name", "roles", "department", "active", "last_login_at"]
    column_details_list = [
        "email",
        "name",
        "phone",
        "roles",
        "department",
        "locale",
        "active",
        "created_at",
        "last_login_at",
        "login_count",
    ]
    column_labels = {
        "email": _l("E-mail"),
        "name": _l("Name"),
        "phone": _l("Phone"),
        "roles": _l("Roles"),
        "department": _l("Department"),
        "locale": _l("Language"),
        "active": _l("Active"),
        "created_at": _l("Created"),
        "last_login_at": _l("Last login"),
        "login_count": _l("Logins"),
        "new_password": _l("Password"),
    }
    column_formatters = {
        "roles": lambda v, c, m, n: ", ".join(_role_label(r) for r in m.roles),
        "department": lambda v, c, m, n: m.department.code if m.department else "",
        "last_login_at": lambda v, c, m, n: datetime_text(m.last_login_at),
        "created_at": lambda v, c, m, n: datetime_text(m.created_at),
    }
    column_searchable_list = ["email", "name"]
    column_filters = ["active"]
    column_default_sort = ("email", False)
    form_columns = [
        "email",
        "name",
        "phone",
        "roles",
        "department",
        "locale",
        "active",
        "new_password",
    ]
    form_extra_fields = {
        "new_password": PasswordField(
            _l("Password"),
            validators=[Optional(), Length(max=128)],
            description=_l("Required for a new account; leave empty to keep the current one."),
        )
    }
    form_overrides = {"locale": SelectField}
    form_args = {
        "email": {"validators": [DataRequired(), Length(max=255)]},
        "name": {"validators": [DataRequired(), Length(max=120)]},
        "phone": {"validators": [Optional(), Length(max=32)]},
        "locale": {"choices": to_choices([("id", "Bahasa Indonesia"), ("en", "English")])},
        "roles": {"query_factory": staff_roles, "get_label": _role_label},
        "department": {
            "query_factory": lambda: db.session.scalars(
                select(Department).order_by(Department.code)
            ).all(),
            "get_label": lambda d: f"{d.code} — {d}",
        },
    }

    def scope(self):
        """Staff accounts, and accounts with no role yet; customers live in Customers."""
        ids = [r.id for r in staff_roles()]
        return or_(User.roles.any(Role.id.in_(ids)), ~User.roles.any())

    def on_model_change(self, form, model, is_created):
        """Checks every save: unique e-mail, a staff role, a department where one is
        needed, a password for a new account, and nobody locking themselves out."""
        if is_created:
            model.fs_uniquifier = uuid.uuid4().hex
            model.confirmed_at = utcnow()  # the master admin vouches for a staff address
        try:
            model.email = current_app.extensions["security"]._mail_util.validate(form.email.data)
        except EmailValidateException as exc:
            raise ValidationError(str(exc)) from exc
        with db.session.no_autoflush:  # the new row is not complete yet
            clash = db.session.scalar(
                select(User.id).where(
                    func.lower(User.email) == model.email.lower(), User.id != model.id
                )
            )
        if clash is not None:
            raise ValidationError(_("Another account already uses %(email)s.", email=model.email))
        if not model.roles:
            raise ValidationError(_("Give the account at least one staff role."))
        if perm.needs_department(model.roles) and not model.department:
            raise ValidationError(_("A department admin needs a department."))
        password = form.new_password.data or ""
        minimum = current_app.config.get("SECURITY_PASSWORD_LENGTH_MIN", 8)
        if is_created and not password:
            raise ValidationError(_("A new account needs a password."))
        if password and len(password) < minimum:
            raise ValidationError(_("The password needs at least %(n)d characters.", n=minimum))
        if password:
            # Staff passwords meet the staff rule (backoffice/passwords.py), set here or anywhere.
            problems = password_problems(
                password, staff=True, context=[form.email.data or "", form.name.data or ""]
            )
            if problems:
                raise ValidationError(problems[0])
        if not is_created and model.id == current_user.id:
            if not model.active:
                raise ValidationError(_("You cannot deactivate your own account."))
            if not any(_grants(r, perm.ADMIN_PEOPLE) for r in model.roles):
                raise ValidationError(_("You cannot remove your own master admin role."))
        if password:
            model.password = hash_password(password)
        if not is_created and model.id != current_user.id:
            history = inspect(model).attrs.active.history
            if password or (history.has_changes() and not model.active):
                # A new password or a deactivation ends the user's open sessions.
                model.fs_uniquifier = uuid.uuid4().hex

    @action("deactivate", _l("Deactivate"), _l("Deactivate the selected accounts?"))
    def action_deactivate(self, ids):
        done = 0
        for user in self.scoped_ids(ids):
            if user.id == current_user.id:
                flash(_("You cannot deactivate your own account."), "error")
                continue
            if user.active:
                user.active = False
                user.fs_uniquifier = uuid.uuid4().hex
                done += 1
        db.session.commit()
        flash(ngettext("%(num)d account deactivated.", "%(num)d accounts deactivated.", done))


class DepartmentView(SecureModelView):
    """Departments are deactivated, never deleted: tickets keep pointing at them."""

    required_permission = perm.ADMIN_PEOPLE
    can_create = True
    can_edit = True
    column_list = ["code", "name_id", "name_en", "email", "timezone", "active", "round_robin"]
    column_labels = {
        "code": _l("Code"),
        "name_id": _l("Name (Indonesian)"),
        "name_en": _l("Name (English)"),
        "email": _l("E-mail"),
        "active": _l("Active"),
        "round_robin": _l("Round-robin"),
        "timezone": _l("Time zone"),
        "observes_holidays": _l("Closed on public holidays"),
    }
    column_descriptions = {
        "round_robin": _l(
            "New tickets reaching the department go to its agents in turn, "
            "skipping agents marked away."
        ),
    }
    column_default_sort = ("code", False)
    column_searchable_list = ["code", "name_id", "name_en"]
    form_columns = [
        "code",
        "name_id",
        "name_en",
        "email",
        "timezone",
        "observes_holidays",
        "active",
        "round_robin",
    ]
    form_overrides = {"timezone": SelectField}
    form_args = {
        "timezone": {
            "label": _l("Time zone"),
            "choices": to_choices((z, f"{z} ({worktime.ZONE_ABBR[z]})") for z in worktime.ZONES),
        },
        "code": {
            "validators": [
                DataRequired(),
                Pattern(r"^[A-Z0-9_]{2,20}$", message=_l("2-20 capital letters, digits or _.")),
            ]
        },
        "name_id": {"validators": [DataRequired(), Length(max=120)]},
        "name_en": {"validators": [DataRequired(), Length(max=120)]},
        "email": {"validators": [Optional(), Length(max=255)]},
    }

    def on_model_change(self, form, model, is_created):
        """Note whether the working calendar (zone, holidays) changed."""
        state = inspect(model)
        model._calendar_changed = not is_created and (
            state.attrs.timezone.history.has_changes()
            or state.attrs.observes_holidays.history.has_changes()
        )

    def after_model_change(self, form, model, is_created):
        """The department's running tickets follow a new zone or holiday rule."""
        if getattr(model, "_calendar_changed", False):
            from .calendar import _recompute

            why = event_notes.encode(event_notes.CALENDAR_CHANGED, d=model.code)
            _recompute(why, department_ids=[model.id])


class RoutingRuleView(SecureModelView):
    """Which department receives a new ticket of a kind, product and/or parcel situation;
    a rule naming none of them is the catch-all (every ticket no other rule takes)."""

    required_permission = perm.ADMIN_PEOPLE
    can_create = True
    can_edit = True
    can_delete = True
    column_list = ["department", "situation", "kind", "product", "position", "active"]
    column_labels = {
        "department": _l("Department"),
        "situation": _l("Parcel situation"),
        "kind": _l("Kind"),
        "product": _l("Product or service"),
        "position": _l("Position"),
        "active": _l("Active"),
    }
    column_formatters = {
        "kind": enum_label,
        "situation": enum_label,
        "department": lambda v, c, m, n: m.department.code,
        "product": lambda v, c, m, n: m.product.code if m.product else "",
    }
    column_descriptions = {
        "situation": _l(
            "A rule that names no situation, kind or product is the catch-all: it takes "
            "every new ticket no other rule matches. Delete it to dispatch such tickets "
            "by hand from Progress."
        ),
    }
    column_default_sort = [("position", False), ("id", False)]
    form_columns = ["department", "situation", "kind", "product", "position", "active"]
    form_overrides = {"kind": EnumSelectField, "situation": EnumSelectField}
    form_args = {
        "kind": {"enum": TicketKind, "allow_blank": True, "label": _l("Kind")},
        "situation": {
            "enum": ShipmentSituation,
            "allow_blank": True,
            "label": _l("Parcel situation"),
        },
    }

    def after_model_change(self, form, model, is_created):
        """Say so when the saved rule is a catch-all."""
        if model.kind is None and model.product is None and model.situation is None:
            flash(
                _(
                    "This rule is a catch-all: every new ticket that no other rule matches "
                    "goes to %(d)s.",
                    d=model.department.code,
                ),
                "info",
            )

"""/admin/canned-replies/: everyone manages their personal canned replies; the master
admin (CANNED_SHARED) also the shared ones (domain/canned.py says who sees which)."""

from __future__ import annotations

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select
from wtforms import SelectField
from wtforms.validators import DataRequired, Length, Optional, ValidationError

from ..domain import canned
from ..domain import permissions as perm
from ..extensions import db
from ..models import CannedReply, Department
from .base import SecureModelView
from .fields import Pattern, to_choices

PERSONAL, EVERYONE = "personal", "everyone"


def _visibility_text(view, context, model, name):
    if model.owner_id is not None:
        return _("Personal: %(name)s", name=model.owner.display_name)
    if model.department is not None:
        return _("Shared with %(department)s", department=str(model.department))
    return _("Shared with everyone")


class CannedReplyView(SecureModelView):
    """The list shows exactly what the user may manage (`canned.manageable_scope`),
    so an edit or delete URL of anything else is a 404 (SecureModelView's get_one)."""

    can_create = True
    can_edit = True
    can_delete = True
    column_list = ["shortcut", "title", "visibility", "usage_count", "active"]
    column_labels = {
        "shortcut": _l("Shortcut"),
        "title": _l("Title"),
        "visibility": _l("Shared with"),
        "usage_count": _l("Times used"),
        "active": _l("Active"),
        "body_id": _l("Text (Indonesian)"),
        "body_en": _l("Text (English)"),
    }
    column_formatters = {"visibility": _visibility_text}
    column_sortable_list = ["shortcut", "title", "usage_count"]
    column_default_sort = [("shortcut", False), ("id", False)]
    column_searchable_list = ["shortcut", "title"]
    form_columns = ["visibility", "shortcut", "title", "body_id", "body_en", "active"]
    form_extra_fields = {"visibility": SelectField(_l("Shared with"))}
    column_descriptions = {
        "shortcut": _l("Typed after “/” in the reply box: lower-case letters, digits and -."),
        "body_id": _l(
            "Placeholders: {nama_pelanggan} {nomor_tiket} {resi} {status_kiriman} {nama_agen}"
        ),
    }
    form_args = {
        "shortcut": {
            "validators": [
                DataRequired(),
                Pattern(
                    canned.SHORTCUT_RE.pattern,
                    message=_l("1-40 of a-z, 0-9 and -, starting with a letter or digit."),
                ),
            ]
        },
        "title": {"validators": [DataRequired(), Length(max=120)]},
        "body_id": {"validators": [DataRequired(), Length(max=10_000)]},
        "body_en": {"validators": [Optional(), Length(max=10_000)]},
    }

    def scope(self):
        return canned.manageable_scope(current_user)

    def _shared_manager(self) -> bool:
        return perm.has(current_user, perm.CANNED_SHARED)

    def _with_visibility(self, form):
        """The "shared with" choice exists only for those who manage shared replies."""
        if not self._shared_manager():
            del form.visibility  # WTForms leaves the attribute, set to None
            return form
        departments = db.session.scalars(select(Department).order_by(Department.code))
        form.visibility.choices = to_choices(
            [(PERSONAL, _("Only me")), (EVERYONE, _("Everyone"))]
            + [(str(d.id), _("Department %(code)s", code=d.code)) for d in departments]
        )
        return form

    def create_form(self, obj=None):
        form = self._with_visibility(super().create_form(obj))
        if form.visibility is not None and not form.visibility.data:
            form.visibility.data = PERSONAL
        return form

    def edit_form(self, obj=None):
        return self._with_visibility(super().edit_form(obj))

    def on_form_prefill(self, form, id):
        """Show the stored visibility in the choice."""
        model = self.get_one(id)
        if form.visibility is not None:
            if model.owner_id is not None:
                form.visibility.data = PERSONAL
            elif model.department_id is not None:
                form.visibility.data = str(model.department_id)
            else:
                form.visibility.data = EVERYONE

    def on_model_change(self, form, model, is_created):
        """Personal replies belong to whoever writes them; only CANNED_SHARED sets the
        visibility, and a shortcut is unique among what one person can insert."""
        model.shortcut = (model.shortcut or "").strip().lower()
        choice = form.visibility.data if form.visibility is not None else PERSONAL
        if choice == PERSONAL:
            if is_created or model.owner_id is None:
                model.owner_id, model.department_id = current_user.id, None
        elif choice == EVERYONE:
            model.owner_id, model.department_id = None, None
        else:
            model.owner_id, model.department_id = None, int(choice)
        with db.session.no_autoflush:
            clash = db.session.scalar(
                select(CannedReply.id).where(
                    CannedReply.shortcut == model.shortcut,
                    CannedReply.owner_id.is_(None)
                    if model.owner_id is None
                    else CannedReply.owner_id == model.owner_id,
                    CannedReply.department_id.is_(None)
                    if model.department_id is None
                    else CannedReply.department_id == model.department_id,
                    CannedReply.id != (model.id or 0),
                )
            )
        if clash is not None:
            raise ValidationError(_("Another canned reply already uses /%(s)s.", s=model.shortcut))

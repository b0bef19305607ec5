"""/admin/whatsapp-templates/: the approved WhatsApp templates, entered by the master admin.

Meta approves a template (name, language, body with {{1}}, {{2}}, …) in the
WhatsApp Manager; carebox only needs to know it exists, what its parameters are
and what it is used for (domain/whatsapp_templates.py).
"""

from __future__ import annotations

import json

from flask_babel import lazy_gettext as _l
from wtforms import SelectField, StringField
from wtforms.validators import DataRequired, InputRequired, Length, Optional, ValidationError

from ..domain import DomainError
from ..domain import permissions as perm
from ..domain import whatsapp_templates as templates
from ..models import WhatsAppTemplateUse
from .base import SecureModelView, enum_label
from .fields import EnumSelectField, Pattern, PlaceholderSelect, to_choices

LANGUAGES = (("id", "Bahasa Indonesia (id)"), ("en", "English (en)"))


def _stripped(value):
    return (value or "").strip()


def _parameters_text(view, context, model, name):
    return ", ".join(templates.parameters_of(model))


class WhatsAppTemplateView(SecureModelView):
    """Master admin only (ADMIN_CONTENT): create, edit, delete templates."""

    required_permission = perm.ADMIN_CONTENT
    can_create = True
    can_edit = True
    can_delete = True
    column_list = ["name", "language", "use", "parameters", "active"]
    column_labels = {
        "name": _l("Template name"),
        "language": _l("Language"),
        "use": _l("Used for"),
        "parameters": _l("Parameters"),
        "parameter_list": _l("Parameters"),
        "body": _l("Approved text"),
        "active": _l("Active"),
    }
    column_formatters = {"use": enum_label, "parameters": _parameters_text}
    column_default_sort = [("name", False), ("language", False)]
    column_searchable_list = ["name"]
    form_columns = ["name", "language", "use", "parameter_list", "body", "active"]
    form_overrides = {"use": EnumSelectField, "language": SelectField}
    form_extra_fields = {
        "parameter_list": StringField(
            _l("Parameters"), validators=[Optional(), Length(max=500)], filters=[_stripped]
        )
    }
    column_descriptions = {
        "name": _l("Exactly as approved in WhatsApp Manager: a-z, 0-9 and _."),
        "parameter_list": _l(
            "The body's {{1}}, {{2}}, … in order, separated by commas. Filled from the "
            "ticket: nomor_tiket, nama_pelanggan, resi, status_kiriman, nama_agen, balasan, "
            "tautan_tiket, tautan_rating; any other name is typed at the desk."
        ),
        "body": _l("Optional: the approved text with {{1}}, {{2}}, …, shown in the conversation."),
    }
    form_args = {
        "name": {
            "validators": [
                DataRequired(),
                Pattern(r"^[a-z0-9_]{1,512}$", message=_l("Only a-z, 0-9 and _.")),
            ]
        },
        "language": {
            "choices": to_choices(LANGUAGES),
            "validators": [InputRequired()],
            "label": _l("Language"),
            "widget": PlaceholderSelect(),  # a required select starts empty (HTML)
        },
        "use": {"enum": WhatsAppTemplateUse, "label": _l("Used for")},
        "body": {"validators": [Optional(), Length(max=1024)]},
    }

    def on_form_prefill(self, form, id):
        """The stored JSON list shown as the comma-separated names the admin typed."""
        model = self.get_one(id)
        form.parameter_list.data = ", ".join(templates.parameters_of(model))

    def on_model_change(self, form, model, is_created):
        """Parameters are checked names (domain.whatsapp_templates.parse_parameters)."""
        try:
            labels = templates.parse_parameters(form.parameter_list.data or "")
        except DomainError as exc:
            raise ValidationError(str(exc)) from exc
        model.parameters = json.dumps(labels)
        model.body = (model.body or "").strip()

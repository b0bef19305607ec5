"""The master admin's content: FAQ, products and services, announcements (ADMIN_CONTENT).

Announcements are edited here; their "Send / publish" page and the send log
live in views/announcements.py.
"""

from __future__ import annotations

from flask import flash
from flask_admin.actions import action
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from wtforms.validators import DataRequired, Length, NumberRange, Optional, ValidationError

from ..domain import announcements, catalog
from ..domain import permissions as perm
from ..domain.faq import KEY_RE
from ..extensions import db
from ..models import Announcement, AnnouncementKind, Badge, ProductKind
from ..models.base import utcnow
from .announcements import AnnouncementSendMixin
from .base import SecureModelView, enum_label
from .fields import EnumSelectField, Pattern
from .formatting import datetime_text, money_text

CONTENT = _l("Content")

TEXT_LABELS = {
    "code": _l("Code"),
    "key": _l("Key"),
    "name_id": _l("Name (Indonesian)"),
    "name_en": _l("Name (English)"),
    "position": _l("Position"),
    "published": _l("Published"),
    "category": _l("Category"),
    "question_id": _l("Question (Indonesian)"),
    "answer_id": _l("Answer (Indonesian)"),
    "question_en": _l("Question (English)"),
    "answer_en": _l("Answer (English)"),
    "updated_at": _l("Updated"),
    "kind": _l("Kind"),
    "description_id": _l("Description (Indonesian)"),
    "description_en": _l("Description (English)"),
    "base_price": _l("Base price (Rp)"),
    "price_per_kg": _l("Price per kg (Rp)"),
    "min_weight_kg": _l("Minimum weight (kg)"),
    "max_weight_kg": _l("Maximum weight (kg)"),
    "eta_days": _l("Delivery time (days)"),
    "badge": _l("Badge"),
    "badge_note_id": _l("Badge note (Indonesian)"),
    "badge_note_en": _l("Badge note (English)"),
    "active": _l("Active"),
    "title_id": _l("Title (Indonesian)"),
    "body_id": _l("Text (Indonesian)"),
    "title_en": _l("Title (English)"),
    "body_en": _l("Text (English)"),
    "product": _l("Product or service"),
    "published_at": _l("Published at"),
    "created_at": _l("Created"),
}


class ContentView(SecureModelView):
    required_permission = perm.ADMIN_CONTENT
    can_create = True
    can_edit = True
    column_labels = TEXT_LABELS


class FaqCategoryView(ContentView):
    column_list = ["code", "name_id", "name_en", "position"]
    column_default_sort = [("position", False), ("code", False)]
    form_columns = ["code", "name_id", "name_en", "position"]
    form_args = {
        "code": {
            "validators": [
                DataRequired(),
                Pattern(r"^[a-z0-9_]{1,40}$", message=_l("1-40 of a-z, 0-9 and _.")),
            ]
        },
        "name_id": {"validators": [DataRequired(), Length(max=120)]},
        "name_en": {"validators": [DataRequired(), Length(max=120)]},
    }


class PublishActionsMixin:
    """Bulk publish/unpublish of the rows in scope."""

    def _set_published(self, ids, value: bool):
        rows = self.scoped_ids(ids)
        for row in rows:
            row.published = value
            if hasattr(row, "published_at") and value and row.published_at is None:
                row.published_at = utcnow()
        db.session.commit()
        flash(ngettext("%(num)d entry updated.", "%(num)d entries updated.", len(rows)), "success")

    @action("publish", _l("Publish"))
    def action_publish(self, ids):
        self._set_published(ids, True)

    @action("unpublish", _l("Unpublish"))
    def action_unpublish(self, ids):
        self._set_published(ids, False)


class FaqEntryView(PublishActionsMixin, ContentView):
    column_list = ["key", "category", "question_id", "published", "position", "updated_at"]
    column_formatters = {
        "category": lambda v, c, m, n: m.category.name_id,
        "updated_at": lambda v, c, m, n: datetime_text(m.updated_at),
    }
    column_searchable_list = ["key", "question_id", "question_en"]
    column_filters = ["published", "category.code"]
    column_default_sort = [("position", False), ("key", False)]
    form_columns = [
        "key",
        "category",
        "question_id",
        "answer_id",
        "question_en",
        "answer_en",
        "published",
        "position",
    ]
    form_args = {
        "key": {
            "validators": [
                DataRequired(),
                Pattern(KEY_RE.pattern, message=_l("1-80 of a-z, 0-9, '-', '_' and '.'.")),
            ]
        },
        "question_id": {"validators": [DataRequired(), Length(max=300)]},
        "answer_id": {"validators": [DataRequired(), Length(max=10_000)]},
        "question_en": {"validators": [Optional(), Length(max=300)]},
        "answer_en": {"validators": [Optional(), Length(max=10_000)]},
    }

    def on_model_change(self, form, model, is_created):
        """An empty English text takes the Indonesian one: the portal shows
        `*_en` as it is to English readers."""
        model.question_en = model.question_en or model.question_id
        model.answer_en = model.answer_en or model.answer_id


class ProductView(ContentView):
    """Products and services. Deactivate instead of deleting: orders refer to them."""

    column_list = ["code", "kind", "name_id", "base_price", "price_per_kg", "badge", "active"]
    column_formatters = {
        "kind": enum_label,
        "badge": enum_label,
        "base_price": lambda v, c, m, n: money_text(m.base_price),
        "price_per_kg": lambda v, c, m, n: money_text(m.price_per_kg),
    }
    column_searchable_list = ["code", "name_id", "name_en"]
    column_filters = ["active"]
    column_default_sort = [("position", False), ("code", False)]
    form_columns = [
        "code",
        "kind",
        "name_id",
        "name_en",
        "description_id",
        "description_en",
        "base_price",
        "price_per_kg",
        "min_weight_kg",
        "max_weight_kg",
        "eta_days",
        "badge",
        "badge_note_id",
        "badge_note_en",
        "position",
        "active",
    ]
    form_overrides = {"kind": EnumSelectField, "badge": EnumSelectField}
    form_args = {
        "code": {
            "validators": [
                DataRequired(),
                Pattern(catalog.CODE_RE.pattern, message=_l("2-20 capital letters, digits or _.")),
            ]
        },
        "kind": {"enum": ProductKind, "label": _l("Kind")},
        "badge": {"enum": Badge, "label": _l("Badge")},
        "name_id": {"validators": [DataRequired(), Length(max=120)]},
        "name_en": {"validators": [DataRequired(), Length(max=120)]},
        "base_price": {"validators": [NumberRange(min=0)]},
        "price_per_kg": {"validators": [NumberRange(min=0)]},
        "min_weight_kg": {"validators": [NumberRange(min=0)]},
        "max_weight_kg": {"validators": [NumberRange(min=0)]},
    }

    def on_model_change(self, form, model, is_created):
        """The weight range must be a range (the database would refuse it anyway)."""
        if model.max_weight_kg < model.min_weight_kg:
            raise ValidationError(_("The maximum weight is below the minimum weight."))
        for name in ("description_id", "description_en", "badge_note_id", "badge_note_en"):
            setattr(model, name, getattr(model, name) or "")


class AnnouncementView(AnnouncementSendMixin, PublishActionsMixin, ContentView):
    can_delete = True
    column_list = ["kind", "title_id", "product", "published", "published_at", "created_at"]
    column_formatters = {
        "kind": enum_label,
        "product": lambda v, c, m, n: m.product.code if m.product else "",
        "published_at": lambda v, c, m, n: datetime_text(m.published_at),
        "created_at": lambda v, c, m, n: datetime_text(m.created_at),
    }
    column_searchable_list = ["title_id", "title_en"]
    column_filters = ["published"]
    column_default_sort = ("created_at", True)
    form_columns = ["kind", "title_id", "body_id", "title_en", "body_en", "product", "published"]
    form_overrides = {"kind": EnumSelectField}
    form_args = {
        "kind": {"enum": AnnouncementKind, "label": _l("Kind")},
        "title_id": {"validators": [DataRequired(), Length(max=200)]},
        "body_id": {"validators": [DataRequired(), Length(max=20_000)]},
        "title_en": {"validators": [Optional(), Length(max=200)]},
        "body_en": {"validators": [Optional(), Length(max=20_000)]},
    }

    def on_model_change(self, form, model: Announcement, is_created):
        """Publishing stamps the time once; the English text may stay empty; the text
        stays as it is while a send of it is being queued."""
        if not is_created and announcements.is_queueing(model):
            raise ValidationError(
                _(
                    "This announcement is being queued for sending. Edit it again in a "
                    "minute, once its send log no longer says “queueing”."
                )
            )
        model.title_en = model.title_en or ""
        model.body_en = model.body_en or ""
        if model.published and model.published_at is None:
            model.published_at = utcnow()

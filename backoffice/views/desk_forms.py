"""The desk's forms. Each carries a CSRF token and the ticket version the user saw."""

from __future__ import annotations

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf.file import FileField
from wtforms import (
    FieldList,
    HiddenField,
    IntegerField,
    RadioField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, InputRequired, Length, Optional
from wtforms.widgets import HiddenInput

from ..domain import DomainError
from ..domain.tickets import MAX_BODY
from ..extensions import db
from ..i18n import TranslatedForm
from ..models import Priority, User
from ..models.base import MAX_ID
from .fields import PlaceholderSelect, int_or_none, to_choices

PUBLIC, INTERNAL = "public", "internal"


class VersionedForm(TranslatedForm):
    """Optimistic locking (docs/architecture.md §13, trap 8): the version the page
    showed, checked on save."""

    expected_version = IntegerField(validators=[InputRequired()], widget=HiddenInput())


class ReplyForm(VersionedForm):
    body = TextAreaField(_l("Message"), validators=[DataRequired(), Length(max=MAX_BODY)])
    visibility = RadioField(
        _l("Send as"),
        choices=to_choices([(PUBLIC, _l("Public reply")), (INTERNAL, _l("Internal note"))]),
        default=PUBLIC,
        validators=[InputRequired()],
    )
    attachment = FileField(_l("Attachment (JPEG, PNG or PDF, at most 5 MB)"))
    # Ids of the canned replies inserted into this text (counted once it is sent).
    canned_ids = HiddenField(validators=[Optional(), Length(max=200)])


class TemplateForm(VersionedForm):
    """A WhatsApp template chosen at the desk (outside the 24-hour window) and its parameters."""

    template_id = HiddenField(validators=[DataRequired(), Length(max=12)])
    params = FieldList(
        StringField(validators=[Optional(), Length(max=900)]), min_entries=0, max_entries=10
    )


class DispatchForm(VersionedForm):
    department = SelectField(
        _l("Department"),
        coerce=int_or_none,
        validators=[InputRequired()],
        widget=PlaceholderSelect(),
    )
    note = StringField(_l("Note"), validators=[Optional(), Length(max=400)])


class PriorityForm(VersionedForm):
    priority = SelectField(
        _l("Priority"),
        choices=lambda: to_choices((p.value, p.label) for p in Priority),
        validators=[InputRequired()],
        widget=PlaceholderSelect(),
    )


class ActionForm(VersionedForm):
    """Assign to me, finish, reopen: nothing but the version and an optional note."""

    note = StringField(_l("Note"), validators=[Optional(), Length(max=400)])
    assignee = HiddenField()


class MergeForm(VersionedForm):
    """Merge this ticket into another (the number of the ticket that stays)."""

    into = StringField(
        _l("Merge into ticket"),
        validators=[DataRequired(_l("Choose the ticket to merge this one into.")), Length(max=20)],
    )


class ParcelForm(VersionedForm):
    """Link the ticket to its customer's parcel by resi."""

    resi = StringField(
        _l("Resi"),
        validators=[DataRequired(_l("Type the parcel's resi.")), Length(max=40)],
    )


def assignee_from(value: str | None) -> User | None:
    """The staff member an assign form names: "me", "none" or a user id.

    Raises DomainError for anything else; whether that person may take the
    ticket is the lifecycle's question (permissions.can_work_on)."""
    value = (value or "").strip().lower()
    if value == "me":
        return current_user._get_current_object()
    if value == "none":
        return None
    user = db.session.get(User, int(value)) if value.isdigit() and int(value) <= MAX_ID else None
    if user is None:
        raise DomainError(_("Choose a colleague to assign the ticket to."))
    return user

"""Form pieces of the back office, and the fixes that make Flask-Admin 2.2 fit WTForms 3.3.

Flask-Admin 2.2's QuerySelectField yields plain tuples from `iter_choices`,
which WTForms 3.3 deprecates (a DeprecationWarning on every form render, an
error under the test suite's filterwarnings). The subclasses below yield
`Choice` objects; the converter hands them out for every relation.
"""

from __future__ import annotations

import copy

from flask_admin.contrib.sqla import fields as sqla_fields
from flask_admin.contrib.sqla.form import AdminModelConverter
from flask_wtf.form import _Auto
from markupsafe import Markup
from wtforms import HiddenField, PasswordField, SelectField, StringField, TextAreaField
from wtforms.validators import Regexp, ValidationError
from wtforms.widgets import Select

from ..cleaning import clean_text, one_line
from ..i18n import TranslatedForm

try:
    from wtforms.fields.choices import Choice
except ImportError:  # WTForms before 3.3: tuples are the format
    Choice = None
try:
    from wtforms import SelectChoice
except ImportError:  # WTForms before 3.3 takes (value, label) tuples
    SelectChoice = None


def to_choices(pairs) -> list:
    """(value, label) pairs as WTForms wants them: SelectChoice since 3.3
    (tuples are deprecated there), tuples before."""
    pairs = list(pairs)
    return [SelectChoice(v, lbl) for v, lbl in pairs] if SelectChoice else pairs


def _placeholder(selected: bool):
    """The empty first option HTML asks of a required select (else the browser shows
    the first real choice as if someone had chosen it): "—", value "", which the
    field's required check refuses."""
    return Choice("", "—", selected, {}) if Choice is not None else ("", "—", selected, {})


class PlaceholderSelect(Select):
    """A select that, when required, starts with the empty option ("—") HTML asks of
    a required select; the field's choices stay as they are, so picking "—" fails the
    required check rather than choosing something. For forms whose choices are built
    per request (the desk's department, the account's language)."""

    def __call__(self, field, **kwargs):
        html = super().__call__(field, **kwargs)
        if not field.flags.required:
            return html
        head, _, rest = html.partition(">")  # Markup's pieces stay Markup (escaped)
        option = Markup('<option value="" selected>—</option>')
        if field.data not in (None, ""):
            option = Markup('<option value="">—</option>')
        return head + Markup(">") + option + rest


def int_or_none(value):
    """A select's coerce for ids: the empty option is no choice (None), not an error."""
    return None if value in (None, "", "None") else int(value)


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

    def iter_choices(self):
        if self.flags.required and not self.allow_blank:
            yield _placeholder(self.data is None)
        yield from super().iter_choices()


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


class AdminForm(TranslatedForm):
    """Flask-WTF's form (CSRF token checked) that remembers the edited object.

    Flask-Admin's own BaseForm keeps it as `_obj`, and its Unique validator
    needs it to let a row keep its own value; FlaskForm alone would make every
    unchanged unique field "Already exists." on edit.
    """

    class Meta:
        def bind_field(self, form, unbound_field, options):
            """Every text field strips NUL, control and bidi-override characters
            (backoffice/cleaning.py; issue 9 item 7): one line for StringField, newlines
            kept for TextAreaField; passwords and hidden fields are left as sent."""
            cls = unbound_field.field_class
            if issubclass(cls, StringField) and not issubclass(cls, PasswordField | HiddenField):
                cleaner = clean_text if issubclass(cls, TextAreaField) else one_line
                existing = unbound_field.kwargs.get("filters") or ()
                options = {**options, "filters": [cleaner, *existing]}
            return super().bind_field(form, unbound_field, options)

    def __init__(self, formdata=_Auto, obj=None, **kwargs):
        self._obj = obj
        super().__init__(formdata=formdata, obj=obj, **kwargs)


def guard_widgets(form):
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


def _as_choices(items):
    for item in items:
        if Choice is None or isinstance(item, Choice):
            yield item
        else:
            value, label, selected, *rest = item
            yield Choice(value, label, selected, rest[0] if rest else {})


class QuerySelectField(sqla_fields.QuerySelectField):
    def iter_choices(self):
        if self.flags.required and not self.allow_blank:
            yield _placeholder(self.data is None)
        yield from _as_choices(super().iter_choices())


class QuerySelectMultipleField(sqla_fields.QuerySelectMultipleField):
    def iter_choices(self):
        return _as_choices(super().iter_choices())


class ModelConverter(AdminModelConverter):
    """Flask-Admin's converter, with the fields above for relations."""

    def _model_select_field(self, prop, multiple, remote_model, **kwargs):
        if not multiple:
            kwargs.setdefault("blank_text", "—")
        field = super()._model_select_field(prop, multiple, remote_model, **kwargs)
        if isinstance(field.field_class, type):
            swap = {
                sqla_fields.QuerySelectMultipleField: QuerySelectMultipleField,
                sqla_fields.QuerySelectField: QuerySelectField,
            }.get(field.field_class)
            if swap is not None:
                field.field_class = swap
        return field

"""Flask-Admin's relation fields, made to speak WTForms 3.3.

Flask-Admin 2.2's QuerySelectField yields plain tuples from `iter_choices`,
which WTForms 3.3 deprecates (a DeprecationWarning on every form render, an
error under the test suite's filterwarnings). These subclasses yield
`Choice` objects; the converter hands them out for every relation.
"""

from __future__ import annotations

from flask_admin.contrib.sqla import fields as sqla_fields
from flask_admin.contrib.sqla.form import AdminModelConverter

try:
    from wtforms.fields.choices import Choice
except ImportError:  # WTForms before 3.3: tuples are the format
    Choice = None


def _as_choices(items):
    for item in items:
        if Choice is None or isinstance(item, Choice):
            yield item
        else:
            value, label, selected, *rest = item
            yield Choice(value, label, selected, rest[0] if rest else {})


class QuerySelectField(sqla_fields.QuerySelectField):
    def iter_choices(self):
        return _as_choices(super().iter_choices())


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

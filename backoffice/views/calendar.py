"""The master admin's working calendars: business hours per department, company days.

Every change recomputes the due times of the running tickets it can move
(domain.sla.calendar_changed), in its own transaction after the change is saved: should
that fail, the change stands, a message says so, and `carebox sla recompute` (nightly)
catches up.
"""

from __future__ import annotations

import logging

from flask import flash
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import inspect
from wtforms import SelectField, StringField
from wtforms.validators import DataRequired, InputRequired, Length, ValidationError

from ..domain import event_notes, sla, worktime
from ..domain import permissions as perm
from ..extensions import db
from .base import SecureModelView
from .fields import to_choices

log = logging.getLogger(__name__)

WEEKDAYS = (
    _l("Monday"),
    _l("Tuesday"),
    _l("Wednesday"),
    _l("Thursday"),
    _l("Friday"),
    _l("Saturday"),
    _l("Sunday"),
)


class ClockField(StringField):
    """A local clock time typed as HH:MM, stored as minutes after midnight (24:00 ends
    a day). Anything else is a field error, never a 500."""

    def _value(self):
        if self.raw_data:
            return self.raw_data[0]
        return worktime.format_clock(self.data) if isinstance(self.data, int) else ""

    def process_formdata(self, valuelist):
        if valuelist:
            try:
                self.data = worktime.parse_clock(valuelist[0])
            except ValueError:
                self.data = None
                raise ValueError(_("A time is HH:MM, from 00:00 to 24:00.")) from None


def _recompute(why: str, **where) -> None:
    try:
        moved = sla.calendar_changed(why, **where)
        db.session.commit()
    except Exception:  # the change itself is saved; the nightly recompute catches up
        db.session.rollback()
        log.exception("recomputing due times after a calendar change failed")
        flash(
            _("Saved, but the due times could not be recomputed now; they will be tonight."),
            "warning",
        )
        return
    if moved:
        flash(_("Due times of %(n)d open tickets moved.", n=moved), "info")


class BusinessHoursView(SecureModelView):
    """One shift of a department on a weekday; two on a day make a split shift."""

    required_permission = perm.ADMIN_PEOPLE
    can_create = True
    can_edit = True
    can_delete = True
    column_list = ["department", "weekday", "start_minute", "end_minute"]
    column_labels = {
        "department": _l("Department"),
        "weekday": _l("Day"),
        "start_minute": _l("From"),
        "end_minute": _l("Until"),
    }
    column_formatters = {
        "department": lambda v, c, m, n: m.department.code,
        "weekday": lambda v, c, m, n: str(WEEKDAYS[m.weekday]),
        "start_minute": lambda v, c, m, n: worktime.format_clock(m.start_minute),
        "end_minute": lambda v, c, m, n: worktime.format_clock(m.end_minute),
    }
    column_default_sort = [("department_id", False), ("weekday", False), ("start_minute", False)]
    form_columns = ["department", "weekday", "start_minute", "end_minute"]
    form_overrides = {"weekday": SelectField, "start_minute": ClockField, "end_minute": ClockField}
    form_args = {
        "department": {"validators": [DataRequired()]},
        "weekday": {
            "label": _l("Day"),
            "coerce": int,
            "choices": to_choices(enumerate(WEEKDAYS)),
        },
        "start_minute": {"label": _l("From"), "validators": [InputRequired()]},
        "end_minute": {"label": _l("Until"), "validators": [InputRequired()]},
    }

    def on_model_change(self, form, model, is_created):
        """A shift starts before it ends, within one day (the database checks it too)."""
        if model.start_minute is None or model.end_minute is None:
            raise ValidationError(_("A time is HH:MM, from 00:00 to 24:00."))
        if model.start_minute >= model.end_minute:
            raise ValidationError(
                _("A shift ends after it starts; split a night shift at midnight.")
            )
        old = inspect(model).attrs.department_id.history.deleted
        model._calendar_departments = {model.department.id, *[d for d in old if d]}

    def after_model_change(self, form, model, is_created):
        """The running tickets of the department follow its new hours."""
        why = event_notes.encode(event_notes.HOURS_CHANGED, d=model.department.code)
        _recompute(why, department_ids=model._calendar_departments)

    def after_model_delete(self, model):
        _recompute(
            event_notes.encode(event_notes.HOURS_CHANGED, d=model.department.code),
            department_ids=[model.department_id],
        )


class CompanyDayView(SecureModelView):
    """The company's own days off, and public holidays it works anyway."""

    required_permission = perm.ADMIN_PEOPLE
    can_create = True
    can_edit = True
    can_delete = True
    column_list = ["day", "closed", "name", "created_by"]
    column_labels = {
        "day": _l("Date"),
        "closed": _l("Closed"),
        "name": _l("Name"),
        "created_by": _l("Added by"),
    }
    column_formatters = {
        "created_by": lambda v, c, m, n: m.created_by.email if m.created_by else ""
    }
    column_default_sort = ("day", True)
    form_columns = ["day", "closed", "name"]
    form_args = {
        "day": {"validators": [DataRequired()]},
        "closed": {
            "label": _l("Closed"),
            "description": _l(
                "Ticked: a day off for the whole company. Unticked: a public holiday or "
                "cuti bersama the company works."
            ),
        },
        "name": {"validators": [DataRequired(), Length(max=120)]},
    }

    def on_model_change(self, form, model, is_created):
        """Remember who added the day and which days the change touches."""
        if is_created:
            model.created_by = current_user
        old = inspect(model).attrs.day.history.deleted
        model._calendar_days = {model.day, *[d for d in old if d]}

    def after_model_change(self, form, model, is_created):
        """The running tickets whose clocks span the day follow it."""
        _recompute(
            event_notes.encode(
                event_notes.COMPANY_DAY, day=model.day.strftime("%d-%m-%Y"), name=model.name
            ),
            days=model._calendar_days,
        )

    def after_model_delete(self, model):
        _recompute(
            event_notes.encode(event_notes.COMPANY_DAY_REMOVED, day=model.day.strftime("%d-%m-%Y")),
            days=[model.day],
        )

"""The report form: a date range plus the ticket lists' filters, read from the query string.

Its conditions touch no other table than `ticket` (related tables are reached
through IN-subqueries), so the same WHERE serves plain selects, GROUP BYs and
the window-function medians without joins.
"""

from __future__ import annotations

from datetime import timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, or_, select
from wtforms import DateField, Form, SelectField, SelectMultipleField, StringField
from wtforms.validators import InputRequired, Length, Optional, ValidationError

from ..extensions import db
from ..i18n import TranslatedMeta
from ..models import Department, Order, Priority, Ticket, TicketKind, TicketStatus, User
from ..models.base import utcnow
from .fields import to_choices
from .sqlhelpers import clamp_day, local_today, utc_bounds

MAX_RANGE_DAYS = 3 * 366


def _enum_choices(enum):
    return to_choices([("", _l("Any"))] + [(m.value, m._labels()[m]) for m in enum])


class ReportForm(Form):
    """GET form (no CSRF: it changes nothing). Defaults: the last 30 local days."""

    Meta = TranslatedMeta

    date_from = DateField(_l("From"), validators=[InputRequired()])
    date_to = DateField(_l("Until"), validators=[InputRequired()])
    status = SelectMultipleField(
        _l("Status"),
        choices=to_choices((s.value, s._labels()[s]) for s in TicketStatus),
        validate_choice=True,
    )
    kind = SelectField(_l("Kind"), choices=_enum_choices(TicketKind), default="")
    priority = SelectField(_l("Priority"), choices=_enum_choices(Priority), default="")
    department = SelectField(_l("Department"), default="")
    sla = SelectField(
        _l("SLA breached"),
        choices=to_choices([("", _l("Any")), ("1", _l("Yes")), ("0", _l("No"))]),
        default="",
    )
    order = StringField(_l("Order number"), validators=[Optional(), Length(max=20)])
    q = StringField(
        _l("Number, subject, customer name or e-mail"), validators=[Optional(), Length(max=100)]
    )

    def prepare(self) -> None:
        """Fill what depends on the request: department choices and default dates."""
        departments = db.session.scalars(select(Department).order_by(Department.code))
        self.department.choices = to_choices(
            [("", _l("Any"))] + [(str(d.id), f"{d.code} — {d}") for d in departments]
        )
        today = local_today()
        if self.date_to.raw_data in (None, [], [""]):
            self.date_to.raw_data, self.date_to.data = [today.isoformat()], today
        if self.date_from.raw_data in (None, [], [""]):
            end = clamp_day(self.date_to.data) if self.date_to.data else today
            start = end - timedelta(days=29)
            self.date_from.raw_data, self.date_from.data = [start.isoformat()], start

    def validate_date_to(self, field):
        if self.date_from.data and field.data:
            if field.data < self.date_from.data:
                raise ValidationError(_l("The end date is before the start date."))
            if (field.data - self.date_from.data).days > MAX_RANGE_DAYS:
                raise ValidationError(_l("Choose at most three years."))


def _contains(column, term: str):
    return func.lower(column).contains(term.lower(), autoescape=True)


def ticket_conditions(form: ReportForm) -> list:
    """The WHERE conditions of a valid form, on the ticket table only."""
    start, end = utc_bounds(form.date_from.data, form.date_to.data)
    conditions = [Ticket.created_at >= start, Ticket.created_at < end]
    if form.status.data:
        conditions.append(Ticket.status.in_([TicketStatus(s) for s in form.status.data]))
    if form.kind.data:
        conditions.append(Ticket.kind == TicketKind(form.kind.data))
    if form.priority.data:
        conditions.append(Ticket.priority == Priority(form.priority.data))
    if form.department.data:
        conditions.append(Ticket.department_id == int(form.department.data))
    if form.sla.data:
        now = utcnow()
        conditions.append(
            Ticket.sla_breached(now) if form.sla.data == "1" else Ticket.sla_kept(now)
        )
    if form.order.data:
        orders = select(Order.id).where(_contains(Order.number, form.order.data.strip()))
        conditions.append(Ticket.order_id.in_(orders))
    for term in (form.q.data or "").split():
        customers = select(User.id).where(
            or_(_contains(User.name, term), _contains(User.email, term))
        )
        conditions.append(
            or_(
                _contains(Ticket.number, term),
                _contains(Ticket.subject, term),
                Ticket.customer_id.in_(customers),
            )
        )
    return conditions

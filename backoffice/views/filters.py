"""List filters shared by the ticket and order lists (Flask-Admin filter classes)."""

from __future__ import annotations

from flask_admin.contrib.sqla.filters import BaseSQLAFilter, DateBetweenFilter
from flask_admin.model import filters as model_filters
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..domain import setup_cache
from ..extensions import db
from ..models import Department, Ticket
from ..models.base import MAX_ID, utcnow
from .sqlhelpers import utc_bounds


class EnumFilter(BaseSQLAFilter):
    """Equals one member of a LabelledEnum; an unknown value is refused, not sent to SQL."""

    def __init__(self, column, name, enum):
        self.enum = enum
        # Lazy labels: Flask-Admin reads options once, at start-up, and
        # turns them into text per request.
        super().__init__(column, name, options=[(m.value, m._labels()[m]) for m in enum])

    def validate(self, value):
        return value in {m.value for m in self.enum}

    def apply(self, query, value, alias=None):
        return query.filter(self.get_column(alias) == self.enum(value))

    def operation(self):
        return _l("equals")


def departments() -> list[Department]:
    """Every department by code, for the department filter's options, the ticket lists'
    queue and bulk bars and their department cells: this process's copy while the setup
    is unchanged (domain/setup_cache.py: the session's user brings its token, so a list
    page reads no departments). The copies are outside any session: read them only."""
    return setup_cache.cached("departments", _load_departments)


def _load_departments() -> list[Department]:
    # A session of their own on the transaction's connection, as routing's copies.
    with Session(bind=db.session.connection()) as session:
        return list(session.scalars(select(Department).order_by(Department.code)))


def department_options():
    return [(str(d.id), f"{d.code} — {d}") for d in departments()]


class IdFilter(BaseSQLAFilter, model_filters.BaseIntFilter):
    """Equals a row id: a value no row can have (past 2**63, zero, negative) is refused
    like a non-number, so it never reaches SQL (SQLite cannot even bind it)."""

    def validate(self, value):
        return super().validate(value) and 0 < int(value) <= MAX_ID

    def operation(self):
        return _l("equals")


class DepartmentFilter(IdFilter):
    """Options are asked for on every request (see SecureModelView._get_filter_groups),
    and come from `departments`' copy."""

    def __init__(self, column, name):
        super().__init__(column, name)

    def load_options(self):
        return department_options()

    def apply(self, query, value, alias=None):
        return query.filter(self.get_column(alias) == value)


class LocalDateBetween(DateBetweenFilter):
    """Created between two local (Jakarta) days, both included."""

    def apply(self, query, value, alias=None):
        start, end = utc_bounds(*value)
        column = self.get_column(alias)
        return query.filter(column >= start, column < end)

    def operation(self):
        return _l("between")


class SlaFilter(BaseSQLAFilter, model_filters.BaseBooleanFilter):
    """SLA breached (yes) or kept (no), as of now."""

    def __init__(self, column, name):
        super().__init__(column, name, options=[("1", _l("Yes")), ("0", _l("No"))])

    def apply(self, query, value, alias=None):
        now = utcnow()
        return query.filter(Ticket.sla_breached(now) if value == "1" else Ticket.sla_kept(now))

    def operation(self):
        return _l("is")


class BreachingSoonFilter(BaseSQLAFilter, model_filters.BaseBooleanFilter):
    """Past 80 % of the clock that matters and not breached yet, as of now (domain.sla)."""

    def __init__(self, column, name):
        super().__init__(column, name, options=[("1", _l("Yes"))])

    def apply(self, query, value, alias=None):
        from ..domain import sla

        return query.filter(sla.breaching_soon(utcnow())) if value == "1" else query

    def operation(self):
        return _l("is")


class SlaClockFilter(BaseSQLAFilter):
    """One SLA clock breached as of now: the first response's or the resolution's (the
    SLA report's drill-down: views/sla_report.py)."""

    def __init__(self, column, name):
        super().__init__(
            column,
            name,
            options=[("first_response", _l("First response")), ("resolution", _l("Resolution"))],
        )

    def validate(self, value):
        return value in ("first_response", "resolution")

    def apply(self, query, value, alias=None):
        now = utcnow()
        if value == "first_response":
            return query.filter(Ticket.first_response_breached(now))
        return query.filter(Ticket.resolution_breached(now))

    def operation(self):
        return _l("missed")

"""The SLA report: percent met of each clock per department, priority, agent and month.

A clock is *met* when it was satisfied by its due time (answered, finished), *missed*
when it was satisfied late or is still open past due (`Ticket.first_response_breached`,
`Ticket.resolution_breached`: the two halves of the lists' "SLA breached"); a clock
still running before its due time is neither, and stays out of the percentage.
Percent met = met / (met + missed).

Each figure's missed tickets are one click away: a link per status (the ticket lists
are per status) to the list filtered to exactly them — the report's date range and
filters, the group (department, priority, assignee, month) and the "SLA clock" filter
(views/filters.SlaClockFilter). Reads go through the replica (replica.heavy_reads).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, case, func, select

from ..extensions import db
from ..models import Department, Priority, Ticket, User
from .sqlhelpers import local_month, offset_minutes

CLOCKS = ("first_response", "resolution")
DIMENSIONS = {
    "department": _l("Department"),
    "priority": _l("Priority"),
    "agent": _l("Agent"),
    "month": _l("Month"),
}


def _key(dimension: str):
    if dimension == "department":
        return Ticket.department_id
    if dimension == "priority":
        return Ticket.priority
    if dimension == "agent":
        return Ticket.assignee_id
    return local_month(Ticket.created_at, offset_minutes())


def _count(condition):
    return func.sum(case((condition, 1), else_=0))


@dataclass
class Clock:
    met: int = 0
    missed: int = 0
    missed_by_status: dict = field(default_factory=dict)  # TicketStatus -> count

    @property
    def percent(self) -> float | None:
        judged = self.met + self.missed
        return 100.0 * self.met / judged if judged else None


@dataclass
class Row:
    key: object  # department id, Priority, assignee id, YYYYMM (None: none)
    label: str
    code: str  # the group's code for machines (department code, priority, id, YYYY-MM)
    tickets: int = 0
    sort: tuple = ()
    first_response: Clock = field(default_factory=Clock)
    resolution: Clock = field(default_factory=Clock)


def sla_rows(conditions, dimension: str, now: datetime) -> list[Row]:
    """One Row per group of `dimension` among the tickets `conditions` select."""
    key = _key(dimension)
    stmt = (
        select(
            key,
            Ticket.status,
            func.count(),
            _count(Ticket.first_response_at <= Ticket.first_response_due),
            _count(Ticket.first_response_breached(now)),
            _count(Ticket.finished_at <= Ticket.resolution_due),
            _count(Ticket.resolution_breached(now)),
        )
        .where(and_(*conditions))
        .group_by(key, Ticket.status)
    )
    rows: dict = {}
    for k, status, n, fr_met, fr_missed, res_met, res_missed in db.session.execute(stmt):
        row = rows.get(k)
        if row is None:
            row = rows[k] = Row(k, "", "")
        row.tickets += n
        for clock, met, missed in (
            (row.first_response, fr_met, fr_missed),
            (row.resolution, res_met, res_missed),
        ):
            clock.met += int(met or 0)
            clock.missed += int(missed or 0)
            if missed:
                clock.missed_by_status[status] = int(missed)
    _label(dimension, rows)
    return sorted(rows.values(), key=lambda r: r.sort)


def _label(dimension: str, rows: dict) -> None:
    """Each row's label (for people), code (for machines) and place in the table."""
    ids = [k for k in rows if k is not None]
    if dimension == "department":
        found = select(Department.id, Department.code).where(Department.id.in_(ids))
        codes = dict(db.session.execute(found).all()) if ids else {}
        for k, row in rows.items():
            row.code = codes.get(k, "")
            row.label = row.code or _("Not dispatched")
            row.sort = (k is None, row.code)
    elif dimension == "priority":
        order = list(Priority)
        for k, row in rows.items():
            row.code, row.label, row.sort = k.value, str(k.label), (order.index(k),)
    elif dimension == "agent":
        found = select(User).where(User.id.in_(ids))
        names = {u.id: u.display_name for u in db.session.scalars(found)} if ids else {}
        for k, row in rows.items():
            row.code = str(k) if k is not None else ""
            row.label = names.get(k, "") if k is not None else _("Unassigned")
            row.sort = (k is None, row.label.lower(), row.code)
    else:
        for k, row in rows.items():
            row.code = row.label = f"{int(k) // 100:04d}-{int(k) % 100:02d}"
            row.sort = (row.code,)


def month_span(ym: int, first: date, last: date) -> tuple[date, date]:
    """The local days of month YYYYMM within [first, last]."""
    start = date(ym // 100, ym % 100, 1)
    end = (start.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
    return max(start, first), min(end, last)


# --- drill-down: the missed tickets of a figure in the ticket lists -------------------


def _matchers():
    from flask_admin.contrib.sqla.filters import FilterLike

    from ..models import TicketKind
    from .filters import DepartmentFilter, EnumFilter, LocalDateBetween, SlaClockFilter, SlaFilter

    return {
        "kind": lambda f: isinstance(f, EnumFilter) and f.enum is TicketKind,
        "priority": lambda f: isinstance(f, EnumFilter) and f.enum is Priority,
        "department": lambda f: isinstance(f, DepartmentFilter),
        "created": lambda f: isinstance(f, LocalDateBetween),
        "sla": lambda f: isinstance(f, SlaFilter),
        "order": lambda f: isinstance(f, FilterLike) and f.column.key == "number",
        "clock": lambda f: isinstance(f, SlaClockFilter),
    }


class MissedLinks:
    """Builds, for one report form, the list URLs of each figure's missed tickets."""

    def __init__(self, admin, form):
        from .tickets import LIST_ENDPOINTS

        self.form = form
        self.views = {
            status: next(v for v in admin._views if v.endpoint == endpoint)
            for status, endpoint in LIST_ENDPOINTS.items()
        }
        self.matchers = _matchers()
        # The lists' search matches differently (views/ticket_search.py): with a search
        # term in the report, a list could not show exactly its tickets.
        self.exact = not (form.q.data or "").strip()

    def _args(self, view, wanted: dict) -> dict:
        args = {}
        for pos, (name, value) in enumerate(wanted.items()):
            match = self.matchers[name]
            index, flt = next((i, f) for i, f in enumerate(view._filters) if match(f))
            args[f"flt{pos}_{view.get_filter_arg(index, flt)}"] = value
        return args

    def links(self, dimension: str, row: Row, clock: str) -> list[tuple]:
        """[(status, count, url)] for the missed tickets of `row`'s `clock`; [] when no
        list can show exactly them (no department, a search term in the report)."""
        from flask import url_for

        missed = getattr(row, clock).missed_by_status
        if not missed or not self.exact or (dimension == "department" and row.key is None):
            return []
        form = self.form
        first, last = form.date_from.data, form.date_to.data
        if dimension == "month":
            first, last = month_span(int(row.key), first, last)
        wanted = {"created": f"{first.isoformat()} to {last.isoformat()}", "clock": clock}
        if form.kind.data:
            wanted["kind"] = form.kind.data
        priority = row.key.value if dimension == "priority" else form.priority.data
        if priority:
            wanted["priority"] = priority
        department = row.key if dimension == "department" else form.department.data
        if department:
            wanted["department"] = str(department)
        if form.sla.data:
            wanted["sla"] = form.sla.data
        if form.order.data:
            wanted["order"] = form.order.data.strip()
        extra = {}
        if dimension == "agent":
            extra["assignee"] = str(row.key) if row.key is not None else "none"
        out = []
        for status in self.views:
            if status in missed:
                view = self.views[status]
                args = {**self._args(view, wanted), **extra}
                out.append((status, missed[status], url_for(f"{view.endpoint}.index_view", **args)))
        return out

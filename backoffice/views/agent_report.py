"""/admin/agent-report/: the master admin's per-agent and per-department figures.

Over the tickets the report form selects (filed in its date range, with its filters:
`report_filters.ticket_conditions`, on the ticket table only), per agent:

- replies: their public replies on those tickets;
- first response: the median working time to the first reply, of the tickets whose
  first reply was theirs;
- resolution and finished: the median working time to the finish and the count, of the
  tickets they finished (the event of the ticket's latest finish names them);
- rating: the average rating of the tickets they finished, without the ratings of
  tickets no staff member answered (`tickets.staff_rating`).

Per department (the ticket's): the same over its tickets, finishes by anyone but the
customer. Everything is read in a handful of grouped statements inside
`replica.heavy_reads()`, like the other reports; the medians are the window-function
medians of `sqlhelpers.medians`.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Response, request
from flask_admin import BaseView, expose
from flask_babel import gettext as _
from sqlalchemy import and_, func, select

from ..domain import permissions as perm
from ..domain.tickets import staff_rating
from ..extensions import db
from ..models import Department, EventAction, Ticket, TicketEvent, TicketMessage, User
from ..replica import heavy_reads
from .base import StaffAccessMixin
from .exports import stream_csv
from .report_filters import ReportForm, ticket_conditions
from .sqlhelpers import first_response_seconds, medians, resolution_seconds


@dataclass
class Row:
    """One line of the report: an agent or a department."""

    name: str
    department: str = ""
    code: str = ""  # for machines, as the SLA CSV's group code: the user id, the department code
    replies: int = 0
    first_response: float | None = None  # seconds
    resolution: float | None = None  # seconds
    finished: int = 0
    rating: float | None = None


def _public_reply():
    return and_(
        TicketMessage.ticket_id == Ticket.id,
        TicketMessage.from_staff,
        ~TicketMessage.internal,
        ~TicketMessage.by_system,
    )


def _first_reply():
    """The message that is the ticket's first response (`post_message` stamps both)."""
    return and_(_public_reply(), TicketMessage.created_at == Ticket.first_response_at)


def _last_finish():
    """The event of the ticket's latest finish (`_move` stamps both), not the customer's."""
    return and_(
        TicketEvent.ticket_id == Ticket.id,
        TicketEvent.action == EventAction.FINISHED,
        TicketEvent.created_at == Ticket.finished_at,
        (TicketEvent.actor_id.is_(None)) | (TicketEvent.actor_id != Ticket.customer_id),
    )


def _grouped(where, key, *values):
    return {
        r[0]: r[1:]
        for r in db.session.execute(select(key, *values).where(where).group_by(key)).all()
    }


def agent_rows(conditions) -> tuple[list[Row], list[Row]]:
    """(per agent, per department) for the tickets `conditions` select."""
    scope = and_(*conditions)
    replies = and_(scope, _public_reply())
    first = and_(scope, Ticket.first_response_at.is_not(None), _first_reply())
    finish = and_(scope, Ticket.finished_at.is_not(None), _last_finish())
    rating = staff_rating()

    def figures(author, actor, dept: bool):
        return (
            _grouped(replies, author, func.count()),
            medians(first_response_seconds(), first, [author]),
            medians(resolution_seconds(), finish, [actor]),
            _grouped(
                finish if dept else and_(finish, TicketEvent.actor_id.is_not(None)),
                actor,
                func.count(),
                func.count(rating),
                func.sum(rating),
            ),
        )

    by_agent = figures(TicketMessage.author_id, TicketEvent.actor_id, False)
    by_dept = figures(Ticket.department_id, Ticket.department_id, True)
    departments = {d.id: d for d in db.session.scalars(select(Department))}

    def build(found, label) -> dict:
        counted, first_medians, resolution_medians, finished = found
        rows = {}
        for key in _keys(found):
            done, rated, rating_sum = finished.get(key, (0, 0, None))
            rows[key] = Row(
                name="",
                replies=int(counted.get(key, (0,))[0]),
                first_response=first_medians.get((key,)),
                resolution=resolution_medians.get((key,)),
                finished=int(done),
                rating=float(rating_sum) / rated if rated else None,
            )
            label(key, rows[key])
        return rows

    people = {}
    agent_ids = [k for k in _keys(by_agent) if k is not None]
    if agent_ids:
        people = {u.id: u for u in db.session.scalars(select(User).where(User.id.in_(agent_ids)))}

    def agent_label(key, row):
        user = people.get(key)
        row.name = user.display_name if user else _("(deleted user)")
        row.code = str(key)
        dept = departments.get(user.department_id) if user else None
        row.department = dept.code if dept else ""

    def dept_label(key, row):
        dept = departments.get(key)
        row.name = str(dept) if dept else _("Not dispatched")
        row.department = row.code = dept.code if dept else ""

    agents = build(by_agent, agent_label)
    # Only staff: a customer's own messages are not replies, and they never finish here.
    agents = {k: r for k, r in agents.items() if k in people and perm.is_staff(people[k])}
    depts = build(by_dept, dept_label)
    return (
        sorted(agents.values(), key=lambda r: (r.name.lower(), r.department)),
        sorted(depts.values(), key=lambda r: (r.department == "", r.department)),
    )


def _keys(found) -> set:
    counted, first_medians, resolution_medians, finished = found
    return (
        set(counted)
        | {k[0] for k in first_medians}
        | {k[0] for k in resolution_medians}
        | set(finished)
    )


def _hours(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 3600, 2)


class AgentReportView(StaffAccessMixin, BaseView):
    """The per-agent report, on screen and as CSV (REPORTS permission only)."""

    required_permission = perm.REPORTS

    def is_visible(self) -> bool:
        return False  # linked from the report page

    def _form(self) -> ReportForm:
        form = ReportForm(request.args)
        form.prepare()
        return form

    @expose("/")
    def index(self):
        form = self._form()
        valid = form.validate()
        agents = departments = None
        if valid:
            with heavy_reads():
                agents, departments = agent_rows(ticket_conditions(form))
        return self.render(
            "admin/reports/agents.html",
            form=form,
            valid=valid,
            agents=agents,
            departments=departments,
            query=request.query_string.decode("ascii", "replace"),
        )

    @expose("/agents.csv")
    def csv(self):
        form = self._form()
        if not form.validate():
            problems = "; ".join(f"{k}: {', '.join(map(str, v))}" for k, v in form.errors.items())
            return Response(problems, status=400, mimetype="text/plain")
        with heavy_reads():
            agents, departments = agent_rows(ticket_conditions(form))
        headers = [
            _("Row"),
            _("Name"),
            _("Department"),
            _("Replies"),
            _("Median first response (hours)"),
            _("Median resolution (hours)"),
            _("Tickets finished"),
            _("Average rating"),
            _("Row code"),
            _("Code"),
        ]
        # csv_cell (stream_csv's default) neutralises every text cell: names are typed
        # by people, and a name like "=HYPERLINK(…)" must stay text in a spreadsheet.
        cells = [
            [
                kind,
                r.name,
                r.department,
                r.replies,
                _hours(r.first_response),
                _hours(r.resolution),
                r.finished,
                None if r.rating is None else round(r.rating, 2),
                code,  # the row's kind for machines: the first column is translated
                r.code,  # then the row's own code (the SLA CSV's order: grouping, group)
            ]
            for kind, code, rows in (
                (_("Agent"), "agent", agents),
                (_("Department"), "department", departments),
            )
            for r in rows
        ]
        filename = f"agents-{form.date_from.data:%Y%m%d}-{form.date_to.data:%Y%m%d}.csv"
        return stream_csv(filename, headers, cells, batch=500)

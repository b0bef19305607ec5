"""What makes the ticket lists queues (docs/architecture.md §9): the default order,
most urgent first, and the assignee and "who spoke last" filters.

The lists' query itself stays in one place, `TicketListView.get_list`; this
module gives it the pieces, so a faster query (issue 16) changes one function.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit

from flask_babel import gettext as _
from sqlalchemy import ColumnElement, false, select, true

from ..domain import permissions as perm
from ..extensions import db
from ..models import Ticket, TicketStatus
from ..models.base import MAX_ID

# Where the SLA clock runs, the stored due time (domain/sla.py keeps it) orders the
# list, earliest first: ix_ticket_status_next_due (and its department and assignee
# twins) serve it. Where the clock is stopped there is no next due time: Responded
# shows the resolution due first (ix_ticket_status_due), Finished the newest.
_QUEUE_ORDER = {
    TicketStatus.PROGRESS: ((Ticket.next_due_at, False), (Ticket.id, False)),
    TicketStatus.TEAM: ((Ticket.next_due_at, False), (Ticket.id, False)),
    TicketStatus.RESPONDED: ((Ticket.resolution_due, False), (Ticket.id, False)),
    TicketStatus.FINISHED: ((Ticket.created_at, True), (Ticket.id, True)),
}

ASSIGNEE_ME = "me"
ASSIGNEE_NONE = "none"
SPOKE_CUSTOMER = "customer"
SPOKE_STAFF = "staff"


def queue_order(status: TicketStatus) -> list[ColumnElement]:
    """ORDER BY clauses of a list's default order (most urgent first)."""
    return [col.desc() if desc else col.asc() for col, desc in _QUEUE_ORDER[status]]


@dataclass
class QueueFilter:
    """The queue arguments of a list URL, parsed; `problems` are shown to the user."""

    clauses: list
    assignee: str
    spoke: str
    problems: list[str]


def parse(args, user) -> QueueFilter:
    """Read `?assignee=me|none|<staff id>` and `?spoke=customer|staff`.

    A value that means nothing is ignored with a message (never a database
    error): the list then shows as if the argument were absent."""
    clauses, problems = [], []
    assignee = (args.get("assignee") or "").strip().lower()
    if assignee == ASSIGNEE_ME:
        clauses.append(Ticket.assignee_id == user.id)
    elif assignee == ASSIGNEE_NONE:
        clauses.append(Ticket.assignee_id.is_(None))
    elif assignee.isdigit() and 0 < int(assignee) <= MAX_ID:
        clauses.append(Ticket.assignee_id == int(assignee))
    elif assignee:
        problems.append(
            _("“%(value)s” is not an assignee filter; showing everyone's.", value=assignee[:40])
        )
        assignee = ""
    spoke = (args.get("spoke") or "").strip().lower()
    if spoke == SPOKE_CUSTOMER:
        # `= false`, not `IS false`: an equality, so ix_ticket_status_spoke_next_due
        # gives the rows in the queue's order (with IS the database sorted them).
        clauses.append(Ticket.last_from_staff == false())
    elif spoke == SPOKE_STAFF:
        clauses.append(Ticket.last_from_staff == true())
    elif spoke:
        problems.append(
            _("“%(value)s” is not a “who spoke last” filter; ignored.", value=spoke[:40])
        )
        spoke = ""
    return QueueFilter(clauses, assignee, spoke, problems)


# --- the queue an agent came from (next / previous on the desk) ----------------------

# The four lists' paths (docs/architecture.md §5), by status.
LIST_PATHS = {
    "/admin/tickets/progress/": TicketStatus.PROGRESS,
    "/admin/tickets/team/": TicketStatus.TEAM,
    "/admin/tickets/responded/": TicketStatus.RESPONDED,
    "/admin/tickets/finished/": TicketStatus.FINISHED,
}
QUEUE_ARGS = ("assignee", "spoke")
NEIGHBOURS_WINDOW = 500  # how far down the queue "next" looks


def came_from(url: str | None) -> str | None:
    """The list URL (path and queue arguments only) that `url` names, or None.

    Only one of the four list paths, with nothing but the queue's arguments, is
    kept: the value travels through the desk's links and forms, so it is never
    an open redirect nor a way to smuggle other arguments."""
    if not url:
        return None
    parts = urlsplit(url)
    if parts.path not in LIST_PATHS:
        return None
    args = dict(parse_qsl(parts.query))
    kept = {k: args[k][:40] for k in QUEUE_ARGS if args.get(k)}
    return parts.path + (f"?{urlencode(kept)}" if kept else "")


def neighbours(user, origin: str, current_id: int) -> tuple[str | None, str | None]:
    """(previous, next) ticket numbers around `current_id` in the queue `origin` names
    (a `came_from` value), inside `user`'s scope and in the queue's default order.

    A ticket that has left the queue (answered, finished) has no place in it: its
    "next" is then the queue's first ticket, i.e. the most urgent one left."""
    parts = urlsplit(origin)
    status = LIST_PATHS[parts.path]
    queue = parse(dict(parse_qsl(parts.query)), user)
    rows = db.session.execute(
        select(Ticket.id, Ticket.number)
        .where(Ticket.status == status, perm.ticket_scope(user), *queue.clauses)
        .order_by(*queue_order(status))
        .limit(NEIGHBOURS_WINDOW)
    ).all()
    ids = [r.id for r in rows]
    if current_id not in ids:
        first = next((r.number for r in rows if r.id != current_id), None)
        return None, first
    i = ids.index(current_id)
    before = rows[i - 1].number if i > 0 else None
    after = rows[i + 1].number if i + 1 < len(rows) else None
    return before, after

"""The ticket lists' cells, built in one pass per page for templates/admin/tickets/list.html.

Why not Flask-Admin's cells: its list template asks `get_list_value` for every cell
(a formatter lookup, then type formatters, through a Jinja `scoped` block per row
that copies the whole template context), and our formatters looked up the
situation macro, the enum labels, the desk URL and the department's name again
for each row. Profiled on a 200k-ticket MariaDB, that was most of a list request.
Here what repeats from row to row (labels, badges, the desk URL prefix, the
department names) is computed once per page, and each row's cells once; the
template only places them. The markup of each cell is the one the column
formatters gave (tests/test_admin_lists.py, the browser suite read it).
"""

from __future__ import annotations

from datetime import datetime

from flask import get_template_attribute, url_for
from flask_babel import gettext as _
from markupsafe import Markup, escape

from ..domain import presence
from ..models import Priority, Ticket, TicketKind
from .formatting import age_texts, datetime_text, short_datetimes

PRIORITY_CSS = {
    Priority.URGENT: "badge-danger",
    Priority.HIGH: "badge-warning",
    Priority.NORMAL: "badge-secondary",
    Priority.LOW: "badge-light",
}
SUBJECT_SHOWN = 80


# Ticket's own rules (their Python side), applied to a page row's columns.
_current_due = Ticket.current_due.fget
_sla_breached = Ticket.__dict__["sla_breached"].func


def sla_marker(ticket, now: datetime, breached_text: str | None = None, dt=None) -> Markup:
    """The SLA due time, with a visible marker (and text for screen readers) when breached
    (`ticket`: a Ticket or a page row with its columns)."""
    due = escape((dt or datetime_text)(_current_due(ticket)))
    if _sla_breached(ticket, now):
        t = escape(breached_text or _("SLA breached"))
        # Both escaped above.
        return Markup(f'<span class="sla-breached" title="{t}">⚠ {due} <b>{t}</b></span>')  # noqa: S704
    return Markup(f"<span>{due}</span>")  # noqa: S704


def subject_text(subject: str) -> str:
    return subject if len(subject) <= SUBJECT_SHOWN else subject[: SUBJECT_SHOWN - 1] + "…"


class RowBuilder:
    """Cells of one page of tickets, in `columns` order: a list of (column, Markup) per row.

    A ticket here is a row of TicketListView's page statement (tickets.page_select): the
    ticket's columns, `customer_name`/`_email`, `assignee_name`/`_email`, `order_number`,
    `opened_at` (the assignee's last opening: the unread mark) and, in an open list,
    `duplicate_of` (the first open ticket on the same parcel). `departments`: {id:
    Department} (read once per request for the filter's options anyway)."""

    def __init__(self, columns: list[str], now: datetime, departments: dict):
        self.columns = columns
        self.now = now
        self.department_rows = departments
        # Once per page: what every row would otherwise compute again.
        placeholder = "NUMBER"
        desk = escape(url_for("ticket_desk.desk", number=placeholder))
        self.desk_before, self.desk_after = desk.split(placeholder, 1)
        self.kinds = {k: k.label for k in TicketKind}
        self.priorities = {
            p: Markup('<span class="badge {}">{}</span>').format(PRIORITY_CSS[p], p.label)
            for p in Priority
        }
        self.departments: dict[int, str] = {}
        self.badges: dict = {}
        self.staff, self.customer = _("Staff"), _("Customer")
        self.breached = _("SLA breached")
        self.dt = short_datetimes()
        self.age = age_texts(now)
        self.unread = Markup(
            ' <span class="badge badge-info unread" title="{t}">●'
            '<span class="sr-only"> {t}</span></span>'
        ).format(t=_("Unread by the assignee"))
        self.cell = {
            "number": self._number,
            "kind": lambda t: self.kinds[t.kind],
            "subject": lambda t: subject_text(t.subject),
            # User.display_name: the name, else the e-mail.
            "customer": lambda t: t.customer_name or t.customer_email or "",
            "assignee": lambda t: t.assignee_name or t.assignee_email or "",
            "order": self._order,
            "department": self._department,
            "priority": lambda t: self.priorities[t.priority],
            "age": lambda t: self.age(t.created_at),
            "sla_due": lambda t: sla_marker(t, self.now, self.breached, self.dt),
            "last_message_at": lambda t: self.dt(t.last_message_at),
            "last_speaker": self._last_speaker,
        }

    def rows(self, tickets) -> list[tuple[int, Markup]]:
        """(ticket id, the row's <td> cells as one Markup) per ticket: the template
        then writes one value per row instead of escaping each cell again."""
        cells = [(f'<td class="col-{name}">', self.cell[name]) for name in self.columns]
        # Safe: the column names are ours (column_list) and every cell goes through
        # escape(); joining plain strings once per row is the point (no Markup per cell).
        return [
            (t.id, Markup("".join(f"{td}{escape(fn(t))}</td>" for td, fn in cells)))  # noqa: S704
            for t in tickets
        ]

    def _number(self, t) -> Markup:
        number = escape(t.number)
        return Markup(f'<a href="{self.desk_before}{number}{self.desk_after}">{number}</a>')  # noqa: S704

    def _department(self, t) -> str:
        if t.department_id is None:
            return ""
        if t.department_id not in self.departments:
            self.departments[t.department_id] = str(self.department_rows[t.department_id])
        return self.departments[t.department_id]

    def _order(self, t) -> Markup:
        """The order number, with the parcel's situation, for a second open ticket on
        the same resi its duplicate mark, and a merged ticket's mark beneath: in the
        order's cell, no extra column (the lists must fit a laptop screen)."""
        key = (t.situation, getattr(t, "duplicate_of", None), t.merged_into_id is not None)
        if key not in self.badges:
            badge = get_template_attribute("_situation.html", "situation_badge")(*key)
            self.badges[key] = badge if str(badge).strip() else None
        badge = self.badges[key]
        number = t.order_number or ""
        return Markup(f"{escape(number)}<br>{badge}") if badge else escape(number)  # noqa: S704

    def _last_speaker(self, t) -> Markup:
        """Customer or staff, and an unread mark when the customer wrote after the
        assignee last opened the ticket."""
        who = escape(self.staff if t.last_from_staff else self.customer)
        if presence.is_unread(t, t.opened_at):
            return who + self.unread
        return who

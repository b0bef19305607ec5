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

from flask import get_template_attribute, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from markupsafe import Markup, escape

from ..models import Priority, TicketKind
from .formatting import age_texts, datetime_text, short_datetimes

PRIORITY_CSS = {
    Priority.URGENT: "badge-danger",
    Priority.HIGH: "badge-warning",
    Priority.NORMAL: "badge-secondary",
    Priority.LOW: "badge-light",
}
SUBJECT_SHOWN = 80


# markupsafe.escape's five replacements, giving a str: escape() makes a Markup object of
# every value, some twenty a row, each checked for __html__; a row's cells are plain
# escaped text joined once and made one Markup (RowBuilder.rows).
_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "'": "&#39;", '"': "&#34;"})


def esc(value) -> str:
    """`value` as text, escaped exactly as markupsafe.escape escapes it."""
    return str(value).translate(_ESCAPES)


def sla_html(due: datetime, breached: bool, breached_text: str, dt=datetime_text) -> str:
    """The SLA due time, with a visible marker (and text for screen readers) when breached,
    as escaped HTML."""
    due_text = esc(dt(due))
    if breached:
        t = esc(breached_text)
        return f'<span class="sla-breached" title="{t}">⚠ {due_text} <b>{t}</b></span>'
    return f"<span>{due_text}</span>"


def subject_text(subject: str) -> str:
    return subject if len(subject) <= SUBJECT_SHOWN else subject[: SUBJECT_SHOWN - 1] + "…"


_FIXED: dict = {}


def _fixed_parts() -> dict:
    """RowBuilder's texts and markup that depend on the language and URL prefix only."""
    key = (str(get_locale()), request.script_root)
    fixed = _FIXED.get(key)
    if fixed is None:
        placeholder = "NUMBER"
        desk = escape(url_for("ticket_desk.desk", number=placeholder))
        fixed = _FIXED[key] = {
            "desk": tuple(desk.split(placeholder, 1)),
            "kinds": {k: esc(k.label) for k in TicketKind},
            "priorities": {
                p: f'<span class="badge {PRIORITY_CSS[p]}">{esc(p.label)}</span>' for p in Priority
            },
            "staff": esc(_("Staff")),
            "customer": esc(_("Customer")),
            "breached": _("SLA breached"),
            "unread": ' <span class="badge badge-info unread" title="{t}">●'
            '<span class="sr-only"> {t}</span></span>'.format(t=esc(_("Unread by the assignee"))),
            "badges": {},
        }
    return fixed


class RowBuilder:
    """Cells of one page of tickets, in `columns` order: a list of (column, Markup) per row.

    A ticket here is a row of TicketListView's page statement (tickets.page_select): the
    ticket's columns, `current_due` and `sla_breached` (Ticket's rules, worked out by the
    database), `customer_name` and `assignee_name` (User.display_name), `order_number`,
    `unread` (presence.unread) and, in an open list, `duplicate_of` (the first open
    ticket on the same parcel). `departments`: {id:
    Department} (read once per request for the filter's options anyway)."""

    def __init__(self, columns: list[str], now: datetime, departments: dict):
        self.columns = columns
        self.now = now
        self.department_rows = departments
        # What every row would otherwise compute again: once per page, and what does
        # not change with the page (labels, badges, the desk URL's halves) once per
        # language and URL prefix.
        fixed = _fixed_parts()
        self.desk_before, self.desk_after = fixed["desk"]
        self.kinds, self.priorities = fixed["kinds"], fixed["priorities"]
        self.staff, self.customer = fixed["staff"], fixed["customer"]
        self.breached, self.unread = fixed["breached"], fixed["unread"]
        self.departments: dict[int, str] = {}
        self.badges: dict = {}
        self.shared_badges = fixed["badges"]
        self.dt = short_datetimes()
        self.age = age_texts(now)
        self.cell = {
            "number": self._number,
            "kind": lambda t: self.kinds[t.kind],
            "subject": lambda t: esc(subject_text(t.subject)),
            # User.display_name, given by the page's statement.
            "customer": lambda t: esc(t.customer_name or ""),
            "assignee": lambda t: esc(t.assignee_name or ""),
            "order": self._order,
            "department": self._department,
            "priority": lambda t: self.priorities[t.priority],
            "age": lambda t: esc(self.age(t.created_at)),
            "sla_due": lambda t: sla_html(t.current_due, t.sla_breached, self.breached, self.dt),
            "last_message_at": lambda t: esc(self.dt(t.last_message_at)),
            "last_speaker": self._last_speaker,
        }

    def rows(self, tickets) -> list[tuple[int, Markup]]:
        """(ticket id, the row's <td> cells as one Markup) per ticket: the template
        then writes one value per row instead of escaping each cell again."""
        cells = [(f'<td class="col-{name}">', self.cell[name]) for name in self.columns]
        # Safe: the column names are ours (column_list) and every cell function returns
        # escaped HTML (esc() on every value it shows).
        return [
            (t.id, Markup("".join(f"{td}{fn(t)}</td>" for td, fn in cells)))  # noqa: S704
            for t in tickets
        ]

    def _number(self, t) -> str:
        number = esc(t.number)
        return f'<a href="{self.desk_before}{number}{self.desk_after}">{number}</a>'

    def _department(self, t) -> str:
        if t.department_id is None:
            return ""
        if t.department_id not in self.departments:
            self.departments[t.department_id] = esc(self.department_rows[t.department_id])
        return self.departments[t.department_id]

    def _order(self, t) -> str:
        """The order number, with the parcel's situation, for a second open ticket on
        the same resi its duplicate mark, and a merged ticket's mark beneath: in the
        order's cell, no extra column (the lists must fit a laptop screen)."""
        duplicate = getattr(t, "duplicate_of", None)
        key = (t.situation, duplicate, t.merged_into_id is not None)
        # Without a duplicate mark a badge is the same on every page of this language.
        badges = self.badges if duplicate else self.shared_badges
        if key not in badges:
            badge = str(get_template_attribute("_situation.html", "situation_badge")(*key))
            badges[key] = badge if badge.strip() else None
        badge = badges[key]
        number = esc(t.order_number or "")
        return f"{number}<br>{badge}" if badge else number

    def _last_speaker(self, t) -> str:
        """Customer or staff, and an unread mark when the customer wrote after the
        assignee last opened the ticket."""
        who = self.staff if t.last_from_staff else self.customer
        return who + self.unread if t.unread else who

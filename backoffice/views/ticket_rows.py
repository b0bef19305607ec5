"""The ticket lists' rows, column headers and pager, written in one pass per page for
templates/admin/tickets/list.html.

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
from .formatting import age_texts, short_datetimes

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


# The list columns RowBuilder writes, in this order (TicketListView.column_list).
COLUMNS = (
    "number",
    "kind",
    "subject",
    "customer",
    "order",
    "department",
    "priority",
    "age",
    "sla_due",
    "last_message_at",
    "last_speaker",
    "assignee",
)


class RowBuilder:
    """The cells of one page of tickets, COLUMNS in order, one Markup per row.

    A ticket here is a row of TicketListView's page statement (tickets.page_select): the
    ticket's columns, `current_due` and `sla_breached` (Ticket's rules, worked out by the
    database), `customer_name` and `assignee_name` (User.display_name), `order_number`,
    `unread` (presence.unread) and, in an open list, `duplicate_of` (the first open
    ticket on the same parcel). `departments`: {id: Department} (read once per request
    for the filter's options anyway)."""

    def __init__(self, now: datetime, departments: dict):
        self.department_rows = departments
        # What every row would otherwise compute again: once per page, and what does
        # not change with the page (labels, badges, the desk URL's halves) once per
        # language and URL prefix.
        fixed = _fixed_parts()
        self.desk_before, self.desk_after = fixed["desk"]
        self.kinds, self.priorities = fixed["kinds"], fixed["priorities"]
        self.staff, self.customer = fixed["staff"], fixed["customer"]
        self.unread = fixed["unread"]
        # The SLA due time's marker when breached (and its text for screen readers).
        breached = esc(fixed["breached"])
        self.breached_open = f'<span class="sla-breached" title="{breached}">⚠ '
        self.breached_close = f" <b>{breached}</b></span>"
        self.departments: dict[int | None, str] = {None: ""}
        self.badges: dict = {}
        self.shared_badges = fixed["badges"]
        self.dt = short_datetimes()
        self.age = age_texts(now)

    def rows(self, tickets, select_title: str | None) -> Markup:
        """The page's table rows, each its checkbox (when the list has actions: then
        `select_title` is its title) and its cells, as one Markup: the template writes
        one value, and each row is one f-string rather than a function a cell (a page is
        25 to 100 rows of twelve cells, and the calls were most of the rows' time)."""
        dt, age, kinds, priorities = self.dt, self.age, self.kinds, self.priorities
        before, after = self.desk_before, self.desk_after
        staff, customer, unread = self.staff, self.customer, self.unread
        departments, b_open, b_close = self.departments, self.breached_open, self.breached_close
        if select_title is not None:
            select_title = esc(select_title)
        out = []
        for t in tickets:
            number = t.number.translate(_ESCAPES)
            subject = t.subject
            if len(subject) > SUBJECT_SHOWN:
                subject = subject[: SUBJECT_SHOWN - 1] + "…"
            department = departments.get(t.department_id)
            if department is None:
                department = departments[t.department_id] = esc(
                    self.department_rows[t.department_id]
                )
            due = dt(t.current_due)
            due = f"{b_open}{due}{b_close}" if t.sla_breached else f"<span>{due}</span>"
            who = staff if t.last_from_staff else customer
            if t.unread:
                who += unread
            people = (t.customer_name or "", t.assignee_name or "")
            check = (
                ""
                if select_title is None
                else '<td><input type="checkbox" name="rowid" class="action-checkbox" '
                f'value="{t.id}" title="{select_title}" aria-label="{select_title} {t.id}"></td>'
            )
            out.append(
                f"\n    <tr>{check}"
                f'<td class="col-number"><a href="{before}{number}{after}">{number}</a>'
                f'</td><td class="col-kind">{kinds[t.kind]}'
                f'</td><td class="col-subject">{subject.translate(_ESCAPES)}'
                f'</td><td class="col-customer">{people[0].translate(_ESCAPES)}'
                f'</td><td class="col-order">{self._order(t)}'
                f'</td><td class="col-department">{department}'
                f'</td><td class="col-priority">{priorities[t.priority]}'
                f'</td><td class="col-age">{esc(age(t.created_at))}'
                f'</td><td class="col-sla_due">{due}'
                f'</td><td class="col-last_message_at">{dt(t.last_message_at)}'
                f'</td><td class="col-last_speaker">{who}'
                f'</td><td class="col-assignee">{people[1].translate(_ESCAPES)}</td></tr>\n    '
            )
        # Safe: every value shown is escaped here (_ESCAPES, esc), or is markup made
        # from escaped texts (_fixed_parts, the situation macro) or an integer (t.id).
        return Markup("".join(out))  # noqa: S704

    def _order(self, t) -> str:
        """The order number, with the parcel's situation, for a second open ticket on
        the same resi its duplicate mark, and a merged ticket's mark beneath: in the
        order's cell, no extra column (the lists must fit a laptop screen)."""
        number = (t.order_number or "").translate(_ESCAPES)
        duplicate = getattr(t, "duplicate_of", None)
        if t.situation is None and duplicate is None and t.merged_into_id is None:
            return number
        key = (t.situation, duplicate, t.merged_into_id is not None)
        # Without a duplicate mark a badge is the same on every page of this language.
        badges = self.badges if duplicate else self.shared_badges
        if key not in badges:
            badge = str(get_template_attribute("_situation.html", "situation_badge")(*key))
            badges[key] = badge if badge.strip() else None
        badge = badges[key]
        return f"{number}<br>{badge}" if badge else number


# The list's header and pager, written out as Flask-Admin's list template writes them
# (templates/admin/tickets/list.html had them as Jinja loops: some 1,500 Python calls a
# page for twelve headers and nine page links). `sort_url` and `pager_url` are the
# page's link makers (urls.ListLinks, or Flask-Admin's own).


def header_cells(sort_url, columns, sortable, sort_column: int | None, sort_desc: bool) -> Markup:
    """The column headers: (column, label, sort title) in `columns`, a sort link on each
    column in `sortable` (the column sorted by links to the other direction, with its
    arrow)."""
    arrow = "down" if sort_desc else "up"
    out = []
    for i, (c, name, title) in enumerate(columns):
        name = esc(name)
        if c not in sortable:
            cell = name
        elif sort_column == i:
            cell = (
                f'\n          <a href="{esc(sort_url(i, True))}" title="{esc(title)}">{name}'
                f'\n            <span class="fa fa-chevron-{arrow} glyphicon '
                f'glyphicon-chevron-{arrow}"></span></a>'
            )
        else:
            cell = f'\n          <a href="{esc(sort_url(i))}" title="{esc(title)}">{name}</a>'
        out.append(f'\n        <th class="column-header col-{c}">{cell}\n        </th>\n        ')
    return Markup("".join(out))  # noqa: S704 (escaped above)


_PAGE = '\n    <li class="page-item"><a class="page-link" href="{}">{}</a></li>\n    '
_NO_PAGE = (
    '\n    <li class="page-item{}"><a class="page-link" href="javascript:void(0)">{}</a></li>\n    '
)


def pager(pager_url, page: int, num_pages: int) -> Markup:
    """Flask-Admin's numbered pager (lib.pager): first, previous, seven pages around
    this one, next, last; nothing for a single page."""
    if num_pages <= 1:
        return Markup("")
    first = min(max(page - 3, 0), max(num_pages - 7, 0))
    last = min(first + 7, num_pages)

    def link(p: int, text: str) -> str:
        return _PAGE.format(esc(pager_url(p)), text)

    parts = [
        '\n  \n  \n  <ul class="pagination">\n    ',
        link(0, "&laquo;") if first > 0 else _NO_PAGE.format(" disabled", "&laquo;"),
        "\n    ",
        link(page - 1, "&lt;") if page > 0 else _NO_PAGE.format(" disabled", "&lt;"),
        "\n    ",
    ]
    for p in range(first, last):
        parts.append("\n    ")
        parts.append(_NO_PAGE.format(" active", p + 1) if p == page else link(p, p + 1))
        parts.append("\n    ")
    parts += [
        "\n    ",
        link(page + 1, "&gt;") if page + 1 < num_pages else _NO_PAGE.format(" disabled", "&gt;"),
        "\n    ",
        link(num_pages - 1, "&raquo;")
        if last < num_pages
        else _NO_PAGE.format(" disabled", "&raquo;"),
        "\n  </ul>\n  ",
    ]
    return Markup("".join(parts))  # noqa: S704 (escaped URLs, our texts, numbers)

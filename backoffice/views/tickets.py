"""The four ticket lists of docs/architecture.md §1/§5: Progress, Team, Responded, Finished.

One view class, registered once per status with its own endpoint and URL.
Every row shown, counted, opened or acted on passes through
`permissions.ticket_scope`, plus the list's own status.
"""

from __future__ import annotations

import functools

from flask import flash, g, redirect, request, url_for
from flask_admin import expose
from flask_admin.actions import action
from flask_admin.babel import gettext as flask_admin_gettext
from flask_admin.contrib.sqla.filters import FilterLike
from flask_babel import get_locale, ngettext
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import and_, bindparam, case, func
from sqlalchemy.orm import aliased, joinedload

from ..domain import ConflictError, DomainError, presence
from ..domain import permissions as perm
from ..domain import tickets as lifecycle
from ..extensions import db
from ..i18n import current_locale
from ..models import (
    Order,
    Priority,
    ShipmentSituation,
    Ticket,
    TicketKind,
    TicketStatus,
    TicketViewer,
    User,
)
from ..models.base import utcnow
from ..models.enums import OPEN_STATUSES
from . import queues, ticket_search
from .base import SecureModelView
from .filters import (
    BreachingSoonFilter,
    DepartmentFilter,
    EnumFilter,
    LocalDateBetween,
    SlaClockFilter,
    SlaFilter,
)
from .filters import departments as filter_departments
from .sqlhelpers import capped_count
from .ticket_actions import TicketActionsMixin
from .ticket_rows import COLUMNS, RowBuilder, header_cells, pager
from .ticket_search import (
    NEWEST,
    SEARCH_LIMIT,
    SUBJECT_CONTAINS_DAYS,
    normalise,
    search_ids,
    search_page,
    ticket_criteria,
)
from .urls import ListLinks

# --- filters and column formatters ------------------------------------------


def ticket_filters() -> list:
    """Fresh filter objects: Flask-Admin binds each filter to the view it is given to."""
    return [
        EnumFilter(Ticket.kind, _l("Kind"), TicketKind),
        EnumFilter(Ticket.priority, _l("Priority"), Priority),
        DepartmentFilter(Ticket.department_id, _l("Department")),
        LocalDateBetween(Ticket.created_at, _l("Created")),
        SlaFilter(Ticket.resolution_due, _l("SLA breached")),
        FilterLike("order.number", _l("Order number")),
        BreachingSoonFilter(Ticket.sla_warn_at, _l("Breaching soon")),
        EnumFilter(Ticket.situation, _l("Parcel situation"), ShipmentSituation),
        SlaClockFilter(Ticket.first_response_due, _l("SLA clock")),
    ]


# --- the rows -------------------------------------------------------------------


def desk_url(ticket: Ticket) -> str:
    return url_for("ticket_desk.desk", number=ticket.number)


# What a list page reads of each row: what its cells print (ticket_rows.RowBuilder),
# not the whole ticket, customer, assignee and order (122 columns a row, most of a
# page's parsing time). Marks the database works out from several columns come as one
# value each (the due time that matters, breached or not, unread or not): PyMySQL
# parses every column of every row in Python, a date most slowly.
PAGE_COLUMNS = (
    Ticket.id,
    Ticket.number,
    Ticket.kind,
    Ticket.priority,
    Ticket.subject,
    Ticket.department_id,
    Ticket.created_at,
    Ticket.current_due.label("current_due"),
    Ticket.last_message_at,
    Ticket.last_from_staff,
    Ticket.situation,
    Ticket.merged_into_id,
)
# The time a page's SLA marks are judged at (`list_now` of its statement's parameters).
NOW = bindparam("list_now", type_=Ticket.created_at.type)


_built: dict = {}


def page_select() -> tuple:
    """What a page's statement adds to the list's query, built once per process (an
    alias is rebuilt column by column on every use): the columns of the related rows
    the cells show, their outer joins, the SLA and unread marks (the assignee's opened
    time) and, for an open list, the duplicate mark's correlated subquery.

    The page is read as plain rows, not Ticket entities with four joined eager loads:
    an entity per row and relationship cost more Python than the rest of the list."""
    if "page" not in _built:
        customer, assignee = aliased(User), aliased(User)
        order, viewer = aliased(Order), aliased(TicketViewer)
        columns = (
            *PAGE_COLUMNS,
            Ticket.sla_breached(NOW).label("sla_breached"),
            # User.display_name (the name, else the e-mail), one column each.
            func.coalesce(func.nullif(customer.name, ""), customer.email).label("customer_name"),
            func.coalesce(func.nullif(assignee.name, ""), assignee.email).label("assignee_name"),
            order.number.label("order_number"),
            presence.unread(viewer.opened_at).label("unread"),
        )
        joins = (
            (customer, customer.id == Ticket.customer_id),
            (assignee, assignee.id == Ticket.assignee_id),
            (order, order.id == Ticket.order_id),
            (viewer, and_(viewer.ticket_id == Ticket.id, viewer.user_id == Ticket.assignee_id)),
        )
        duplicate_of = lifecycle.first_open_on_same_order().label("duplicate_of")
        _built["page"] = (columns, joins, duplicate_of)
    return _built["page"]


@functools.cache
def colleagues_select():
    """The queue and bulk bars' colleagues, built once: ids and names only (whole User
    rows for every colleague cost more than the list)."""
    return perm.staff_with(perm.BACKOFFICE).with_only_columns(User.id, User.name, User.email)


PRIORITY_RANK = case(
    {Priority.URGENT: 4, Priority.HIGH: 3, Priority.NORMAL: 2, Priority.LOW: 1},
    value=Ticket.priority,
)


class TicketListView(TicketActionsMixin, SecureModelView):
    """One status's list; `status` is given at registration."""

    list_template = "admin/tickets/list.html"
    can_view_details = True  # the details page is the desk (see details_view)
    column_auto_select_related = False  # the eager loads are in get_query
    column_list = list(COLUMNS)  # the cells are RowBuilder's
    column_labels = {
        "number": _l("Number"),
        "kind": _l("Kind"),
        "subject": _l("Subject"),
        "customer": _l("Customer"),
        "order": _l("Order"),
        "department": _l("Department"),
        "priority": _l("Priority"),
        "age": _l("Age"),
        "sla_due": _l("SLA due"),
        "last_message_at": _l("Last message"),
        "last_speaker": _l("Spoke last"),
        "assignee": _l("Assignee"),
        "customer.name": _l("Customer name"),
        "customer.email": _l("Customer e-mail"),
    }
    # No column_formatters: the cells are built by ticket_rows.RowBuilder for the
    # lists' own template (see there and templates/admin/tickets/list.html for why).
    column_sortable_list = [
        "number",
        "kind",
        ("priority", PRIORITY_RANK),
        ("age", "created_at"),
        ("sla_due", "resolution_due"),
        "last_message_at",
    ]
    # Searches keep their own order (newest first, see get_list); without a search the
    # default order is the queue's, most urgent first (views/queues.py).
    # Turns Flask-Admin's search box on; what a term matches is ticket_search's
    # (see get_list), not Flask-Admin's "%term%" over these columns.
    column_searchable_list = ["number", "subject", "customer.name", "customer.email"]
    column_default_sort = [("created_at", True), ("id", True)]

    def __init__(self, status: TicketStatus, **kwargs):
        self.status = TicketStatus(status)
        self.column_filters = ticket_filters()
        super().__init__(Ticket, db, **kwargs)

    def is_accessible(self) -> bool:
        user = current_user._get_current_object()
        return super().is_accessible() and self.status in perm.visible_statuses(user)

    def get_sortable_columns(self):
        """Flask-Admin files an aliased column of the same table under the column's
        own name ("created_at"); put it back under the list column it sorts ("age")."""
        columns = super().get_sortable_columns()
        for entry in self.column_sortable_list:
            if isinstance(entry, tuple) and isinstance(entry[1], str) and entry[1] in columns:
                columns[entry[0]] = columns.pop(entry[1])
        return columns

    def scope(self):
        return and_(Ticket.status == self.status, perm.ticket_scope(current_user))

    def get_query(self):
        """Scoped rows with everything the columns show loaded eagerly (no N+1)."""
        return (
            super()
            .get_query()
            .options(
                joinedload(Ticket.customer),
                joinedload(Ticket.assignee),
                joinedload(Ticket.department),
                joinedload(Ticket.order),
            )
        )

    def get_list(self, page, sort_column, sort_desc, search, filters, execute=True, page_size=None):
        """Flask-Admin's get_list with a bounded count and an index-served search.

        - The count stops at COUNT_CAP ("10000+"): an exact count of the Finished
          list read ~400,000 index entries on every page view.
        - The search is ticket_search's (see there for what matches and why), inside
          the scope and the filters. A term of one indexed lookup (a ticket number,
          a resi, a phone, an e-mail's customers) reads its first page straight away,
          which is the whole answer when it holds every match; else the page's ids
          and the count of all matches come first (one statement), then the page by
          primary key.
        - The page is plain rows (page_select), not Ticket entities.
        - The queue arguments (views/queues.py: ?assignee=, ?spoke=) narrow the
          rows like a filter; without a search or a column sort the order is the
          queue's, most urgent first.
        - Pages are still LIMIT/OFFSET, so a deep page costs O(offset): in the
          default order the skipped rows are index entries only (see below); in
          another order the database sorts the list. The capped count keeps the
          pager to the first COUNT_CAP rows (deeper pages only by URL).
        """
        joins: dict = {}
        id_joins: dict = {}
        queue = self.queue_filter()
        query = SecureModelView.get_query(self).filter(*queue.clauses)
        ids = db.session.query(Ticket.id, Ticket.created_at).filter(self.scope(), *queue.clauses)
        queue_order = queues.queue_order(self.status)
        if filters and self._filters:
            query, ids, joins, id_joins = self._apply_filters(query, ids, joins, id_joins, filters)
        term = normalise(search)
        if term:
            criteria, left_out = ticket_criteria(term)
            if left_out:
                flash(
                    _(
                        "Too many customers match “%(term)s”: their tickets are left out. "
                        "Type more of the name or e-mail.",
                        term=term,
                    ),
                    "warning",
                )
            if not criteria:
                return 0, []
            own_order = sort_column is None and page_size
            if own_order and not page and len(criteria) == 1:
                # One indexed lookup (a ticket number, a resi, a phone, an e-mail's
                # customers): the first page straight away, no ids first. When it holds
                # every match, its length is the count; else they are counted (capped).
                shown = min(page_size, ticket_search.SEARCH_LIMIT)
                rows = self._page_rows(query.filter(criteria[0]).order_by(*NEWEST), None, shown + 1)
                if len(rows) > shown:
                    matching = ids.statement.where(criteria[0]).with_only_columns(Ticket.id)
                    return capped_count(matching, ticket_search.SEARCH_LIMIT), rows[:shown]
                return len(rows), rows
            found = None
            if own_order:
                found = search_page(ids.statement, criteria, (page or 0) * page_size, page_size)
            if found is not None:
                wanted, count = found
                page = None
            else:
                everything = search_ids(ids.statement, term, (criteria, left_out))
                wanted, count = everything.ids, everything.count
                if own_order:
                    start = (page or 0) * page_size
                    wanted, page = wanted[start : start + page_size], None
            query = query.filter(Ticket.id.in_(wanted))
        else:
            # Counted by id alone: with created_at in the SELECT no index of a filtered
            # list covers it (assignee=none read 10,001 rows instead of index entries).
            count = capped_count(ids.statement.with_only_columns(Ticket.id))
            if sort_column is None and page and page_size:
                # A deep page in the default order: skip the first rows in the index
                # alone (ix_ticket_status_next_due and its twins), then read this page by id. Still
                # O(offset), but index entries instead of joined rows (0.9 s -> ms
                # at OFFSET 5,000 of the Finished list).
                first = ids.statement.with_only_columns(Ticket.id).order_by(*queue_order)
                rows = db.session.execute(first.offset(page * page_size).limit(page_size))
                query, page = query.filter(Ticket.id.in_([r.id for r in rows])), None
        if sort_column is None and not term:
            query = query.order_by(*queue_order)
        else:
            query, joins = self._apply_sorting(query, joins, sort_column, sort_desc)
        if not execute:
            return count, self._apply_pagination(query, page, page_size)
        return count, self._page_rows(query, page, page_size)

    def _page_rows(self, query, page: int | None, page_size: int | None) -> list:
        """Page `page` of `query` (the list's query, filtered and ordered) as rows (see
        page_select): with the cells' columns of the related rows, the unread mark's
        opened time and the duplicate mark, in one statement."""
        columns, outer, duplicate_of = page_select()
        open_list = self.status in OPEN_STATUSES
        query = query.with_entities(*columns, *((duplicate_of,) if open_list else ()))
        for target, onclause in outer:
            query = query.outerjoin(target, onclause)
        query = self._apply_pagination(query, page, page_size)
        return db.session.execute(query.statement, {"list_now": self.now()}).all()

    @staticmethod
    def now():
        """This request's time for the page (its SLA marks and its ages), read once."""
        if "list_now" not in g:
            g.list_now = utcnow()
        return g.list_now

    def queue_filter(self) -> queues.QueueFilter:
        """This request's queue arguments, parsed once (problems flashed once)."""
        if "ticket_queue" not in g:
            g.ticket_queue = queues.parse(request.args, current_user)
            for problem in g.ticket_queue.problems:
                flash(problem, "warning")
        return g.ticket_queue

    def filter_arg(self, filter_class) -> str:
        """The query-string name of this view's filter of `filter_class` (for links)."""
        for index, flt in enumerate(self._filters):
            if isinstance(flt, filter_class):
                return f"flt0_{self.get_filter_arg(index, flt)}"
        raise LookupError(filter_class)

    def search_placeholder(self):
        return self._fixed_texts()["placeholder"]

    def search_help(self) -> str:
        return self._fixed_texts()["help"]

    def queue_links(self) -> dict:
        """The list page's queue bar: links keep the other arguments (filters,
        search, sort, page size) and start again at the first page."""
        queue = self.queue_filter()
        kept = {k: v for k, v in request.args.items(multi=False) if k not in ("page",)}

        def link(**change):
            args = {**kept, **change}
            return self.get_url(".index_view", **{k: v for k, v in args.items() if v})

        colleagues = db.session.execute(colleagues_select()).all()
        departments = [d for d in filter_departments() if d.active]
        labels = self._fixed_texts()
        return {
            "assignee": queue.assignee,
            "spoke": queue.spoke,
            "assignee_links": [
                (value, labels[value or "everyone"], link(assignee=value))
                for value in ("", queues.ASSIGNEE_ME, queues.ASSIGNEE_NONE)
            ],
            "spoke_links": [
                (value, labels[value or "anyone"], link(spoke=value))
                for value in ("", queues.SPOKE_CUSTOMER, queues.SPOKE_STAFF)
            ],
            "colleagues": [(str(u.id), u.name or u.email) for u in colleagues],
            "departments": [(str(d.id), f"{d.code} — {d}") for d in departments],
            "priorities": labels["priorities"],
            "hidden": [(k, v) for k, v in kept.items() if k != "assignee"],
        }

    def _fixed_texts(self) -> dict:
        """The queue bar's link texts, the priorities and the search box's texts, made
        once per language."""
        language = str(current_locale())
        made = self.__dict__.setdefault("_queue_texts", {})
        if language not in made:
            made[language] = {
                "everyone": _("Everyone's"),
                queues.ASSIGNEE_ME: _("Mine"),
                queues.ASSIGNEE_NONE: _("Unassigned"),
                "anyone": _("Anyone"),
                queues.SPOKE_CUSTOMER: _("Customer"),
                queues.SPOKE_STAFF: _("Staff"),
                "priorities": [(p.value, str(p.label)) for p in Priority],
                "placeholder": _("Number, subject, customer name or e-mail"),
                "help": _(
                    "Numbers and customer e-mails match from their start, names from the "
                    "start of a word, subjects from their start; words inside a subject are "
                    "looked for in tickets of the last %(days)d days only. At most the "
                    "%(limit)d newest matches are listed.",
                    days=SUBJECT_CONTAINS_DAYS,
                    limit=SEARCH_LIMIT,
                ),
            }
        return made[language]

    def render(self, template, **kwargs):
        kwargs.setdefault("ticket_status", self.status)
        if template == self.list_template:
            kwargs["list_columns"] = self.column_texts()
            kwargs.setdefault("queue", self.queue_links())
            builder = RowBuilder(self.now(), {d.id: d for d in filter_departments()})
            select_title = flask_admin_gettext("Select record") if kwargs["actions"] else None
            kwargs["rows"] = builder.rows(kwargs.get("data") or [], select_title)
            links = ListLinks(
                self,
                page=kwargs["page"],
                sort=kwargs["sort_column"],
                sort_desc=kwargs["sort_desc"],
                search=kwargs["search"],
                extra_args=kwargs["extra_args"],
                page_size=kwargs["page_size"],
                filter_args=kwargs["filter_args"],
            )
            if links.exact:
                kwargs["pager_url"] = links.pager_url
                kwargs["sort_url"] = links.sort_url
                kwargs["page_size_url"] = links.page_size_url
            kwargs["header_cells"] = header_cells(
                kwargs["sort_url"],
                kwargs["list_columns"],
                self._sortable_columns,
                kwargs["sort_column"],
                kwargs["sort_desc"],
            )
            if kwargs["num_pages"] is not None:
                pages = kwargs["num_pages"]
                kwargs["page_links"] = pager(kwargs["pager_url"], kwargs["page"], pages)
        kwargs.setdefault("can_report", perm.has(current_user, perm.REPORTS))
        kwargs.setdefault("search_help", self.search_help())
        return super().render(template, **kwargs)

    def column_texts(self) -> list[tuple[str, str, str]]:
        """(column, label, its sort link's title) in this language, made once per language
        (each label is a lazy string: the header asked for its translation three times)."""
        language = str(get_locale())
        made = self.__dict__.setdefault("_column_texts", {})
        if language not in made:
            made[language] = [
                (c, str(name), flask_admin_gettext("Sort by %(name)s", name=str(name)))
                for c, name in self._list_columns
            ]
        return made[language]

    @expose("/details/")
    def details_view(self):
        """A row's details are its desk; an id outside the list's scope is a 404."""
        ticket = self.get_one(request.args.get("id"))
        return redirect(desk_url(ticket))

    def get_actions_list(self):
        """Flask-Admin's (allowed actions, their confirmations), with the texts translated
        once per language rather than twice per action on every page."""
        language = str(current_locale())
        made = self.__dict__.setdefault("_action_texts", {})
        if language not in made:
            made[language] = {
                name: (str(text), str(confirm) if confirm else None)
                for name, (_handler, text, confirm) in self._actions_data.items()
            }
        texts = made[language]
        actions, confirmations = [], {}
        for name, _text in self._actions:
            if self.is_action_allowed(name):
                actions.append((name, texts[name][0]))
                if texts[name][1]:
                    confirmations[name] = texts[name][1]
        return actions, confirmations

    def is_action_allowed(self, name: str) -> bool:
        if name == "assign_to_me":
            return perm.has(current_user, perm.TICKET_ASSIGN)
        ours = self.bulk_allowed(name)
        return super().is_action_allowed(name) if ours is None else ours

    @action("assign_to_me", _l("Assign to me"), _l("Assign the selected tickets to yourself?"))
    def action_assign_to_me(self, ids):
        """Assign the selected tickets in scope to the current user, through the lifecycle."""
        done, refused = 0, []
        for ticket in self.scoped_ids(ids):
            try:
                lifecycle.assign(ticket, current_user, current_user)
            except ConflictError as exc:
                # Someone changed a ticket meanwhile: keep nothing of this batch.
                db.session.rollback()
                flash(str(exc), "error")
                return None
            except DomainError as exc:  # refused before anything changed
                refused.append(f"{ticket.number}: {exc}")
            else:
                done += 1
        db.session.commit()
        if done:
            flash(
                ngettext(
                    "%(num)d ticket assigned to you.", "%(num)d tickets assigned to you.", done
                ),
                "success",
            )
        for message in refused:
            flash(message, "error")
        if not done and not refused:
            flash(_("None of the selected tickets is in this list any more."), "warning")
        return None


LISTS = (
    (TicketStatus.PROGRESS, _l("Progress"), "tickets_progress", "/admin/tickets/progress"),
    (TicketStatus.TEAM, _l("Team"), "tickets_team", "/admin/tickets/team"),
    (TicketStatus.RESPONDED, _l("Responded"), "tickets_responded", "/admin/tickets/responded"),
    (TicketStatus.FINISHED, _l("Finished"), "tickets_finished", "/admin/tickets/finished"),
)
LIST_ENDPOINTS = {status: endpoint for status, _name, endpoint, _url in LISTS}

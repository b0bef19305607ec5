"""The back-office home: what each role has on its plate, and the master admin's charts.

Charts are drawn on the server as SVG (no chart library, no CDN); every figure
is also in a plain table for screen readers and tests.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from flask import current_app, flash, redirect, url_for
from flask_admin import AdminIndexView, expose
from flask_babel import format_date, get_locale
from flask_babel import gettext as _
from flask_login import current_user
from markupsafe import Markup
from sqlalchemy import func, select
from sqlalchemy.orm import load_only

from ..domain import permissions as perm
from ..domain import sla
from ..domain.tickets import staff_rating
from ..extensions import db
from ..i18n import TranslatedForm
from ..models import Department, Ticket, TicketKind, TicketStatus
from ..models.base import utcnow
from ..models.enums import OPEN_STATUSES
from . import dashboard_snapshot
from .base import StaffAccessMixin
from .filters import BreachingSoonFilter
from .notices import menu_notice_count
from .sqlhelpers import (
    at_least,
    capped_counts,
    day_key,
    first_response_seconds,
    local_day,
    local_today,
    medians,
    offset_minutes,
    resolution_seconds,
    utc_bounds,
)
from .tickets import LIST_ENDPOINTS, SlaFilter

CHART_DAYS = 30
MY_TICKETS_SHOWN = 10
# What home.html prints of them (PyMySQL describes every column it is sent).
MY_TICKET_COLUMNS = load_only(Ticket.number, Ticket.subject, Ticket.status, Ticket.priority)


# --- figures -----------------------------------------------------------------


def list_figures(user, now) -> list[dict]:
    """One row per list the user sees: its count and, for open lists, SLA breaches.

    One statement whatever the table size: each figure is a count capped at
    `COUNT_CAP` (shown as "10000+" past it, like the lists themselves), so each
    reads at most cap+1 index entries; an open list whose breaches reach the cap is
    past it too, and is not counted on its own (`capped_counts`' `within`). The
    breach counts read ix_ticket_status_due alone, in resolution_due order: the
    overdue tickets come first, and the open tickets still on time are only those
    filed within the last resolution period.
    """
    statuses = perm.visible_statuses(user)
    if not statuses:
        return []
    scope = perm.ticket_scope(user)
    # Breaches are counted for open lists only: finished tickets are most of
    # the table and their breaches are history (the reports count them).
    open_lists = [s for s in statuses if s in OPEN_STATUSES]
    in_list = {s: select(Ticket.id).where(scope, Ticket.status == s) for s in statuses}
    n, m = len(statuses), len(open_lists)
    figures = capped_counts(
        [in_list[s] for s in statuses]
        + [in_list[s].where(Ticket.sla_breached(now)) for s in open_lists]
        + [in_list[s].where(sla.breaching_soon(now)) for s in open_lists],
        # A list's breaches are rows of the list: past the cap, so is the list.
        within={n + i: statuses.index(s) for i, s in enumerate(open_lists)},
    )
    counts = dict(zip(statuses, figures[:n], strict=True))
    breached = dict(zip(open_lists, figures[n : n + m], strict=True))
    soon = dict(zip(open_lists, figures[n + m :], strict=True))
    return [
        {
            "status": status,
            "count": counts[status],
            "breached": breached.get(status, 0),
            "soon": soon.get(status, 0),
            "open": status in OPEN_STATUSES,
            "endpoint": LIST_ENDPOINTS[status],
        }
        for status in statuses
    ]


def my_open_tickets(user) -> tuple[int, list[Ticket]]:
    """How many open tickets are assigned to `user`, and the first MY_TICKETS_SHOWN of
    them, most urgent first, with the columns the home page prints. One statement: the
    count rides along each row (none: none assigned)."""
    where = (
        perm.ticket_scope(user),
        Ticket.assignee_id == user.id,
        Ticket.status.in_(OPEN_STATUSES),
    )
    count = select(func.count()).select_from(Ticket).where(*where).correlate(None)
    count = count.scalar_subquery()
    rows = db.session.execute(
        select(Ticket, count)
        .where(*where)
        .options(MY_TICKET_COLUMNS)
        .order_by(Ticket.resolution_due, Ticket.id)
        .limit(MY_TICKETS_SHOWN)
    ).all()
    return (rows[0][1] if rows else 0), [ticket for ticket, _count in rows]


@dataclass
class Chart:
    """A stacked bar chart of counts per day, with its SVG geometry precomputed."""

    title: str
    days: list[date]
    series: list[tuple[str, list[int]]] = field(default_factory=list)
    # The SVG scales to its column (width: 100%): a narrow drawing keeps its 12-unit
    # labels about 12-16 px high both in a third of a 1280 px screen and on a phone.
    width: int = 320
    height: int = 170
    pad: int = 28

    @property
    def totals(self) -> list[int]:
        return [sum(values[i] for _label, values in self.series) for i in range(len(self.days))]

    @property
    def bars(self) -> list[dict]:
        top = max(self.totals or [0]) or 1
        slot = (self.width - self.pad) / max(len(self.days), 1)
        plot = self.height - self.pad
        bars = []
        for i, day in enumerate(self.days):
            y = plot
            for colour, (label, values) in enumerate(self.series):
                if not values[i]:
                    continue
                h = plot * values[i] / top
                y -= h
                bars.append(
                    {
                        "x": round(self.pad + i * slot + 1, 1),
                        "y": round(y, 1),
                        "w": round(max(slot - 2, 1), 1),
                        "h": round(h, 1),
                        "css": f"c{colour % 10}",
                        "title": f"{day.isoformat()} · {label}: {values[i]}",
                    }
                )
        return bars

    @property
    def ticks(self) -> list[dict]:
        slot = (self.width - self.pad) / max(len(self.days), 1)
        return [
            {"x": round(self.pad + i * slot, 1), "label": format_date(d, "d MMM")}
            for i, d in enumerate(self.days)
            if i % 5 == 0
        ]

    @property
    def peak(self) -> int:
        return max(self.totals or [0])


def master_data(today: date | None = None) -> dict:
    """The figures of the last 30 local days as plain JSON-able data: per day, the
    tickets by status, by kind and by department (`series`, keyed by the value, the
    department's id, "" for none), the total, the ratings and the two medians.
    `master_figures` draws the page from them; views/dashboard_snapshot.py stores them
    so that a view does not read 30 days of tickets. Their size does not grow with
    the tickets: 30 counts per status, kind and department.

    Three statements: one grouped pass (day × status × kind × department, with the
    ratings; summed here into the series) and the two medians. Every column they read
    is in ix_ticket_created_cover, so the 30 days (~80,000 tickets at the design size)
    are read from that index alone.
    """
    today = today or local_today()
    days = [today - timedelta(days=CHART_DAYS - 1 - i) for i in range(CHART_DAYS)]
    start, end = utc_bounds(days[0], days[-1])
    window = (Ticket.created_at >= start) & (Ticket.created_at < end)
    day = local_day(Ticket.created_at, offset_minutes())
    groups = (day, Ticket.status, Ticket.kind, Ticket.department_id)
    rows = db.session.execute(
        select(*groups, func.count(), func.count(staff_rating()), func.sum(staff_rating()))
        .where(window)
        .group_by(*groups)
    ).all()
    index = {d.isoformat(): i for i, d in enumerate(days)}
    series: dict[str, dict[str, list[int]]] = {"status": {}, "kind": {}, "department": {}}
    total = rated = rating_sum = 0
    for raw_day, status, kind, dept_id, n, n_rated, ratings in rows:
        total += n
        rated += n_rated
        rating_sum += int(ratings or 0)
        i = index.get(day_key(raw_day))
        if i is None:  # cannot happen: the window is exactly these local days
            continue
        keys = (("status", status.value), ("kind", kind.value), ("department", dept_id))
        for name, key in keys:
            counts = series[name].setdefault("" if key is None else str(key), [0] * len(days))
            counts[i] += n
    return {
        "today": today.isoformat(),
        "series": series,
        "total": total,
        "rated": rated,
        "rating_sum": rating_sum,
        "median_first_response": _seconds(medians(first_response_seconds(), window).get(())),
        "median_resolution": _seconds(medians(resolution_seconds(), window).get(())),
    }


def _seconds(value) -> float | None:
    return None if value is None else float(value)  # MariaDB answers a Decimal


def master_figures(today: date | None = None, data: dict | None = None) -> dict:
    """Tickets created in the last 30 local days: per day by status, kind and department;
    median first-response and resolution times; average rating (`staff_rating`: not
    the ratings of tickets no staff member answered).

    From `data` (`master_data`'s, e.g. a stored snapshot) or, without it, computed now
    (`master_data`); then one statement more for the departments' codes.
    """
    data = data if data is not None else master_data(today)
    today = date.fromisoformat(data["today"])
    days = [today - timedelta(days=CHART_DAYS - 1 - i) for i in range(CHART_DAYS)]
    series = data["series"]
    by_status = {TicketStatus(k): v for k, v in series["status"].items()}
    by_kind = {TicketKind(k): v for k, v in series["kind"].items()}
    by_dept = {(int(k) if k else None): v for k, v in series["department"].items()}
    total, rated, rating_sum = data["total"], data["rated"], data["rating_sum"]
    departments = {d.id: d for d in db.session.scalars(select(Department))}

    def dept_label(dept_id):
        return departments[dept_id].code if dept_id in departments else _("Not dispatched")

    charts = [
        Chart(
            _("Tickets per day by status"),
            days,
            [(s.label, by_status[s]) for s in TicketStatus if s in by_status],
        ),
        Chart(
            _("Tickets per day by kind"),
            days,
            [(k.label, by_kind[k]) for k in TicketKind if k in by_kind],
        ),
        Chart(
            _("Tickets per day by department"),
            days,
            [
                (dept_label(k), v)
                for k, v in sorted(by_dept.items(), key=lambda kv: dept_label(kv[0]))
            ],
        ),
    ]
    return {
        "charts": charts,
        "days": days,
        "total": total,
        "median_first_response": data["median_first_response"],
        "median_resolution": data["median_resolution"],
        "average_rating": float(rating_sum) / rated if rated else None,
        "rated": rated,
    }


_DRAWN: dict[tuple, Markup] = {}
MAX_DRAWN = 16


def charts_html(data: dict, charts: list[Chart]) -> Markup:
    """The charts' HTML (templates/admin/_charts.html), drawn once per figures, labels
    and language: some 90,000 Python calls a view (a bar, its title and its escaping at a
    time, the day labels through Babel) for a drawing that changes when the snapshot
    does (views/dashboard_snapshot.py). Nothing in it depends on who is looking."""
    labels = tuple((str(c.title), tuple(str(label) for label, _values in c.series)) for c in charts)
    key = (str(get_locale()), data["today"], json.dumps(data["series"], sort_keys=True), labels)
    html = _DRAWN.get(key)
    if html is None:
        template = current_app.jinja_env.get_template("admin/_charts.html")
        html = Markup(template.render(charts=charts))  # noqa: S704 (autoescaped template)
        if len(_DRAWN) >= MAX_DRAWN:
            _DRAWN.clear()
        _DRAWN[key] = html
    return html


# --- the view ------------------------------------------------------------------


def queue_links(user) -> list[tuple[str, str]]:
    """The home page's ways into the queues (docs/architecture.md §9), for the lists
    this user sees: Mine and Unassigned in Team, my tickets waiting for the customer."""
    statuses = perm.visible_statuses(user)
    links = []
    if TicketStatus.TEAM in statuses:
        team = f"{LIST_ENDPOINTS[TicketStatus.TEAM]}.index_view"
        links.append((_("Mine"), url_for(team, assignee="me")))
        links.append((_("Unassigned"), url_for(team, assignee="none")))
    if TicketStatus.RESPONDED in statuses:
        responded = f"{LIST_ENDPOINTS[TicketStatus.RESPONDED]}.index_view"
        links.append((_("Waiting for the customer"), url_for(responded, assignee="me")))
    return links


class HomeView(StaffAccessMixin, AdminIndexView):
    """/admin/: counts of the user's lists, SLA breaches, their open tickets; charts for master."""

    @expose("/")
    def index(self):
        now = utcnow()
        lists = list_figures(current_user, now)
        for row in lists:
            row["url"] = url_for(f"{row['endpoint']}.index_view")
            row["breached_url"] = self._breached_url(row["endpoint"])
            row["soon_url"] = self._breached_url(row["endpoint"], BreachingSoonFilter)
        my_count, my_tickets = my_open_tickets(current_user)
        context = {
            "queue_links": queue_links(current_user),
            "away_form": TranslatedForm(formdata=None),
            "notice_count": menu_notice_count(),
            "lists": lists,
            "breached_total": at_least(r["breached"] for r in lists if r["open"]),
            "my_count": my_count,
            "my_tickets": my_tickets,
            "master": None,
        }
        if perm.has(current_user, perm.DASHBOARD_CHARTS):
            # Stored figures (views/dashboard_snapshot.py), not 30 days of tickets.
            data = dashboard_snapshot.current()
            if data["refreshed"]:
                db.session.commit()
            context["master"] = master_figures(data=data)
            context["master"]["charts_html"] = charts_html(data, context["master"]["charts"])
            context["master"]["computed_at"] = datetime.fromisoformat(data["computed_at"])
        return self.render("admin/home.html", **context)

    @expose("/away", methods=["POST"])
    def away(self):
        """Toggle "away": an agent marked away gets no tickets from round-robin."""
        form = TranslatedForm()
        if form.validate_on_submit():
            current_user.away = not current_user.away
            db.session.commit()
            flash(
                _("You are marked away: round-robin skips you.")
                if current_user.away
                else _("You are back: round-robin includes you again."),
                "success",
            )
        else:
            flash(_("The form expired; nothing was changed. Try again."), "error")
        return redirect(url_for(".index"))

    def _breached_url(self, endpoint: str, kind=None) -> str:
        view = next(v for v in self.admin._views if v.endpoint == endpoint)
        return url_for(f"{endpoint}.index_view", **{view.filter_arg(kind or SlaFilter): "1"})

"""Ticket reports for the master admin: CSV and XLSX exports and a summary.

Why not Flask-Admin's export: it runs the list query with `.all()` (docs/architecture.md §13,
trap 5), so a year of tickets would sit in memory before the first byte is
sent. Here the CSV is a generator that reads the rows in keyset-paginated
batches of plain tuples (`id > last id ORDER BY id LIMIT n`), so memory stays
flat however many rows match. XLSX cannot be streamed to the client (a zip
written at the end), so it uses openpyxl's write-only workbook and a row cap.

Every text cell is neutralised against spreadsheet formulas, and the export
holds no message text at all: internal notes cannot leak through it.
"""

from __future__ import annotations

import io
from datetime import datetime, timedelta

from flask import Response, current_app, request
from flask_admin import BaseView, expose
from flask_babel import gettext as _
from openpyxl import Workbook
from sqlalchemy import and_, case, func, select

from ..domain import permissions as perm
from ..extensions import db
from ..models import Department, Ticket
from ..models.base import utcnow
from ..replica import heavy_reads, stream
from .base import StaffAccessMixin
from .exports import keyset_rows, neutralise, stream_csv
from .report_filters import ReportForm, ticket_conditions
from .sqlhelpers import (
    first_response_seconds,
    local_month,
    medians,
    offset_minutes,
    resolution_seconds,
)

XLSX_MAX_ROWS = 100_000


def _hours(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return round((end - start).total_seconds() / 3600, 2)


def export_headers() -> list[str]:
    return [
        _("Number"),
        _("Subject"),
        _("Created"),
        _("First response"),
        _("Finished at"),
        _("Kind"),
        _("Status"),
        _("Department"),
        _("Priority"),
        _("First response (hours)"),
        _("Resolution (hours)"),
        _("SLA breached"),
        _("Rating"),
    ]


def export_rows(conditions, now: datetime, batch: int):
    """Yield one list of cells per ticket, reading `batch` rows at a time by id."""
    columns = (
        Ticket.id,
        Ticket.number,
        Ticket.subject,
        Ticket.created_at,
        Ticket.first_response_at,
        Ticket.finished_at,
        Ticket.kind,
        Ticket.status,
        Department.code,
        Ticket.priority,
        case((Ticket.sla_breached(now), 1), else_=0),
        Ticket.rating,
    )
    shift = timedelta(minutes=offset_minutes())  # once, not per cell

    def local(value):
        return None if value is None else (value + shift).replace(microsecond=0)

    stmt = (
        select(*columns)
        .outerjoin(Department, Ticket.department_id == Department.id)
        .where(*conditions)
    )
    for r in keyset_rows(stmt, Ticket.id, batch):
        yield [
            r.number,
            neutralise(r.subject),
            local(r.created_at),
            local(r.first_response_at),
            local(r.finished_at),
            r.kind.value,
            r.status.value,
            neutralise(r.code or ""),
            r.priority.value,
            _hours(r.created_at, r.first_response_at),
            _hours(r.created_at, r.finished_at),
            "yes" if r[10] else "no",
            r.rating,
        ]


def summary_rows(conditions, now: datetime) -> list[dict]:
    """Counts and median times by department × kind × local month."""
    month = local_month(Ticket.created_at, offset_minutes())
    groups = (Ticket.department_id, Ticket.kind, month)
    where = and_(*conditions)
    counted = db.session.execute(
        select(
            *groups,
            func.count(),
            func.sum(case((Ticket.sla_breached(now), 1), else_=0)),
            func.avg(Ticket.rating),
        )
        .where(where)
        .group_by(*groups)
    ).all()
    first = medians(first_response_seconds(), where, groups)
    resolution = medians(resolution_seconds(), where, groups)
    departments = {d.id: d.code for d in db.session.scalars(select(Department))}
    out = []
    for dept_id, kind, ym, count, breached, rating in counted:
        key = (dept_id, kind, ym)
        out.append(
            {
                "department": departments.get(dept_id, "") if dept_id else "",
                "kind": kind,
                "month": f"{int(ym) // 100:04d}-{int(ym) % 100:02d}",
                "count": count,
                "breached": int(breached or 0),
                "first_response": first.get(key),
                "resolution": resolution.get(key),
                "rating": float(rating) if rating is not None else None,
            }
        )
    out.sort(key=lambda r: (r["month"], r["department"], r["kind"].value))
    return out


class ReportView(StaffAccessMixin, BaseView):
    """/admin/reports/: the master admin's exports (REPORTS permission only)."""

    required_permission = perm.REPORTS

    def _form(self) -> ReportForm:
        form = ReportForm(request.args)
        form.prepare()
        return form

    def _filename(self, form: ReportForm, ext: str) -> str:
        return f"tickets-{form.date_from.data:%Y%m%d}-{form.date_to.data:%Y%m%d}.{ext}"

    @expose("/")
    def index(self):
        form = self._form()
        valid = form.validate()
        context = {"form": form, "valid": valid, "summary": None, "count": None}
        if valid:
            conditions = ticket_conditions(form)
            with heavy_reads():
                context["count"] = db.session.scalar(
                    select(func.count()).select_from(Ticket).where(*conditions)
                )
                context["summary"] = summary_rows(conditions, utcnow())
            context["query"] = request.query_string.decode("ascii", "replace")
        return self.render("admin/reports/index.html", **context)

    def _valid_or_400(self):
        form = self._form()
        if not form.validate():
            problems = "; ".join(f"{k}: {', '.join(map(str, v))}" for k, v in form.errors.items())
            return form, Response(problems, status=400, mimetype="text/plain")
        return form, None

    @expose("/tickets.csv")
    def tickets_csv(self):
        form, error = self._valid_or_400()
        if error:
            return error
        conditions = ticket_conditions(form)
        now = utcnow()
        batch = int(current_app.config.get("CAREBOX_REPORT_BATCH", 2000))

        rows = stream(export_rows(conditions, now, batch))
        return stream_csv(self._filename(form, "csv"), export_headers(), rows, batch)

    @expose("/tickets.xlsx")
    def tickets_xlsx(self):
        form, error = self._valid_or_400()
        if error:
            return error
        cap = int(current_app.config.get("CAREBOX_REPORT_XLSX_MAX_ROWS", XLSX_MAX_ROWS))
        batch = int(current_app.config.get("CAREBOX_REPORT_BATCH", 2000))
        book = Workbook(write_only=True)
        sheet = book.create_sheet(_("Tickets"))
        sheet.append(export_headers())
        truncated = False
        rows = stream(export_rows(ticket_conditions(form), utcnow(), batch))
        for i, row in enumerate(rows):
            if i >= cap:
                truncated = True
                sheet.append(
                    [
                        _(
                            "Only the first %(n)d tickets are in this file; "
                            "use the CSV export for all of them.",
                            n=cap,
                        )
                    ]
                )
                break
            sheet.append(row)
        out = io.BytesIO()
        book.save(out)
        headers = {
            "Content-Disposition": f'attachment; filename="{self._filename(form, "xlsx")}"',
            "Cache-Control": "private, no-store",
        }
        if truncated:
            headers["X-Carebox-Truncated"] = str(cap)
        return Response(
            out.getvalue(),
            mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            headers=headers,
        )

    @expose("/summary.csv")
    def summary_csv(self):
        form, error = self._valid_or_400()
        if error:
            return error
        with heavy_reads():
            rows = summary_rows(ticket_conditions(form), utcnow())
        headers = [
            _("Month"),
            _("Department"),
            _("Kind"),
            _("Tickets"),
            _("SLA breached"),
            _("Median first response (hours)"),
            _("Median resolution (hours)"),
            _("Average rating"),
        ]
        cells = (
            [
                r["month"],
                r["department"],
                r["kind"].value,
                r["count"],
                r["breached"],
                None if r["first_response"] is None else round(r["first_response"] / 3600, 2),
                None if r["resolution"] is None else round(r["resolution"] / 3600, 2),
                None if r["rating"] is None else round(r["rating"], 2),
            ]
            for r in rows
        )
        filename = f"summary-{form.date_from.data:%Y%m%d}-{form.date_to.data:%Y%m%d}.csv"
        return stream_csv(filename, headers, cells, batch=500)

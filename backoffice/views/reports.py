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
from datetime import datetime
from urllib.parse import parse_qsl

from flask import Response, abort, current_app, flash, redirect, request, send_file, url_for
from flask_admin import BaseView, expose
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import String, and_, case, func, select, type_coerce
from werkzeug.datastructures import MultiDict

from ..domain import export_jobs
from ..domain import permissions as perm
from ..domain.tickets import staff_rating
from ..extensions import csrf, db
from ..models import Department, ExportJob, Priority, Ticket, TicketKind, TicketStatus
from ..models.base import utcnow
from ..replica import heavy_reads, stream
from .base import StaffAccessMixin
from .exports import csv_batches, hours_text, keyset_batches, neutralise, stream_csv, yes_no
from .report_filters import ReportForm, ticket_conditions
from .sla_report import CLOCKS, DIMENSIONS, MissedLinks, sla_rows
from .sqlhelpers import (
    first_response_seconds,
    local_month,
    local_time,
    medians,
    microseconds_between,
    offset_minutes,
    resolution_seconds,
)

XLSX_MAX_ROWS = 100_000
# Exports above this many rows are written by the export worker (domain/export_jobs.py),
# not by the request: at the CSV's ~20,000 rows/s this is a second or two.
DIRECT_MAX_ROWS = 20_000


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
        _("Kind code"),
        _("Status code"),
        _("Priority code"),
    ]


def export_batches(
    conditions, now: datetime, batch: int, *, typed: bool = False, job: bool = False
):
    """Lists of up to `batch` rows, one list of cells per ticket. The database shifts the
    times to local ones (cut to the second) and measures the durations; Python only looks
    labels up, neutralises the text cells (the CSV writer adds nothing) and writes the
    hours. CSV cells are text in the reader's language; `typed` (XLSX) cells keep
    datetimes and numbers for the spreadsheet.

    A request reads `batch` rows at a time by id (a slow client then holds no cursor
    open). A `job` on MariaDB reads them in one statement from a server-side cursor; not on
    SQLite, where a read left open would lock out the job's progress writes."""
    minutes = offset_minutes()
    columns = (
        Ticket.id,
        Ticket.number,
        Ticket.subject,
        local_time(Ticket.created_at, minutes),
        local_time(Ticket.first_response_at, minutes),
        local_time(Ticket.finished_at, minutes),
        type_coerce(Ticket.kind, String),  # the stored codes, not Enum members
        type_coerce(Ticket.status, String),
        Department.code,
        type_coerce(Ticket.priority, String),
        microseconds_between(Ticket.created_at, Ticket.first_response_at),
        microseconds_between(Ticket.created_at, Ticket.finished_at),
        case((Ticket.sla_breached(now), 1), else_=0),
        Ticket.rating,
    )
    stmt = (
        select(*columns)
        .outerjoin(Department, Ticket.department_id == Department.id)
        .where(*conditions)
    )
    if job and db.session.get_bind().dialect.supports_server_side_cursors:
        stmt = stmt.order_by(Ticket.id)
        conn = db.session.connection(bind_arguments={"clause": stmt})
        result = conn.execute(stmt, execution_options={"stream_results": True})
        chunks = result.yield_per(batch).partitions()
    else:
        chunks = keyset_batches(stmt, Ticket.id, batch)
    # Everything that depends on the reader's language, once per export, not per cell.
    kinds = {m.value: m.label for m in TicketKind}
    statuses = {m.value: m.label for m in TicketStatus}
    priorities = {m.value: m.label for m in Priority}
    breached_text = (yes_no(False), yes_no(True))
    text = hours_text()
    when = datetime.fromisoformat

    def cells(row):
        (
            _id,
            number,
            subject,
            created,
            first,
            finished,
            kind,
            status,
            code,
            priority,
            first_us,
            finish_us,
            breached,
            rating,
        ) = row
        first_h = None if first_us is None else round(first_us / 1_000_000 / 3600, 2)
        finish_h = None if finish_us is None else round(finish_us / 1_000_000 / 3600, 2)
        if typed:  # datetimes and numbers: the spreadsheet formats them
            created = when(created)
            first = first and when(first)
            finished = finished and when(finished)
        else:
            first_h = first_h if first_h is None else text(first_h)
            finish_h = finish_h if finish_h is None else text(finish_h)
        return [
            number,
            neutralise(subject),
            created,
            first,
            finished,
            kinds[kind],
            statuses[status],
            neutralise(code or ""),
            priorities[priority],
            first_h,
            finish_h,
            breached_text[breached],
            rating,
            kind,
            status,
            priority,
        ]

    for chunk in chunks:
        yield [cells(r) for r in chunk]


def export_rows(conditions, now: datetime, batch: int, **how):
    """`export_batches` one row at a time."""
    for chunk in export_batches(conditions, now, batch, **how):
        yield from chunk


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
            func.avg(staff_rating()),  # not the ratings of tickets nobody answered
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


def write_xlsx(out, rows, cap: int) -> tuple[int, bool]:
    """The tickets as a write-only workbook into `out`: (rows written, truncated at `cap`)."""
    # Imported here, not at start-up: openpyxl is 19 MB of a worker's memory, and only an
    # XLSX export needs it (issue 16 item 9).
    from openpyxl import Workbook  # noqa: PLC0415

    book = Workbook(write_only=True)
    sheet = book.create_sheet(_("Tickets"))
    sheet.append(export_headers())
    written, truncated = 0, False
    for row in rows:
        if written >= cap:
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
        written += 1
    book.save(out)
    return written, truncated


def _config_int(name: str, default: int) -> int:
    return int(current_app.config.get(name, default))


def _job_form(job: ExportJob) -> ReportForm:
    form = ReportForm(MultiDict(parse_qsl(job.params, keep_blank_values=True)))
    form.prepare()
    if not form.validate():
        raise ValueError(f"the saved report filters are no longer valid: {form.errors}")
    return form


def _job_count(job: ExportJob) -> int:
    with heavy_reads():
        return db.session.scalar(
            select(func.count()).select_from(Ticket).where(*ticket_conditions(_job_form(job)))
        )


def _xlsx_count(job: ExportJob) -> int:
    return min(_job_count(job), _config_int("CAREBOX_REPORT_XLSX_MAX_ROWS", XLSX_MAX_ROWS))


def _filename(form: ReportForm, ext: str, rows: int | None = None) -> str:
    span = f"tickets-{form.date_from.data:%Y%m%d}-{form.date_to.data:%Y%m%d}"
    # A job's file names its row count: the file itself says how much it holds.
    return f"{span}-{rows}-rows.{ext}" if rows is not None else f"{span}.{ext}"


def _write_csv_job(job, out, progress) -> export_jobs.Written:
    form = _job_form(job)
    batch = _config_int("CAREBOX_REPORT_BATCH", 2000)
    batches = stream(export_batches(ticket_conditions(form), utcnow(), batch, job=True))
    count = 0

    def counted(n):
        nonlocal count
        count = n
        progress(n)

    for chunk in csv_batches(export_headers(), batches, counted, cells=None):
        out.write(chunk.encode("utf-8"))
    return export_jobs.Written(count, _filename(form, "csv", count))


def _write_xlsx_job(job, out, progress) -> export_jobs.Written:
    form = _job_form(job)
    batch = _config_int("CAREBOX_REPORT_BATCH", 2000)
    cap = _config_int("CAREBOX_REPORT_XLSX_MAX_ROWS", XLSX_MAX_ROWS)

    def reported(rows):
        for i, row in enumerate(rows, 1):
            if i % batch == 0:
                progress(i)
            yield row

    rows = reported(
        stream(export_rows(ticket_conditions(form), utcnow(), batch, typed=True, job=True))
    )
    written, _truncated = write_xlsx(out, rows, cap)
    progress(written)
    return export_jobs.Written(written, _filename(form, "xlsx", written))


XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
export_jobs.register(
    "tickets_csv", export_jobs.Writer("csv", "text/csv", _write_csv_job, _job_count)
)
export_jobs.register(
    "tickets_xlsx",
    export_jobs.Writer(
        "xlsx",
        XLSX_TYPE,
        _write_xlsx_job,
        _xlsx_count,
    ),
)
JOB_KINDS = {"csv": "tickets_csv", "xlsx": "tickets_xlsx"}


class ReportView(StaffAccessMixin, BaseView):
    """/admin/reports/: the master admin's exports (REPORTS permission only)."""

    required_permission = perm.REPORTS

    def _form(self) -> ReportForm:
        form = ReportForm(request.args)
        form.prepare()
        return form

    def _filename(self, form: ReportForm, ext: str) -> str:
        return _filename(form, ext)

    @expose("/")
    def index(self):
        form = self._form()
        valid = form.validate()
        context = {
            "form": form,
            "valid": valid,
            "summary": None,
            "count": None,
            "direct_max": _config_int("CAREBOX_EXPORT_DIRECT_MAX_ROWS", DIRECT_MAX_ROWS),
            "jobs": export_jobs.jobs_of(current_user),
        }
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

    def _too_large(self, form: ReportForm):
        """A redirect to the report page when the export is a job's work, else None."""
        limit = _config_int("CAREBOX_EXPORT_DIRECT_MAX_ROWS", DIRECT_MAX_ROWS)
        with heavy_reads():
            count = db.session.scalar(
                select(func.count()).select_from(Ticket).where(*ticket_conditions(form))
            )
        if count <= limit:
            return None
        flash(
            _(
                "%(n)d tickets are too many to download at once: prepare the file below, "
                "and download it when it is ready.",
                n=count,
            ),
            "info",
        )
        query = request.query_string.decode("ascii", "replace")
        return redirect(url_for(".index") + (f"?{query}" if query else "") + "#exports", 303)

    @expose("/exports/", methods=["POST"])
    def export_create(self):
        """Queue an export job for the filters in the form's `query` (CSRF-checked)."""
        csrf.protect()
        kind = JOB_KINDS.get(request.form.get("format", ""))
        query = request.form.get("query", "")[:4000]
        form = ReportForm(MultiDict(parse_qsl(query, keep_blank_values=True)))
        form.prepare()
        back = url_for(".index") + (f"?{query}" if query else "")
        if kind is None or not form.validate():
            flash(_("This export cannot be prepared: check the filters and the format."), "error")
            return redirect(back, 303)
        try:
            export_jobs.request_export(current_user, kind, query, str(get_locale() or "id"))
        except export_jobs.ExportRefused as refused:
            flash(str(refused), "error")
        else:
            flash(_("The export is being prepared: it appears below when it is ready."), "success")
        return redirect(back + "#exports", 303)

    @expose("/exports/list")
    def export_list(self):
        """The "Your exports" table alone: the page refreshes it while a job runs."""
        return self.render("admin/reports/_exports.html", jobs=export_jobs.jobs_of(current_user))

    @expose("/exports/<int:job_id>/download")
    def export_download(self, job_id: int):
        if job_id > 2**31:
            abort(404)
        job = db.session.get(ExportJob, job_id)
        if job is None or job.requested_by_id != current_user.id:
            abort(404)  # another person's file is not even said to exist
        path = export_jobs.downloadable(job)
        if path is None:
            abort(404)
        response = send_file(
            path,
            mimetype=export_jobs.WRITERS[job.kind].mimetype,
            as_attachment=True,
            download_name=job.filename,
            conditional=True,
            etag=True,
        )
        response.headers["X-Carebox-Rows"] = str(job.rows_written)
        response.headers["Cache-Control"] = "private, no-store"
        return response

    @expose("/tickets.csv")
    def tickets_csv(self):
        form, error = self._valid_or_400()
        if error:
            return error
        too_large = self._too_large(form)
        if too_large:
            return too_large
        conditions = ticket_conditions(form)
        now = utcnow()
        batch = int(current_app.config.get("CAREBOX_REPORT_BATCH", 2000))

        rows = stream(export_rows(conditions, now, batch))
        # export_batches writes its cells itself, neutralised.
        return stream_csv(self._filename(form, "csv"), export_headers(), rows, batch, cells=None)

    @expose("/tickets.xlsx")
    def tickets_xlsx(self):
        form, error = self._valid_or_400()
        if error:
            return error
        too_large = self._too_large(form)
        if too_large:
            return too_large
        cap = _config_int("CAREBOX_REPORT_XLSX_MAX_ROWS", XLSX_MAX_ROWS)
        batch = _config_int("CAREBOX_REPORT_BATCH", 2000)
        rows = stream(export_rows(ticket_conditions(form), utcnow(), batch, typed=True))
        out = io.BytesIO()
        _written, truncated = write_xlsx(out, rows, cap)
        headers = {
            "Content-Disposition": f'attachment; filename="{self._filename(form, "xlsx")}"',
            "Cache-Control": "private, no-store",
        }
        if truncated:
            headers["X-Carebox-Truncated"] = str(cap)
        return Response(out.getvalue(), mimetype=XLSX_TYPE, headers=headers)

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
            _("Kind code"),
        ]
        cells = (
            [
                r["month"],
                r["department"],
                str(r["kind"].label),
                r["count"],
                r["breached"],
                None if r["first_response"] is None else round(r["first_response"] / 3600, 2),
                None if r["resolution"] is None else round(r["resolution"] / 3600, 2),
                None if r["rating"] is None else round(r["rating"], 2),
                r["kind"].value,
            ]
            for r in rows
        )
        filename = f"summary-{form.date_from.data:%Y%m%d}-{form.date_to.data:%Y%m%d}.csv"
        return stream_csv(filename, headers, cells, batch=500)

    def _sla_tables(self, form: ReportForm) -> list[tuple]:
        conditions, now = ticket_conditions(form), utcnow()
        with heavy_reads():
            return [(d, DIMENSIONS[d], sla_rows(conditions, d, now)) for d in DIMENSIONS]

    @expose("/sla/")
    def sla(self):
        """Percent of each SLA clock met, per department, priority, agent and month, with
        each figure's missed tickets one click away (views/sla_report.py)."""
        form = self._form()
        valid = form.validate()
        context = {
            "form": form,
            "valid": valid,
            "tables": [],
            "clocks": CLOCKS,
            "query": request.query_string.decode("ascii", "replace"),
        }
        if valid:
            context["tables"] = self._sla_tables(form)
            context["links"] = MissedLinks(self.admin, form)
        return self.render("admin/reports/sla.html", **context)

    @expose("/sla.csv")
    def sla_csv(self):
        form, error = self._valid_or_400()
        if error:
            return error
        tables = self._sla_tables(form)
        headers = [
            _("Grouped by"),
            _("Group"),
            _("Tickets"),
            _("First response met"),
            _("First response missed"),
            _("First response met (%)"),
            _("Resolution met"),
            _("Resolution missed"),
            _("Resolution met (%)"),
            _("Grouping code"),
            _("Group code"),
        ]

        def percent(clock):
            return None if clock.percent is None else round(clock.percent, 1)

        cells = (
            [
                str(title),
                row.label,  # csv_cell neutralises text (an agent's name is user-written)
                row.tickets,
                row.first_response.met,
                row.first_response.missed,
                percent(row.first_response),
                row.resolution.met,
                row.resolution.missed,
                percent(row.resolution),
                dim,  # the grouping for machines: the column before it is translated
                row.code,
            ]
            for dim, title, rows in tables
            for row in rows
        )
        filename = f"sla-{form.date_from.data:%Y%m%d}-{form.date_to.data:%Y%m%d}.csv"
        return stream_csv(filename, headers, cells, batch=500)

"""An export job's file against the raw streaming floor, on the same rows in the same run.

Usage: DATABASE_URL=... python bench/export_job.py [--runs 3]   (after `carebox seed-bulk`)

"carebox" is what `carebox exports run` does for one job of every ticket (claim, count,
one server-side cursor on MariaDB, labels, formula neutralising, csv, a lease renewal
every second, fsync, rename). "raw SQL" is the floor: one server-side cursor over the
stored columns, joined the same way, written with csv.writer and nothing else. Medians of
`--runs` runs and their ratio (the target is at most 1.5×), and the worker's peak RSS.

XLSX, within its row cap (CAREBOX_REPORT_XLSX_MAX_ROWS, 100,000): the job against the same
library (openpyxl, write-only) writing the very rows the job writes, made beforehand, plus
the raw cursor reading that many rows: the floor of what the job cannot avoid.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import resource
import statistics
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from common import bench_app
from flask_babel import force_locale
from sqlalchemy import delete, func, select, text

from backoffice.domain import export_jobs
from backoffice.domain import permissions as perm
from backoffice.extensions import db
from backoffice.models import ExportJob, Ticket
from backoffice.models.base import utcnow
from backoffice.security_setup import ensure_roles
from backoffice.seed import ensure_user
from backoffice.views import reports

RAW = """
SELECT t.number, t.subject, t.created_at, t.first_response_at, t.finished_at, t.kind,
       t.status, d.code, t.priority, t.rating
FROM ticket t LEFT JOIN department d ON d.id = t.department_id
WHERE t.created_at >= '1000-01-01' ORDER BY t.id
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    app = bench_app()
    out_dir = Path(tempfile.mkdtemp(prefix="carebox-exports-"))
    app.config["CAREBOX_EXPORT_DIR"] = str(out_dir)
    with app.app_context():
        ensure_roles()
        master = ensure_user("bench-master@carebox.example", "x" * 20, perm.MASTER_ADMIN)
        db.session.commit()
        total = db.session.scalar(select(func.count(Ticket.id)))
        print(f"{db.engine.dialect.name}: {total:,} tickets")
        today = date.today()
        # The widest range the report form takes (three years), ending tomorrow.
        params = (
            f"date_from={today - timedelta(days=3 * 365 - 2)}&date_to={today + timedelta(days=1)}"
        )

        def job(kind="tickets_csv") -> float:
            export_jobs.request_export(master, kind, params, "en")
            start = time.perf_counter()
            assert export_jobs.work(once=True) == 1
            seconds = time.perf_counter() - start
            done = db.session.scalars(select(ExportJob).order_by(ExportJob.id.desc())).first()
            assert done.rows_written == done.rows_expected, (done.rows_written, done.rows_expected)
            export_jobs.file_path(done).unlink()
            return seconds

        def raw(limit="") -> float:
            start = time.perf_counter()
            with (
                db.engine.connect().execution_options(stream_results=True) as conn,
                open(out_dir / "raw.csv", "w", newline="", encoding="utf-8") as out,
            ):
                writer = csv.writer(out)
                for rows in conn.execute(text(RAW + limit)).partitions(2000):
                    writer.writerows(rows)
            return time.perf_counter() - start

        cap = min(total, int(app.config.get("CAREBOX_REPORT_XLSX_MAX_ROWS", reports.XLSX_MAX_ROWS)))
        with app.test_request_context(), force_locale("en"):
            the_rows = list(
                itertools.islice(
                    reports.export_rows([Ticket.id > 0], utcnow(), 2000, typed=True, job=True),
                    cap,
                )
            )
            db.session.rollback()

        def xlsx_library() -> float:
            from openpyxl import Workbook  # noqa: PLC0415

            start = time.perf_counter()
            book = Workbook(write_only=True)
            sheet = book.create_sheet("Tickets")
            for row in the_rows:
                sheet.append(row)
            with open(out_dir / "raw.xlsx", "wb") as out:
                book.save(out)
            return time.perf_counter() - start

        ours = [job() for _ in range(args.runs)]
        floor = [raw() for _ in range(args.runs)]
        xlsx = [job("tickets_xlsx") for _ in range(args.runs)]
        library = [xlsx_library() for _ in range(args.runs)]
        read = [raw(f" LIMIT {cap}") for _ in range(args.runs)]
        db.session.execute(delete(ExportJob).where(ExportJob.requested_by_id == master.id))
        db.session.commit()
    a, b = statistics.median(ours), statistics.median(floor)
    print(f"{'case':34} {'carebox s':>10} {'raw s':>10} {'ratio':>6}")
    print(f"{'CSV export job, every ticket':34} {a:10.2f} {b:10.2f} {a / b:6.2f}")
    print(f"rows/s: carebox {total / a:,.0f}, raw {total / b:,.0f}")
    x, lib, r = statistics.median(xlsx), statistics.median(library), statistics.median(read)
    print(f"{f'XLSX export job, {cap:,} rows':34} {x:10.2f} {lib + r:10.2f} {x / (lib + r):6.2f}")
    print(f"  (floor: openpyxl writing the same rows {lib:.2f} s + raw cursor read {r:.2f} s)")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of this process: {peak:.0f} MB")


if __name__ == "__main__":
    main()

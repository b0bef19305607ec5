"""Large exports as jobs: asked for on the report page, written by a worker, offered only
whole — and a worker killed mid-file never leaves a complete-looking file behind."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import openpyxl
import pytest
from sqlalchemy import select, update

from backoffice.domain import export_jobs
from backoffice.domain import permissions as perm
from backoffice.models import ExportJob, ExportStatus
from backoffice.models.base import utcnow

from .admin_support import counting_queries

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def exports(app, tmp_path, monkeypatch):
    """Exports above 2 tickets are jobs, written into a directory of this test's."""
    monkeypatch.setitem(app.config, "CAREBOX_EXPORT_DIR", str(tmp_path / "exports"))
    monkeypatch.setitem(app.config, "CAREBOX_EXPORT_DIRECT_MAX_ROWS", 2)
    return tmp_path / "exports"


def read_csv(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))


def ask(b, fmt="csv", query=""):
    return b.post(
        "/admin/reports/exports/",
        {"format": fmt, "query": query},
        form_url="/admin/reports/?" + query,
    )


def the_job(db) -> ExportJob:
    db.session.expire_all()
    return db.session.scalars(select(ExportJob)).one()


def test_a_large_export_is_prepared_then_downloaded_whole(login_as, make, db, exports):
    tickets = [make.ticket("team", subject=f"Paket {i}") for i in range(4)]
    tickets.append(make.ticket("team", subject='=HYPERLINK("http://evil","x")'))
    db.session.commit()
    b, master = login_as(perm.MASTER_ADMIN, locale="en")

    # Too many to stream from the request: the direct link sends the user to the job form.
    direct = b.get("/admin/reports/tickets.csv")
    assert direct.status_code == 303 and direct.location.endswith("#exports")
    page = b.get("/admin/reports/").get_data(as_text=True)
    assert 'id="export-create"' in page and "/admin/reports/tickets.csv" not in page

    resp = ask(b)
    assert resp.status_code == 303
    job = the_job(db)
    assert (job.status, job.requested_by_id, job.locale) == (ExportStatus.QUEUED, master.id, "en")
    listed = b.get("/admin/reports/exports/list").get_data(as_text=True)
    assert 'data-open="1"' in listed and "/download" not in listed

    assert export_jobs.work(once=True) == 1
    job = the_job(db)
    assert job.status is ExportStatus.DONE and job.rows_written == job.rows_expected == 5
    assert job.filename.endswith("-5-rows.csv")
    listed = b.get("/admin/reports/exports/list").get_data(as_text=True)
    assert f"/admin/reports/exports/{job.id}/download" in listed and 'data-open="0"' in listed

    got = b.get(f"/admin/reports/exports/{job.id}/download", buffered=True)
    assert got.status_code == 200 and got.mimetype == "text/csv"
    assert got.headers["X-Carebox-Rows"] == "5"
    assert int(got.headers["Content-Length"]) == job.size_bytes == len(got.data)
    assert job.filename in got.headers["Content-Disposition"]
    rows = read_csv(got.data)
    assert rows[0][:2] == ["Number", "Subject"]
    assert sorted(r[0] for r in rows[1:]) == sorted(t.number for t in tickets)
    assert '\'=HYPERLINK("http://evil","x")' in [r[1] for r in rows[1:]]


def test_a_job_writes_its_progress_not_every_batch(app, login_as, make, db, exports):
    """The lease is renewed every few seconds, not at each batch: a commit per batch was
    500 fsyncs in a 1M-row export. Shown progress and the final count are still right."""
    for i in range(20):
        make.ticket("team", subject=f"Paket {i}")
    db.session.commit()
    b, _ = login_as(perm.MASTER_ADMIN)
    ask(b)
    app.config["CAREBOX_REPORT_BATCH"] = 1
    try:
        with counting_queries(db.engine) as statements:
            assert export_jobs.work(once=True) == 1
    finally:
        app.config["CAREBOX_REPORT_BATCH"] = 2000
    progress = [s for s in statements if s.startswith("UPDATE export_job SET lease_until")]
    assert len(progress) == 1  # the first batch's (at most one every quarter lease after)
    job = the_job(db)
    assert job.status is ExportStatus.DONE and job.rows_written == job.rows_expected == 20


def test_the_job_speaks_the_language_of_who_asked(login_as, make, db, exports):
    for _ in range(3):
        make.ticket("team")
    db.session.commit()
    b, _ = login_as(perm.MASTER_ADMIN, locale="id")
    ask(b, "xlsx")
    export_jobs.work(once=True)
    job = the_job(db)
    got = b.get(f"/admin/reports/exports/{job.id}/download", buffered=True)
    sheet = openpyxl.load_workbook(io.BytesIO(got.data), read_only=True).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][0] == "Nomor" and len(rows) == 4
    assert job.filename.endswith("-3-rows.xlsx")


def test_small_exports_still_download_at_once(login_as, make, db, exports):
    make.ticket("team")
    db.session.commit()
    b, _ = login_as(perm.MASTER_ADMIN, locale="en")
    resp = b.get("/admin/reports/tickets.csv")
    assert resp.status_code == 200 and len(read_csv(resp.get_data())) == 2
    assert db.session.scalars(select(ExportJob)).all() == []


@pytest.mark.parametrize("role", [perm.CUSTOMER_SERVICE, perm.ADMIN_DEPARTMENT, perm.CUSTOMER])
def test_only_the_report_permission_asks_lists_and_downloads(role, login_as, make, db, exports):
    owner, _ = login_as(perm.MASTER_ADMIN)
    for _ in range(3):
        make.ticket("team")
    db.session.commit()
    ask(owner)
    export_jobs.work(once=True)
    job = the_job(db)
    b, _ = login_as(role)
    for resp in (
        b.client.post("/admin/reports/exports/", data={"format": "csv", "query": ""}),
        b.get("/admin/reports/exports/list"),
        b.get(f"/admin/reports/exports/{job.id}/download", buffered=True),
    ):
        assert resp.status_code in (302, 403, 404), resp.status_code
        assert b"Number" not in resp.data and job.filename.encode() not in resp.data
    assert db.session.scalars(select(ExportJob)).all() == [job]  # nothing queued


def test_another_admins_file_is_not_even_said_to_exist(login_as, make, db, exports):
    owner, _ = login_as(perm.MASTER_ADMIN)
    for _ in range(3):
        make.ticket("team")
    db.session.commit()
    ask(owner)
    export_jobs.work(once=True)
    job = the_job(db)
    other, _ = login_as(perm.MASTER_ADMIN)
    assert other.get(f"/admin/reports/exports/{job.id}/download").status_code == 404
    assert f"exports/{job.id}/" not in other.get("/admin/reports/").get_data(as_text=True)
    for bad in ("999999", str(2**63 + 5)):
        assert owner.get(f"/admin/reports/exports/{bad}/download").status_code == 404


def test_bad_requests_change_nothing(login_as, make, db, exports):
    b, _ = login_as(perm.MASTER_ADMIN, locale="en")
    for data in (
        {"format": "pdf", "query": ""},
        {"format": "csv", "query": "date_from=2026-02-30"},
        {"format": "csv", "query": "date_from=2026-05-01&date_to=2026-01-01"},
    ):
        resp = b.post("/admin/reports/exports/", data, form_url="/admin/reports/")
        assert resp.status_code == 303
    assert "cannot be prepared" in b.get("/admin/reports/").get_data(as_text=True)
    assert b.client.post("/admin/reports/exports/", data={"format": "csv"}).status_code == 400
    assert db.session.scalars(select(ExportJob)).all() == []


def test_one_person_has_at_most_a_few_exports_waiting(login_as, make, db, exports):
    b, _ = login_as(perm.MASTER_ADMIN, locale="en")
    for _ in range(export_jobs.MAX_OPEN_PER_USER + 2):
        ask(b)
    assert len(db.session.scalars(select(ExportJob)).all()) == export_jobs.MAX_OPEN_PER_USER
    assert "already have" in b.get("/admin/reports/").get_data(as_text=True)


def test_a_failing_export_is_retried_then_marked_failed(login_as, make, db, exports):
    b, user = login_as(perm.MASTER_ADMIN, locale="en")
    # Filters that were valid when asked for and are not any more (a range turned around).
    job = ExportJob(
        kind="tickets_csv",
        params="date_from=2026-05-01&date_to=2026-01-01",
        locale="en",
        requested_by_id=user.id,
    )
    db.session.add(job)
    db.session.commit()
    for _ in range(export_jobs.MAX_ATTEMPTS):
        export_jobs.work(once=True)
    job = the_job(db)
    assert job.status is ExportStatus.FAILED and "no longer valid" in job.error
    assert job.attempts == export_jobs.MAX_ATTEMPTS
    assert list(exports.iterdir()) == []  # no partial file left
    assert b.get(f"/admin/reports/exports/{job.id}/download", buffered=True).status_code == 404
    assert "Failed" in b.get("/admin/reports/exports/list").get_data(as_text=True)


def test_a_file_that_lost_bytes_is_not_offered(login_as, make, db, exports):
    for _ in range(3):
        make.ticket("team")
    db.session.commit()
    b, _ = login_as(perm.MASTER_ADMIN)
    ask(b)
    export_jobs.work(once=True)
    job = the_job(db)
    path = export_jobs.file_path(job)
    path.write_bytes(path.read_bytes()[:-10])  # a disk that lost its tail
    assert b.get(f"/admin/reports/exports/{job.id}/download", buffered=True).status_code == 404


def test_old_files_are_deleted_after_their_retention(login_as, make, db, exports):
    for _ in range(3):
        make.ticket("team")
    db.session.commit()
    b, _ = login_as(perm.MASTER_ADMIN)
    ask(b)
    export_jobs.work(once=True)
    job = the_job(db)
    assert export_jobs.expire(utcnow() + timedelta(hours=73)) == 1
    job = the_job(db)
    assert job.status is ExportStatus.EXPIRED and not export_jobs.file_path(job).exists()
    assert b.get(f"/admin/reports/exports/{job.id}/download", buffered=True).status_code == 404


def test_a_worker_killed_mid_export_leaves_no_complete_looking_file(
    app, login_as, make, db, exports, database_url
):
    """The real worker in its own process, killed (SIGKILL) while it writes: the page
    offers nothing, no file has the final name; the next worker writes the file whole."""
    for i in range(300):
        make.ticket("team", subject=f"Paket {i}")
    db.session.commit()
    b, _ = login_as(perm.MASTER_ADMIN, locale="en")
    ask(b)
    env = {
        **os.environ,
        "CAREBOX_ENV": "development",
        "DATABASE_URL": database_url,
        "CAREBOX_EXPORT_DIR": str(exports),
        # A progress write per row, unthrottled: a long, observable job (throttled to one
        # a quarter lease, 300 rows were written and renamed before the kill on an idle machine).
        "CAREBOX_REPORT_BATCH": "1",
        "CAREBOX_EXPORT_PROGRESS_SECONDS": "0",
        "CAREBOX_EXPORT_LEASE_SECONDS": "1",
        "PYTHONUNBUFFERED": "1",
    }
    log = exports.parent / "worker.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(  # noqa: S603 (a fixed argv: this interpreter, our CLI)
            [sys.executable, "-c", "from backoffice.cli import main; main()", "exports", "run"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            job = the_job(db)
            if job.status is ExportStatus.RUNNING and job.rows_written > 0:
                break
            assert proc.poll() is None, log.read_text()
            db.session.rollback()
            time.sleep(0.01)
        proc.kill()
        proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    job = the_job(db)
    assert job.status is ExportStatus.RUNNING and 0 < job.rows_written < 300
    assert not export_jobs.file_path(job).exists()
    listed = b.get("/admin/reports/exports/list").get_data(as_text=True)
    assert "/download" not in listed and 'data-open="1"' in listed
    assert b.get(f"/admin/reports/exports/{job.id}/download", buffered=True).status_code == 404

    # Its lease runs out; the next worker claims the job and starts the file again.
    db.session.execute(update(ExportJob).values(lease_until=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    assert export_jobs.work(once=True) == 1
    job = the_job(db)
    assert job.status is ExportStatus.DONE and job.attempts == 2 and job.rows_written == 300
    assert [p.name for p in exports.iterdir()] == [f"{job.id}.csv"]  # the dead copy's part too
    got = b.get(f"/admin/reports/exports/{job.id}/download", buffered=True)
    assert len(read_csv(got.data)) == 301


def test_a_worker_whose_lease_was_taken_over_stops(login_as, make, db, exports):
    """Two workers never both finish one job: the first learns at its next progress write."""
    for _ in range(3):
        make.ticket("team")
    db.session.commit()
    b, _ = login_as(perm.MASTER_ADMIN)
    ask(b)
    first = export_jobs.claim_next()
    assert first is not None
    db.session.execute(update(ExportJob).values(lease_until=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    second = export_jobs.claim_next()
    assert second is not None and second[1] != first[1]
    assert export_jobs.run(*first) is ExportStatus.RUNNING  # stopped: not its job any more
    assert export_jobs.run(*second) is ExportStatus.DONE
    assert the_job(db).attempts == 2

"""`carebox tracking import FILE`: any usual CSV, idempotent, refused rows with their line
numbers (and a rejects file), a bad row never blocking good ones, two imports at once."""

from __future__ import annotations

import csv
import io
import threading

import pytest
from sqlalchemy import func, select

from backoffice.cli import tracking_group
from backoffice.models import OrderStatus, TrackingEvent, TrackingEventKind
from backoffice.tracking_import import import_file


def _count(db):
    return db.session.scalar(select(func.count()).select_from(TrackingEvent))


def _lines(resis, sep=","):
    rows = []
    for n, resi in enumerate(resis):
        rows += [
            sep.join(
                [resi, "picked_up", f"2026-11-{10 + n % 15:02d}T08:00:00+07:00", "Jakarta", ""]
            ),
            sep.join(
                [resi, "at_hub", f"2026-11-{10 + n % 15:02d}T15:00:00+07:00", "Hub Cakung", ""]
            ),
        ]
    return rows


@pytest.mark.parametrize(
    ("sep", "bom", "header"),
    [(",", False, True), (";", True, True), ("\t", False, True), (",", True, False)],
)
def test_any_usual_csv_imports_and_again_changes_nothing(
    runner, make, db, tmp_path, sep, bom, header
):
    orders = [make.order() for _ in range(3)]
    db.session.commit()
    lines = _lines([o.resi for o in orders], sep)
    if header:
        lines.insert(0, sep.join(["resi", "event", "occurred_at", "location", "note"]))
    path = tmp_path / "events.csv"
    path.write_bytes(("\ufeff" if bom else "").encode() + ("\r\n".join(lines) + "\r\n").encode())
    first = runner.invoke(tracking_group, ["import", str(path)])
    assert first.exit_code == 0, first.output
    assert "6 inserted, 0 unchanged, 0 refused" in first.output
    assert _count(db) == 6
    db.session.expire_all()
    assert all(o.status is OrderStatus.IN_TRANSIT for o in orders)
    assert all(o.last_event is TrackingEventKind.AT_HUB for o in orders)
    again = runner.invoke(tracking_group, ["import", str(path)])
    assert again.exit_code == 0
    assert "0 inserted, 6 unchanged, 0 refused" in again.output
    assert _count(db) == 6


def test_refused_rows_have_their_line_numbers_and_the_rest_lands(runner, make, db, tmp_path):
    order = make.order()
    db.session.commit()
    r = order.resi
    text = (
        "resi,event,occurred_at,location,note\n"  # line 1
        f"{r},picked_up,2026-11-20T08:00:00+07:00,Jakarta,\n"  # 2
        f'{r},at_hub,2026-11-20T15:00:00+07:00,Hub,"a note\non two lines"\n'  # 3-4
        "CB123456784ID,at_hub,2026-11-20T15:00:00+07:00,Hub,\n"  # 5: check digit
        f"{r},teleported,2026-11-20T15:00:00+07:00,Hub,\n"  # 6: unknown event
        "\n"  # 7: blank, skipped
        f"{r},departed_hub,yesterday,Hub,\n"  # 8: bad time
        f"{r},departed_hub\n"  # 9: too few columns
        f'=HYPERLINK("x"),at_hub,2026-11-20T15:00:00+07:00,Hub,\n'  # 10: not a resi
        f"{r},departed_hub,2026-11-20T18:00:00+07:00,Hub,\n"  # 11
    )
    path = tmp_path / "events.csv"
    path.write_text(text, encoding="utf-8")
    rejects = tmp_path / "rejects.csv"
    result = runner.invoke(tracking_group, ["import", str(path), "--rejects", str(rejects)])
    assert result.exit_code == 1  # some row refused; the others landed
    assert "3 inserted, 0 unchanged, 5 refused" in result.output
    for line in (5, 6, 8, 9, 10):
        assert f"events.csv:{line}:" in result.output
    assert "events.csv:3:" not in result.output and "events.csv:11:" not in result.output
    assert _count(db) == 3
    with rejects.open(encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["line", "reason", "resi", "event", "occurred_at", "location", "note"]
    assert [row[0] for row in rows[1:]] == ["5", "6", "8", "9", "10"]
    assert rows[-1][2].startswith("'=")  # a formula is neutralised in the rejects file


def test_the_summary_keeps_only_the_first_refusals(app, db):
    body = "".join(f"CB00000000{n % 10}ID,at_hub,2026-11-20T15:00:00+07:00,,\n" for n in range(120))
    summary = import_file(io.BytesIO(body.encode()), batch=25)
    assert summary.refused == 120 and len(summary.first_refused) == 50
    assert summary.first_refused[0][0] == 1


def test_unreadable_bytes_refuse_their_row_only(make, db):
    order = make.order()
    db.session.commit()
    body = (
        b"\xff\xfe\xc3(,at_hub,2026-11-20T15:00:00+07:00,,\n"
        + f"{order.resi},at_hub,2026-11-20T15:00:00+07:00,,\n".encode()
    )
    summary = import_file(io.BytesIO(body))
    assert (summary.inserted, summary.refused) == (1, 1)


def test_progress_follows_the_bytes(make, db):
    order = make.order()
    db.session.commit()
    body = "".join(
        f"{order.resi},at_hub,2026-11-{d:02d}T15:00:00+07:00,,\n" for d in range(1, 29)
    ).encode()
    seen = []
    import_file(io.BytesIO(body), batch=5, on_bytes=seen.append)
    assert sum(seen) == len(body)


def test_two_imports_of_one_file_at_once_insert_each_event_once(app, make, db, tmp_path):
    if db.engine.dialect.name != "mysql":
        pytest.skip("SQLite runs one writer at a time")
    orders = [make.order() for _ in range(40)]
    db.session.commit()
    body = "\n".join(_lines([o.resi for o in orders] * 1)).encode()
    barrier = threading.Barrier(2)
    summaries, errors = [], []

    def run():
        with app.app_context():
            from backoffice.extensions import db as _db

            try:
                barrier.wait(timeout=10)
                summaries.append(import_file(io.BytesIO(body), batch=7))
            except Exception as exc:  # noqa: BLE001 - reported below
                errors.append(exc)
            finally:
                _db.session.remove()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    assert sum(s.inserted for s in summaries) == 80
    assert sum(s.unchanged for s in summaries) == 80
    db.session.rollback()  # a new snapshot (REPEATABLE READ)
    assert _count(db) == 80
    assert all(o.last_event is TrackingEventKind.AT_HUB for o in orders)


def test_a_file_partly_imported_before_inserts_only_the_new_events(app, make, db):
    """A batch of known and new events: the database names the rows it wrote (RETURNING),
    the known ones are read back by id; each event's outcome is its own, and the order
    follows the newest."""
    orders = [make.order() for _ in range(4)]
    db.session.commit()
    old = _lines([o.resi for o in orders[:2]])
    assert import_file(io.BytesIO("\n".join(old).encode())).inserted == 4
    later = [f"{o.resi},departed_hub,2026-11-28T09:00:00+07:00,Hub,x" for o in orders]
    body = "\n".join(old[:2] + _lines([o.resi for o in orders[2:]]) + old[2:] + later)
    summary = import_file(io.BytesIO(body.encode()), batch=6)
    assert (summary.inserted, summary.unchanged, summary.refused) == (8, 4, 0)
    db.session.rollback()
    assert _count(db) == 12
    assert all(o.last_event is TrackingEventKind.DEPARTED_HUB for o in orders)


def test_a_failing_batch_stops_the_import_and_its_reading_thread(app, make, db, monkeypatch):
    from backoffice.domain import shipments

    order = make.order()
    db.session.commit()

    def broken(*args, **kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(shipments, "write_events", broken)
    body = "\n".join(_lines([order.resi] * 50)).encode()
    before = threading.active_count()
    with pytest.raises(RuntimeError, match="went away"):
        import_file(io.BytesIO(body), batch=2)
    assert threading.active_count() == before

"""`carebox tracking import FILE`: tracking events from the operations system's CSV.

Guarantees, before the code:
- **Streamed.** The file is read row by row through a byte-counting reader (the
  progress bar follows the bytes), batches of `batch` rows are checked and written,
  and nothing but a few batches (the one being written, AHEAD checked ones waiting,
  the one being read) and the first refusals stays in memory; a file of a million
  events takes the memory of a few batches.
- **Read while written.** A second thread reads and checks the next batches
  (`shipments.check_events`: no database) while this one writes (`write_events`).
- **One rule.** Every row goes through the checks and writes of
  `domain.shipments.record_events`, the same the API and the back office use. A
  refused row (bad resi, unknown event, bad time, wrong number of columns, unreadable
  CSV) is reported with its line number — and written to the rejects file when one is
  given — and never blocks the good ones.
- **Idempotent, at least once.** Each batch is committed on its own. An event already
  recorded (same resi, event, occurred_at) is counted unchanged, so running the same
  file again — after a crash half-way, or at the same time as another import —
  inserts nothing twice. A batch that meets a deadlock or lost connection is rolled
  back and run again (it is idempotent); the file's earlier batches stay committed.
- **Any usual CSV.** UTF-8 with or without a BOM; comma, semicolon or tab (taken from
  the first line); a header line `resi,event,occurred_at,location,note` (any order;
  location and note optional) or none (then the columns are in that order).
"""

from __future__ import annotations

import contextvars
import csv
import gc
import io
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from sqlalchemy.exc import DBAPIError, OperationalError

from .domain import shipments
from .domain.shipments import INSERTED, REFUSED, UNCHANGED, EventIn
from .extensions import db
from .models import TrackingSource
from .views.exports import neutralise

COLUMNS = ("resi", "event", "occurred_at", "location", "note")
REQUIRED = COLUMNS[:3]
DELIMITERS = (",", ";", "\t")
MAX_FIELD = 4096  # a longer cell is refused (its row), not read into memory whole
KEEP_REFUSED = 50  # refusals kept for the summary; the rejects file has them all
RETRIES = 3
AHEAD = 2  # checked batches waiting for the database at most


@dataclass
class Summary:
    inserted: int = 0
    unchanged: int = 0
    refused: int = 0
    first_refused: list[tuple[int, str, str]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rows(self) -> int:
        return self.inserted + self.unchanged + self.refused

    def refuse(self, line: int, resi: str, reason: str) -> None:
        self.refused += 1
        if len(self.first_refused) < KEEP_REFUSED:
            self.first_refused.append((line, resi, reason))


class _CountingReader(io.RawIOBase):
    """Passes bytes through and tells `on_bytes` how many went by (for the progress bar)."""

    def __init__(self, raw, on_bytes: Callable[[int], None] | None):
        self.raw, self.on_bytes = raw, on_bytes

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = self.raw.readinto(buffer)
        if n and self.on_bytes:
            self.on_bytes(n)
        return n or 0


def _delimiter(first_line: str) -> str:
    counts = {d: first_line.count(d) for d in DELIMITERS}
    best = max(counts, key=counts.get)
    return best if counts[best] else ","


def _rows(text) -> Iterator[tuple[int, list[str] | None, str]]:
    """(line number, cells or None, error) per record; a broken record does not end it."""
    first = text.readline()
    reader = csv.reader(
        _chain(first, text), delimiter=_delimiter(first), strict=False, skipinitialspace=False
    )
    while True:
        start = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield start, None, str(exc)
            continue
        yield start, cells, ""


def _chain(first: str, rest) -> Iterator[str]:
    yield first
    yield from rest


def _mapping(cells: list[str]) -> dict[str, int] | None:
    """Column positions from a header line, or None when the line is data."""
    names = [c.strip().lower().lstrip("\ufeff") for c in cells]
    if not set(REQUIRED) <= set(names):
        return None
    return {name: names.index(name) for name in COLUMNS if name in names}


def import_file(
    binary,
    *,
    batch: int = 5000,
    rejects=None,
    on_bytes: Callable[[int], None] | None = None,
) -> Summary:
    """Import the CSV of the binary stream `binary`; commits each batch; returns the tally.
    `rejects` (a text stream) receives every refused row with its line and reason.

    Two threads: one reads the file and runs the checks that need no database
    (`shipments.check_events`) on the next batch while this thread writes the current
    one (`shipments.write_events`; the GIL is free while the driver waits on the
    database). At most AHEAD checked batches wait in between: the memory stays flat."""
    csv.field_size_limit(MAX_FIELD)
    started = time.perf_counter()
    summary = Summary()
    writer = csv.writer(rejects) if rejects is not None else None
    if writer:
        writer.writerow(("line", "reason", *COLUMNS))

    def refuse(line, cells, resi, reason):
        summary.refuse(line, resi, reason)
        if writer:
            writer.writerow([line, reason, *(neutralise(c) for c in (cells or [])[:10])])

    ready: queue.Queue = queue.Queue(maxsize=AHEAD)
    stop = threading.Event()
    context = contextvars.copy_context()  # the app (and its translations) for the checks
    reader = threading.Thread(
        target=context.run,
        args=(_read, binary, batch, on_bytes, ready, stop),
        name="tracking-import-read",
        daemon=True,
    )
    # Each batch's objects live long enough to reach the collector's oldest generation,
    # and every collection of it walked all of the application's long-lived objects
    # again: 13 of the 33 µs of Python per event at 1M (CPU with the collector off,
    # same file). Frozen, they are left out of every collection until the end.
    gc.freeze()
    reader.start()
    try:
        while (work := ready.get()) is not None:
            if isinstance(work, BaseException):
                raise work
            _flush(*work, summary, refuse)
    finally:
        stop.set()  # (after an error here: the reader stops at its next batch)
        reader.join()
        gc.unfreeze()
    summary.seconds = time.perf_counter() - started
    return summary


def _read(binary, batch, on_bytes, ready: queue.Queue, stop: threading.Event) -> None:
    """The reading thread: puts (pending, checked) per batch on `ready`, then None (or the
    exception that stopped it). `pending` lists each record in file order as (line, its
    cells, why refused while reading, or "" for an event that went to the checks)."""

    def put(work) -> bool:
        while not stop.is_set():
            try:
                ready.put(work, timeout=0.1)
                return True
            except queue.Full:
                pass
        return False

    try:
        text = io.TextIOWrapper(
            io.BufferedReader(_CountingReader(binary, on_bytes), 1 << 16),
            encoding="utf-8-sig",
            errors="replace",
            newline="",
        )
        get = _getter(range(len(COLUMNS)))
        pending: list[tuple[int, list[str] | None, str]] = []
        items: list[EventIn] = []
        first_record = True
        for line, cells, error in _rows(text):
            if cells is None:
                pending.append((line, None, f"unreadable CSV: {error}"))
                continue
            if first_record:
                first_record = False
                header = _mapping(cells)
                if header is not None:
                    get = _getter(header.get(name) for name in COLUMNS)
                    continue
            if not "".join(cells).strip():
                continue  # blank line
            if len(cells) < len(REQUIRED) or len(cells) > len(COLUMNS) + 5:
                pending.append((line, cells, f"expected the columns {','.join(COLUMNS)}"))
                continue
            event = get(cells)
            pending.append((line, cells, ""))
            items.append(event)
            if len(items) >= batch:
                if not put((pending, shipments.check_events(items))):
                    return
                pending, items = [], []
        if pending and not put((pending, shipments.check_events(items))):
            return
        put(None)
    except BaseException as exc:  # noqa: BLE001 - handed to the writing thread
        put(exc)


def _getter(positions) -> Callable[[list[str]], EventIn]:
    """An EventIn from a record's cells, the columns at `positions` (None: not in the file)."""
    positions = tuple(positions)

    def get(cells: list[str]) -> EventIn:
        n = len(cells)
        return EventIn(*(cells[i] if i is not None and i < n else "" for i in positions))

    return get


def _flush(pending, checked, summary: Summary, refuse) -> None:
    results = []
    for attempt in range(RETRIES if checked.clean else 0):
        try:
            results = shipments.write_events(checked, source=TrackingSource.IMPORT)
            db.session.commit()
            break
        except (OperationalError, DBAPIError) as exc:
            db.session.rollback()
            if attempt == RETRIES - 1 or not _retryable(exc):
                raise
            time.sleep(0.05 * (attempt + 1))
    else:
        results = checked.results  # nothing to write: every event was refused
    outcomes = iter(results)
    for line, cells, why in pending:
        if why:
            refuse(line, cells, "", why)
            continue
        result = next(outcomes)
        if result.outcome == INSERTED:
            summary.inserted += 1
        elif result.outcome == UNCHANGED:
            summary.unchanged += 1
        else:
            assert result.outcome == REFUSED
            refuse(line, cells, result.resi, result.reason)


def _retryable(exc: DBAPIError) -> bool:
    """Deadlock (1213), lock wait timeout (1205), lost connection: run the batch again."""
    code = getattr(exc.orig, "args", [None])[0]
    return exc.connection_invalidated or code in (1205, 1213, 2006, 2013)

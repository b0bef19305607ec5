"""`carebox tracking import FILE`: tracking events from the operations system's CSV.

Guarantees, before the code:
- **Streamed.** The file is read row by row through a byte-counting reader (the
  progress bar follows the bytes), batches of `batch` rows are checked and written,
  and nothing but the current batch and the first refusals stays in memory; a file
  of a million events takes the memory of one batch.
- **One rule.** Every row goes through `domain.shipments.record_events`, the same
  check the API and the back office use. A refused row (bad resi, unknown event,
  bad time, wrong number of columns, unreadable CSV) is reported with its line
  number — and written to the rejects file when one is given — and never blocks the
  good ones.
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

import csv
import io
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
    `rejects` (a text stream) receives every refused row with its line and reason."""
    csv.field_size_limit(MAX_FIELD)
    started = time.perf_counter()
    summary = Summary()
    text = io.TextIOWrapper(
        io.BufferedReader(_CountingReader(binary, on_bytes), 1 << 16),
        encoding="utf-8-sig",
        errors="replace",
        newline="",
    )
    writer = csv.writer(rejects) if rejects is not None else None
    if writer:
        writer.writerow(("line", "reason", *COLUMNS))
    mapping = {name: i for i, name in enumerate(COLUMNS)}
    # (line, event or None when refused while reading, its cells, why refused); kept in
    # file order so the summary and the rejects file list the refusals by line.
    pending: list[tuple[int, EventIn | None, list[str] | None, str]] = []

    def refuse(line, cells, resi, reason):
        summary.refuse(line, resi, reason)
        if writer:
            writer.writerow([line, reason, *(neutralise(c) for c in (cells or [])[:10])])

    def refuse_later(line, cells, reason):
        pending.append((line, None, cells, reason))

    first_record = True
    for line, cells, error in _rows(text):
        if cells is None:
            refuse_later(line, None, f"unreadable CSV: {error}")
            continue
        if first_record:
            first_record = False
            header = _mapping(cells)
            if header is not None:
                mapping = header
                continue
        if not "".join(cells).strip():
            continue  # blank line
        if len(cells) < len(REQUIRED) or len(cells) > len(COLUMNS) + 5:
            refuse_later(line, cells, f"expected the columns {','.join(COLUMNS)}")
            continue
        values = {name: (cells[i] if i < len(cells) else "") for name, i in mapping.items()}
        item = EventIn(
            values["resi"],
            values["event"],
            values["occurred_at"],
            values.get("location", ""),
            values.get("note", ""),
        )
        pending.append((line, item, cells, ""))
        if len(pending) >= batch:
            _flush(pending, summary, refuse)
            pending = []
    if pending:
        _flush(pending, summary, refuse)
    summary.seconds = time.perf_counter() - started
    return summary


def _flush(pending, summary: Summary, refuse) -> None:
    items = [item for _line, item, _cells, _why in pending if item is not None]
    results = []
    for attempt in range(RETRIES if items else 0):
        try:
            results = shipments.record_events(items, source=TrackingSource.IMPORT)
            db.session.commit()
            break
        except (OperationalError, DBAPIError) as exc:
            db.session.rollback()
            if attempt == RETRIES - 1 or not _retryable(exc):
                raise
            time.sleep(0.05 * (attempt + 1))
    outcomes = iter(results)
    for line, item, cells, why in pending:
        if item is None:
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

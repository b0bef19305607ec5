"""Streaming CSV for the back office's exports, with spreadsheet formulas neutralised.

Flask-Admin's own export loads every row first (docs/architecture.md §13, trap 5); these read
rows in batches from a generator and send the CSV as it is written, so memory
stays flat whatever the size.

Exports speak the user's language like the pages do: labels, not stored codes (a
code may follow in its own column, for machines), "Ya"/"Tidak", and numbers with
the locale's decimal mark ("2,5" in Indonesian, "2.5" in English; no grouping).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal

from babel.numbers import get_decimal_symbol, get_minus_sign_symbol
from flask import Response, stream_with_context
from flask_babel import format_decimal, get_locale
from flask_babel import gettext as _

from ..extensions import db

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def keyset_batches(stmt, key, batch: int):
    """The rows of `stmt` in `key` order, in lists read `batch` at a time with `key > last`
    (no OFFSET, constant memory). `stmt` must select `key` under the name "id"."""
    last = 0  # ids start at 1
    while True:
        rows = db.session.execute(stmt.where(key > last).order_by(key).limit(batch)).all()
        if not rows:
            return
        yield rows
        last = rows[-1].id


def keyset_rows(stmt, key, batch: int):
    for rows in keyset_batches(stmt, key, batch):
        yield from rows


def neutralise(value):
    """A text cell that a spreadsheet would run as a formula gets a leading quote."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def yes_no(flag) -> str:
    return _("Yes") if flag else _("No")


def number_text(value: float | Decimal) -> str:
    """A number in the user's locale, without grouping: a Decimal keeps its places
    (money 25000,00), a float shows one or two (hours 2,5)."""
    if isinstance(value, Decimal):
        places = max(-value.as_tuple().exponent, 0)
        return format_decimal(value, format="0." + "0" * places if places else "0")
    return format_decimal(value, format="0.0#")


def hours_text():
    """`number_text` for floats rounded to two places, with the locale looked up once:
    Babel's formatting costs ~20 µs a cell, a million-row export has two such cells a row."""
    locale = get_locale()
    point, minus = get_decimal_symbol(locale), get_minus_sign_symbol(locale)

    def text(value: float) -> str:
        cell = f"{value:.2f}"
        if cell[-1] == "0":  # "0.0#": one place at least, two at most
            cell = cell[:-1]
        if point != ".":
            cell = cell.replace(".", point)
        return minus + cell[1:] if cell[0] == "-" and minus != "-" else cell

    return text


def csv_cell(value):
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, float | Decimal):
        return number_text(value)
    return neutralise(value)


def csv_chunks(headers: list[str], rows: Iterable, batch: int, progress=None, cells=csv_cell):
    """The CSV text, `batch` rows a chunk (see `csv_batches`)."""
    return csv_batches(headers, batched(rows, batch), progress, cells)


def csv_batches(headers: list[str], batches: Iterable[list], progress=None, cells=csv_cell):
    """The CSV text, a chunk per list of rows; every cell goes through `cells` (`None` when
    the rows already hold neutralised cells: the csv module writes None as "" and a
    datetime as its isoformat, as `csv_cell` would). `progress(rows_so_far)` is called
    after each chunk (export jobs renew their lease)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    buffer.write("\ufeff")  # spreadsheets then read the file as UTF-8
    writer.writerow(headers)
    done = 0
    for chunk in batches:
        writer.writerows(chunk if cells is None else ([cells(v) for v in r] for r in chunk))
        done += len(chunk)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        if progress:
            progress(done)
    yield buffer.getvalue()
    if progress:
        progress(done)


def batched(rows: Iterable, size: int):
    """Lists of up to `size` rows (itertools.batched arrives with Python 3.12)."""
    chunk = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def stream_csv(
    filename: str, headers: list[str], rows: Iterable, batch: int, cells=csv_cell
) -> Response:
    """A CSV download written `batch` rows at a time (chunked: a cut stream is seen as cut).
    Only for what a request can finish well inside a worker's timeout; larger exports are
    jobs (domain/export_jobs.py)."""
    return Response(
        stream_with_context(csv_chunks(headers, rows, batch, cells=cells)),
        mimetype="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "private, no-store",
        },
    )

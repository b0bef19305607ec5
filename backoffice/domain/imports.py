"""Reading ops' data files (FAQ, catalogue): CSV from a spreadsheet, or YAML.

CSV: a header row is required; `,`, `;` and tab separate (spreadsheets export
all three), UTF-8 with or without a BOM. YAML: a list of mappings, or a mapping
whose `list_key` holds the list. Every row remembers its line, and every check
reports "line N: what is wrong", so an import can list every problem at once and
write nothing.
"""

from __future__ import annotations

import csv
import enum
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

import yaml

from ..extensions import db

TRUE = {"1", "true", "yes", "y", "ya", "on"}
FALSE = {"0", "false", "no", "n", "tidak", "off"}


class ImportFileError(Exception):
    """The file cannot be imported; `problems` lists (line, message), line 0 for the file."""

    def __init__(self, problems: list[tuple[int, str]]):
        self.problems = problems
        super().__init__("; ".join(f"line {n}: {m}" for n, m in problems))


@dataclass
class ImportResult:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    kept: int = 0  # existing rows left as they are (`only_new`: edits made in the back office)

    def __str__(self) -> str:
        kept = f", kept {self.kept}" if self.kept else ""
        return f"inserted {self.inserted}, updated {self.updated}, unchanged {self.unchanged}{kept}"


class _LineLoader(yaml.SafeLoader):
    """Remembers the line each mapping starts on, for error messages."""


def _construct_mapping(loader, node, deep=False):
    mapping = yaml.SafeLoader.construct_mapping(loader, node, deep=deep)
    mapping["__line__"] = node.start_mark.line + 1
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def read_rows(path: Path, *, required: tuple[str, ...], list_key: str) -> tuple[dict, list]:
    """(the YAML mapping around the list, or {}; the rows, each with a `__line__`)."""
    text = path.read_bytes().decode("utf-8-sig")
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            data = yaml.load(text, Loader=_LineLoader)  # noqa: S506 (a SafeLoader subclass)
        except yaml.YAMLError as exc:
            line = getattr(getattr(exc, "problem_mark", None), "line", -1) + 1
            raise ImportFileError([(line, f"not valid YAML: {exc}")]) from exc
        if isinstance(data, list):
            return {}, data
        if not isinstance(data, dict) or not isinstance(data.get(list_key), list):
            raise ImportFileError([(1, f"expected a list, or a mapping with `{list_key}:`")])
        return data, data[list_key]
    if path.suffix.lower() != ".csv":
        raise ImportFileError([(0, "the file must end in .csv, .yaml or .yml")])
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.DictReader(io.StringIO(text), dialect=dialect)
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    missing = [c for c in required if c not in header]
    if missing:
        raise ImportFileError([(1, "missing column(s): " + ", ".join(missing))])
    reader.fieldnames = header
    rows = []
    for row in reader:
        row = {k: v for k, v in row.items() if k is not None}
        row["__line__"] = reader.line_num
        rows.append(row)
    return {}, rows


class Row:
    """One row's fields, read with checks that note their problems instead of raising."""

    def __init__(self, data: dict, problems: list[tuple[int, str]]):
        self.data = data
        self.line = data.get("__line__", 0)
        self.problems = problems

    def problem(self, message: str) -> None:
        self.problems.append((self.line, message))

    def _raw(self, name: str) -> str:
        value = self.data.get(name)
        return "" if value is None else str(value).replace("\x00", "").strip()

    def text(self, name: str, *, required: bool = False, limit: int | None = None) -> str:
        value = self._raw(name)
        if required and not value:
            self.problem(f"`{name}` is empty")
        if limit is not None and len(value) > limit:
            self.problem(f"`{name}` is longer than {limit} characters")
        return value

    def boolean(self, name: str, default: bool) -> bool:
        value = self.data.get(name)
        if isinstance(value, bool):
            return value
        text = self._raw(name).lower()
        if text == "":
            return default
        if text in TRUE:
            return True
        if text in FALSE:
            return False
        self.problem(f"`{name}` must be true or false, not {value!r}")
        return default

    def integer(self, name: str, default: int) -> int:
        text = self._raw(name)
        if text == "":
            return default
        try:
            return int(text)
        except ValueError:
            self.problem(f"`{name}` must be a whole number, not {text!r}")
            return default

    def decimal(self, name: str, default: Decimal, *, below: Decimal) -> Decimal:
        """A non-negative amount with at most two decimals, below `below`.

        Dots and commas are both read as the decimal separator ("12,5" from an
        Indonesian spreadsheet); thousands separators are refused, not guessed.
        """
        text = self._raw(name)
        if text == "":
            return default
        try:
            value = Decimal(text.replace(",", "."))
        except InvalidOperation:
            value = None
        if value is None or not value.is_finite():
            self.problem(f"`{name}` must be a number, not {text!r}")
            return default
        if value < 0 or value >= below:
            self.problem(f"`{name}` must be at least 0 and below {below}, not {text}")
            return default
        if value != value.quantize(Decimal("0.01")):
            self.problem(f"`{name}` has more than two decimals: {text}")
            return default
        return value.quantize(Decimal("0.01"))

    def choice(self, name: str, kind: type[enum.Enum], default: enum.Enum | None = None):
        text = self._raw(name).lower()
        if text == "" and default is not None:
            return default
        try:
            return kind(text)
        except ValueError:
            known = ", ".join(m.value for m in kind)
            self.problem(f"`{name}` must be one of {known}, not {text!r}")
            return default


def keyed_rows(
    rows: list, problems: list, *, key: str, pattern: re.Pattern, rule: str, upper: bool = False
) -> Iterator[tuple[str, Row]]:
    """(key, row) of every mapping whose `key` matches `pattern` and was not seen
    before; anything else becomes a problem and is skipped."""
    seen: dict[str, int] = {}
    for data in rows:
        if not isinstance(data, dict):
            problems.append((0, "every row must be a mapping"))
            continue
        row = Row(data, problems)
        value = row.text(key).upper() if upper else row.text(key)
        if not pattern.match(value):
            row.problem(f"`{key}` {value!r} must be {rule}")
        elif value in seen:
            row.problem(f"{key} {value!r} repeats line {seen[value]}")
        else:
            seen[value] = row.line
            yield value, row


def upsert(
    result: ImportResult, current, values: dict, new: Callable[[], object], only_new: bool
) -> None:
    """Apply one checked row: add `new()`, keep `current` (`only_new`), update it, or
    count it unchanged."""
    if current is None:
        db.session.add(new())
        result.inserted += 1
    elif only_new:
        result.kept += 1
    elif any(getattr(current, name) != value for name, value in values.items()):
        for name, value in values.items():
            setattr(current, name, value)
        result.updated += 1
    else:
        result.unchanged += 1

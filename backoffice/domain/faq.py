"""FAQ import (upsert entries from CSV or YAML, all or nothing) and "Was this helpful?".

CSV columns: key, category, question_id, answer_id, question_en, answer_en,
published, position (a header row is required; `;` and tab also work, as
spreadsheets export them). YAML: the shape of `seed/faq.yaml`
(`categories:` and `entries:`), or a bare list of entries.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from sqlalchemy import select, update

from ..extensions import db
from ..models import FaqCategory, FaqEntry, FaqVote, User


def vote(entry: FaqEntry, helpful: bool, user: User | None = None) -> bool:
    """Count one answer to "Was this helpful?"; False if `user` had already answered.

    A signed-in user answers once per entry (a FaqVote row, unique per user and
    entry: two racing clicks make the second flush raise IntegrityError, and the
    caller rolls back). Anonymous answers are the caller's to deduplicate. The
    counter moves by one atomic UPDATE, and the entry's `updated_at` stays the
    time its content changed. Flushes, never commits.
    """
    if user is not None:
        if entry.id in voted_entries(user):
            return False
        db.session.add(FaqVote(user_id=user.id, entry_id=entry.id, helpful=helpful))
        db.session.flush()
    column = FaqEntry.helpful_yes if helpful else FaqEntry.helpful_no
    db.session.execute(
        update(FaqEntry)
        .where(FaqEntry.id == entry.id)
        .values({column: column + 1, FaqEntry.updated_at: FaqEntry.updated_at})
    )
    return True


def voted_entries(user: User | None) -> set[int]:
    """The ids of the entries `user` has answered "Was this helpful?" for."""
    if user is None:
        return set()
    return set(db.session.scalars(select(FaqVote.entry_id).where(FaqVote.user_id == user.id)))


KEY_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,79}$")
CSV_COLUMNS = (
    "key",
    "category",
    "question_id",
    "answer_id",
    "question_en",
    "answer_en",
    "published",
    "position",
)
ENTRY_FIELDS = (
    "category_id",
    "question_id",
    "answer_id",
    "question_en",
    "answer_en",
    "published",
    "position",
)
TRUE = {"1", "true", "yes", "y", "ya", "on"}
FALSE = {"0", "false", "no", "n", "tidak", "off"}
LIMITS = {"question_id": 300, "question_en": 300, "answer_id": 10_000, "answer_en": 10_000}


class FaqImportError(Exception):
    def __init__(self, problems: list[tuple[int, str]]):
        self.problems = problems
        super().__init__("; ".join(f"line {n}: {m}" for n, m in problems))


@dataclass
class ImportResult:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    categories_created: list[str] = field(default_factory=list)


class _LineLoader(yaml.SafeLoader):
    """Remembers the line each mapping starts on, for error messages."""


def _construct_mapping(loader, node, deep=False):
    mapping = yaml.SafeLoader.construct_mapping(loader, node, deep=deep)
    mapping["__line__"] = node.start_mark.line + 1
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _read_rows(path: Path) -> tuple[list[dict], list[dict]]:
    """(categories, entries) as dicts with a `__line__`."""
    text = path.read_bytes().decode("utf-8-sig")
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            data = yaml.load(text, Loader=_LineLoader)  # noqa: S506 (a SafeLoader subclass)
        except yaml.YAMLError as exc:
            line = getattr(getattr(exc, "problem_mark", None), "line", -1) + 1
            raise FaqImportError([(line, f"not valid YAML: {exc}")]) from exc
        if isinstance(data, list):
            return [], data
        if not isinstance(data, dict) or not isinstance(data.get("entries"), list):
            raise FaqImportError([(1, "expected a list of entries or a mapping with `entries:`")])
        return list(data.get("categories") or []), data["entries"]
    if path.suffix.lower() != ".csv":
        raise FaqImportError([(0, "the file must end in .csv, .yaml or .yml")])
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.DictReader(io.StringIO(text), dialect=dialect)
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    missing = [c for c in ("key", "category", "question_id", "answer_id") if c not in header]
    if missing:
        raise FaqImportError([(1, "missing column(s): " + ", ".join(missing))])
    reader.fieldnames = header
    rows = []
    for row in reader:
        row = {k: v for k, v in row.items() if k is not None}
        row["__line__"] = reader.line_num
        rows.append(row)
    return [], rows


def _text(row: dict, name: str, required: bool, problems: list, line: int) -> str:
    value = row.get(name)
    value = "" if value is None else str(value).replace("\x00", "").strip()
    if required and not value:
        problems.append((line, f"`{name}` is empty"))
    if name in LIMITS and len(value) > LIMITS[name]:
        problems.append((line, f"`{name}` is longer than {LIMITS[name]} characters"))
    return value


def _bool(value, problems: list, line: int) -> bool:
    if isinstance(value, bool):
        return value
    text = "" if value is None else str(value).strip().lower()
    if text == "" or text in TRUE:  # absent means published
        return True
    if text in FALSE:
        return False
    problems.append((line, f"`published` must be true or false, not {value!r}"))
    return True


def _int(value, problems: list, line: int) -> int:
    if value is None or str(value).strip() == "":
        return 100
    try:
        return int(str(value).strip())
    except ValueError:
        problems.append((line, f"`position` must be a whole number, not {value!r}"))
        return 100


def import_faq(path: str | Path) -> ImportResult:
    """Upsert FAQ entries by `key`. Any bad row: nothing is written, every problem is listed."""
    path = Path(path)
    categories_in, rows = _read_rows(path)
    problems: list[tuple[int, str]] = []
    categories = {c.code: c for c in db.session.scalars(select(FaqCategory))}
    result = ImportResult()
    for cat in categories_in:
        line = cat.get("__line__", 0)
        code = str(cat.get("code") or "").strip()
        if not KEY_RE.match(code) or not cat.get("name_id"):
            problems.append((line, "a category needs a `code` (a-z, 0-9, _) and a `name_id`"))
            continue
        if code not in categories:
            categories[code] = FaqCategory(code=code, name_id="", name_en="")
            result.categories_created.append(code)
        c = categories[code]
        c.name_id = str(cat["name_id"]).strip()[:120]
        c.name_en = str(cat.get("name_en") or cat["name_id"]).strip()[:120]
        c.position = _int(cat.get("position"), problems, line)

    parsed: dict[str, tuple[int, dict]] = {}
    for row in rows:
        if not isinstance(row, dict):
            problems.append((0, "every entry must be a mapping"))
            continue
        line = row.get("__line__", 0)
        key = str(row.get("key") or "").strip()
        if not KEY_RE.match(key):
            problems.append((line, f"`key` {key!r} must be 1-80 of a-z, 0-9, '-', '_', '.'"))
            continue
        if key in parsed:
            problems.append((line, f"key {key!r} repeats line {parsed[key][0]}"))
            continue
        cat_code = str(row.get("category") or "").strip()
        if cat_code not in categories:
            problems.append(
                (
                    line,
                    f"unknown category {cat_code!r} (known: " + ", ".join(sorted(categories)) + ")",
                )
            )
        values = {
            "question_id": _text(row, "question_id", True, problems, line),
            "answer_id": _text(row, "answer_id", True, problems, line),
            "question_en": _text(row, "question_en", False, problems, line),
            "answer_en": _text(row, "answer_en", False, problems, line),
            "published": _bool(row.get("published"), problems, line),
            "position": _int(row.get("position"), problems, line),
        }
        parsed[key] = (line, {**values, "category": cat_code})
    if problems:
        db.session.rollback()
        raise FaqImportError(sorted(problems))

    existing = (
        {
            e.key: e
            for e in db.session.scalars(select(FaqEntry).where(FaqEntry.key.in_(list(parsed))))
        }
        if parsed
        else {}
    )
    for cat in categories.values():
        db.session.add(cat)
    db.session.flush()
    for key, (_line, values) in parsed.items():
        values = dict(values)
        values["category_id"] = categories[values.pop("category")].id
        entry = existing.get(key)
        if entry is None:
            db.session.add(FaqEntry(key=key, **values))
            result.inserted += 1
        elif any(getattr(entry, f) != values[f] for f in ENTRY_FIELDS):
            for f in ENTRY_FIELDS:
                setattr(entry, f, values[f])
            result.updated += 1
        else:
            result.unchanged += 1
    db.session.flush()
    return result

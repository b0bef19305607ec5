"""FAQ import (upsert entries from CSV or YAML, all or nothing) and "Was this helpful?".

CSV columns: key, category, question_id, answer_id, question_en, answer_en,
published, position (a header row is required; `;` and tab also work, as
spreadsheets export them). YAML: the shape of `seed/faq.yaml`
(`categories:` and `entries:`), or a bare list of entries.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select, update

from ..extensions import db
from ..models import FaqCategory, FaqEntry, FaqVote, User
from .imports import ImportFileError, ImportResult, Row, keyed_rows, read_rows, upsert


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
KEY_RULE = "1-80 of a-z, 0-9, '-', '_', '.'"
REQUIRED_COLUMNS = ("key", "category", "question_id", "answer_id")


@dataclass
class FaqImportResult(ImportResult):
    categories_created: list[str] = field(default_factory=list)


def import_faq(path: str | Path, *, only_new: bool = False) -> FaqImportResult:
    """Upsert FAQ entries by `key` (with `only_new`, add missing ones and keep the rest
    as the back office left them). Any bad row: nothing is written, every problem is
    listed. Flushes, never commits."""
    path = Path(path)
    document, rows = read_rows(path, required=REQUIRED_COLUMNS, list_key="entries")
    problems: list[tuple[int, str]] = []
    categories = {c.code: c for c in db.session.scalars(select(FaqCategory))}
    result = FaqImportResult()
    for cat in document.get("categories") or []:
        if not isinstance(cat, dict):
            problems.append((0, "every category must be a mapping"))
            continue
        row = Row(cat, problems)
        code = row.text("code")
        if not KEY_RE.match(code) or not row.text("name_id"):
            row.problem("a category needs a `code` (a-z, 0-9, _) and a `name_id`")
            continue
        if code in categories and only_new:
            continue
        if code not in categories:
            categories[code] = FaqCategory(code=code, name_id="", name_en="")
            result.categories_created.append(code)
        c = categories[code]
        c.name_id = row.text("name_id")[:120]
        c.name_en = (row.text("name_en") or c.name_id)[:120]
        c.position = row.integer("position", 100)

    parsed: dict[str, dict] = {}
    for key, row in keyed_rows(rows, problems, key="key", pattern=KEY_RE, rule=KEY_RULE):
        cat_code = row.text("category")
        if cat_code not in categories:
            known = ", ".join(sorted(categories))
            row.problem(f"unknown category {cat_code!r} (known: {known})")
        parsed[key] = {
            "category": cat_code,
            "question_id": row.text("question_id", required=True, limit=300),
            "answer_id": row.text("answer_id", required=True, limit=10_000),
            "question_en": row.text("question_en", limit=300),
            "answer_en": row.text("answer_en", limit=10_000),
            "published": row.boolean("published", True),
            "position": row.integer("position", 100),
        }
    if problems:
        db.session.rollback()
        raise ImportFileError(sorted(problems))

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
    for key, values in parsed.items():
        values = dict(values)
        values["category_id"] = categories[values.pop("category")].id
        upsert(
            result,
            existing.get(key),
            values,
            lambda k=key, v=values: FaqEntry(key=k, **v),
            only_new,
        )
    db.session.flush()
    return result

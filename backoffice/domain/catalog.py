"""The catalogue's rules, and loading it from ops' files (CSV or YAML), all or nothing.

Columns (CSV header, or YAML keys in the shape of `seed/products.yaml`): code,
kind (service or product), name_id, name_en, description_id, description_en,
base_price, price_per_kg, min_weight_kg, max_weight_kg, eta_days, badge (none,
new or improved), badge_note_id, badge_note_en, position, active. Only code,
kind and name_id are required; a column the file leaves out keeps each existing
product's value (a sheet of tariffs does not empty the descriptions). Prices
are in IDR; `12,5` and `12.5` both mean twelve and a half.
"""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

from sqlalchemy import select

from ..extensions import db
from ..models import Badge, Product, ProductKind
from .imports import ImportFileError, ImportResult, Row, keyed_rows, read_rows, upsert

CODE_RE = re.compile(r"^[A-Z0-9_]{2,20}$")
CODE_RULE = "2-20 capital letters, digits or _"
REQUIRED_COLUMNS = ("code", "kind", "name_id")
PRICE_BELOW = Decimal("10000000000")  # Numeric(12, 2)
WEIGHT_BELOW = Decimal("1000000")  # Numeric(8, 2)
# How each column is read; a column the file leaves out keeps an existing product's value.
READERS = {
    "kind": lambda row: row.choice("kind", ProductKind),
    "name_id": lambda row: row.text("name_id", required=True, limit=120),
    "name_en": lambda row: row.text("name_en", limit=120),
    "description_id": lambda row: row.text("description_id", limit=10_000),
    "description_en": lambda row: row.text("description_en", limit=10_000),
    "base_price": lambda row: row.decimal("base_price", Decimal("0.00"), below=PRICE_BELOW),
    "price_per_kg": lambda row: row.decimal("price_per_kg", Decimal("0.00"), below=PRICE_BELOW),
    "min_weight_kg": lambda row: row.decimal("min_weight_kg", Decimal("1.00"), below=WEIGHT_BELOW),
    "max_weight_kg": lambda row: row.decimal("max_weight_kg", Decimal("30.00"), below=WEIGHT_BELOW),
    "eta_days": lambda row: row.text("eta_days", limit=20),
    "badge": lambda row: row.choice("badge", Badge, Badge.NONE),
    "badge_note_id": lambda row: row.text("badge_note_id", limit=255),
    "badge_note_en": lambda row: row.text("badge_note_en", limit=255),
    "position": lambda row: row.integer("position", 100),
    "active": lambda row: row.boolean("active", True),
}


def _values(row: Row, current: Product | None) -> dict:
    values = {
        name: read(row) if current is None or name in row.data else getattr(current, name)
        for name, read in READERS.items()
    }
    values["name_en"] = values["name_en"] or values["name_id"]
    if values["max_weight_kg"] < values["min_weight_kg"]:
        row.problem("`max_weight_kg` is below `min_weight_kg`")
    return values


def import_products(path: str | Path, *, only_new: bool = False) -> ImportResult:
    """Upsert products and services by `code` (with `only_new`, add missing ones and
    keep the rest as the back office left them). Any bad row: nothing is written,
    every problem is listed. A product missing from the file is left alone (orders
    refer to it; deactivate it with `active: false`). Flushes, never commits."""
    _document, rows = read_rows(Path(path), required=REQUIRED_COLUMNS, list_key="products")
    existing = {p.code: p for p in db.session.scalars(select(Product))}
    problems: list[tuple[int, str]] = []
    parsed = {
        code: _values(row, existing.get(code))
        for code, row in keyed_rows(
            rows, problems, key="code", pattern=CODE_RE, rule=CODE_RULE, upper=True
        )
    }
    if problems:
        db.session.rollback()
        raise ImportFileError(sorted(problems))
    result = ImportResult()
    for code, values in parsed.items():
        current = existing.get(code)
        upsert(result, current, values, lambda c=code, v=values: Product(code=c, **v), only_new)
    db.session.flush()
    return result

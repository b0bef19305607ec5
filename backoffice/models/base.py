"""Column helpers shared by every model."""

from datetime import UTC, datetime

from sqlalchemy import Enum as SAEnum

MAX_ID = 2**63 - 1  # no row has a larger id (and SQLite cannot even compare one)


def utcnow() -> datetime:
    """Naive UTC: MySQL DATETIME has no zone, so every timestamp is stored as UTC."""
    return datetime.now(UTC).replace(tzinfo=None)


def enum_column(enum_cls, name: str) -> SAEnum:
    """A portable enum: VARCHAR plus a CHECK constraint on every database.

    The values (not member names) are stored, so the strings in the database
    are the ones the URLs, CSV exports and seed files use.
    """
    return SAEnum(
        enum_cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=max(len(m.value) for m in enum_cls),
        values_callable=lambda e: [m.value for m in e],
        validate_strings=True,
    )

"""Bearer tokens of the JSON API (domain/api_tokens.py issues and checks them)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .base import utcnow


class ApiToken(db.Model):
    """One named token. Only the SHA-256 of the secret is stored: the secret is printed
    once, when it is created, and a database dump cannot be used to call the API."""

    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)  # hex SHA-256
    scopes: Mapped[str] = mapped_column(String(255))  # space-separated, e.g. tracking:write
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]

    @property
    def scope_set(self) -> frozenset[str]:
        return frozenset(self.scopes.split())

    def __str__(self) -> str:
        return self.name

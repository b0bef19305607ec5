"""Bearer tokens of the JSON API: issued by `carebox api-token create`, checked per request.

Guarantees:
- A token is `cbx_` and 43 characters of `secrets.token_urlsafe(32)` (256 random bits).
  Only its SHA-256 is stored; the secret is returned once, by `create`, and never again.
  A high-entropy random secret needs no slow password hash: nobody can guess one, and a
  fast hash keeps the check to one indexed lookup per request.
- `authenticate` finds the token by its hash and compares the hashes again in constant
  time (`hmac.compare_digest`); a revoked token is refused like an unknown one.
- A token carries scopes (`tracking:write`); `has_scope` is the one question the API asks.
- Names are unique, revoked tokens' too (the row stays, for the record): revoking is
  final, and a replacement gets a new name.

Nothing here reads the request or commits.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from sqlalchemy import select

from ..extensions import db
from ..models import ApiToken
from ..models.base import utcnow
from . import DomainError

TRACKING_WRITE = "tracking:write"
SCOPES = frozenset({TRACKING_WRITE})
PREFIX = "cbx_"
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")
MAX_TOKEN = 200  # longer Authorization values are refused before hashing


def token_hash(secret: str) -> str:
    """The hex SHA-256 of a token as stored."""
    return hashlib.sha256(secret.encode("utf-8", "replace")).hexdigest()


def create(name: str, scopes: list[str] | tuple[str, ...]) -> tuple[ApiToken, str]:
    """A new token named `name` with `scopes`; returns the row and the secret (shown once).
    Raises DomainError for a bad or taken name or an unknown scope. Flushes."""
    name = (name or "").strip()
    if not NAME_RE.match(name):
        raise DomainError(
            "A token name is 1 to 80 letters, digits, dots, dashes or underscores, "
            f"starting with a letter or digit, not {name!r}."
        )
    wanted = sorted(set(scopes))
    unknown = [s for s in wanted if s not in SCOPES]
    if not wanted or unknown:
        raise DomainError(
            f"Unknown scope {', '.join(unknown) or '(none)'}: one of {', '.join(sorted(SCOPES))}."
        )
    if db.session.scalar(select(ApiToken.id).where(ApiToken.name == name)) is not None:
        raise DomainError(f"A token named {name!r} exists already (revoked ones keep their name).")
    secret = PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(name=name, token_hash=token_hash(secret), scopes=" ".join(wanted))
    db.session.add(token)
    db.session.flush()
    return token, secret


def revoke(name: str) -> ApiToken:
    """Revoke the token `name` from now on (idempotent). Raises DomainError if none. Flushes."""
    token = db.session.scalar(select(ApiToken).where(ApiToken.name == (name or "").strip()))
    if token is None:
        raise DomainError(f"No token is named {name!r}.")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        db.session.flush()
    return token


def all_tokens() -> list[ApiToken]:
    """Every token, revoked ones too, by name."""
    return list(db.session.scalars(select(ApiToken).order_by(ApiToken.name)))


def bearer(header: str | None) -> str | None:
    """The token of an `Authorization: Bearer …` header, or None."""
    scheme, _, value = (header or "").strip().partition(" ")
    value = value.strip()
    if scheme.lower() != "bearer" or not value or len(value) > MAX_TOKEN:
        return None
    return value


def authenticate(secret: str | None) -> ApiToken | None:
    """The live (not revoked) token whose secret this is, or None."""
    if not secret:
        return None
    digest = token_hash(secret)
    token = db.session.scalar(select(ApiToken).where(ApiToken.token_hash == digest))
    if token is None or not hmac.compare_digest(token.token_hash, digest):
        return None
    return token if token.revoked_at is None else None


def has_scope(token: ApiToken | None, scope: str) -> bool:
    """Whether `token` may do what `scope` allows."""
    return token is not None and scope in token.scope_set

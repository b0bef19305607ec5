"""Absolute links and signed tokens for emails (read outside any request)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer


def absolute_url(path: str) -> str:
    """`CAREBOX_BASE_URL` + `path`: emails are rendered by workers with no request."""
    return current_app.config["CAREBOX_BASE_URL"].rstrip("/") + "/" + path.lstrip("/")


def _serializer(purpose: str) -> URLSafeTimedSerializer:
    # One salt per purpose: a rating token can never be replayed as an unsubscribe token.
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=f"carebox.{purpose}")


def sign(purpose: str, payload: dict[str, Any]) -> str:
    """A URL-safe, timestamped token carrying `payload`, signed with SECRET_KEY."""
    return _serializer(purpose).dumps(payload)


class TokenState(enum.StrEnum):
    VALID = "valid"
    EXPIRED = "expired"
    INVALID = "invalid"


@dataclass(frozen=True)
class Token:
    state: TokenState
    payload: dict[str, Any]


def verify(purpose: str, token: str, max_age_days: float) -> Token:
    """Check `token`; the payload is only returned when the token is VALID."""
    try:
        payload = _serializer(purpose).loads(token, max_age=int(max_age_days * 86400))
    except SignatureExpired:
        return Token(TokenState.EXPIRED, {})
    except BadSignature:
        return Token(TokenState.INVALID, {})
    if not isinstance(payload, dict):
        return Token(TokenState.INVALID, {})
    return Token(TokenState.VALID, payload)

"""The rules of carebox. Nothing here reads the request or commits."""

from flask_babel import gettext as _


class DomainError(Exception):
    """A rule refused the change; the message is safe to show to the user."""


class PermissionDenied(DomainError):
    pass


class ConflictError(DomainError):
    """Someone else changed the object since the user loaded it."""


def clean_text(text: str | None, limit: int, field: str) -> str:
    """User text as stored: NUL bytes dropped, trimmed, required and at most `limit` long."""
    text = (text or "").replace("\x00", "").strip()
    if not text:
        raise DomainError(_("%(field)s must not be empty.", field=field))
    if len(text) > limit:
        raise DomainError(
            _("%(field)s is too long (at most %(n)d characters).", field=field, n=limit)
        )
    return text

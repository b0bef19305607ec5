"""The password policy: zxcvbn's guessability score, stricter for staff (issue 9 item 6).

Flask-Security's own zxcvbn check has one minimum score for everybody and answers in
English only (zxcvbn's feedback is not translatable there), so carebox gives Flask-Security
a PasswordUtil of its own: the same length check first, then zxcvbn with the account's
name and email as context, then a message in the user's language saying why.

- customers: at least SECURITY_PASSWORD_LENGTH_MIN (8) characters and a zxcvbn score of
  CAREBOX_PASSWORD_SCORE_CUSTOMER (2: not a common password, no "aaaaaaaa", no "12345678");
- staff: at least CAREBOX_PASSWORD_LENGTH_STAFF (12) characters and a score of
  CAREBOX_PASSWORD_SCORE_STAFF (3): their accounts open every customer's data.
"""

from __future__ import annotations

import re
from typing import Any

from flask import current_app
from flask_babel import gettext as _
from flask_security import PasswordUtil

from .domain import permissions as perm


def _why(feedback: dict) -> str:
    warning = (feedback or {}).get("warning") or ""
    if "common password" in warning or "commonly used" in warning:
        return _("it is one of the most common passwords")
    if "Repeats" in warning:
        return _("it repeats the same characters")
    if "Sequences" in warning or "keyboard" in warning.lower():
        return _("it is a sequence such as abcd, 1234 or qwerty")
    if "Dates" in warning or "years" in warning.lower():
        return _("it is mostly a date or a year")
    if "Names" in warning or "name" in warning.lower():
        return _("it is mostly a name or a word from your account")
    return _("it is too easy to guess")


def password_problems(password: str, *, staff: bool, context: list[str] = ()) -> list[str]:
    """Why `password` is refused for a staff or customer account (empty: accepted)."""
    config = current_app.config
    length = config["CAREBOX_PASSWORD_LENGTH_STAFF"] if staff else 0
    if staff and len(password) < length:
        return [_("Staff passwords need at least %(n)d characters.", n=length)]
    score = config["CAREBOX_PASSWORD_SCORE_STAFF" if staff else "CAREBOX_PASSWORD_SCORE_CUSTOMER"]
    # The account's words, whole and one by one ("Budi Santoso" → budisantoso, budi, santoso).
    words = set()
    for item in context:
        parts = re.split(r"[\s@._+-]+", item.lower())
        words.update(p for p in parts if len(p) > 2)
        words.add("".join(parts))
    # Imported here, not at start-up: zxcvbn's dictionaries are 13 MB of every worker's
    # memory, and only a password being set needs them (issue 16 item 9).
    import zxcvbn  # noqa: PLC0415

    result = zxcvbn.zxcvbn(password[:100], user_inputs=sorted(w for w in words if w))
    if result["score"] >= score:
        return []
    return [
        _(
            "This password is refused because %(why)s. Use a longer phrase of several "
            "unrelated words.",
            why=_why(result.get("feedback")),
        )
    ]


class CareboxPasswordUtil(PasswordUtil):
    """Flask-Security's PasswordUtil with carebox's policy (see the module docstring)."""

    def validate(self, password: str, is_register: bool, **kwargs: Any):
        bad, normalized = super().validate(password, is_register, **kwargs)
        if bad:
            return bad, normalized
        user = kwargs.get("user")
        staff = bool(user is not None and not is_register and perm.is_staff(user))
        if is_register:
            context = [str(v) for v in kwargs.values() if isinstance(v, str)]
        elif user is not None:
            context = [user.email or "", user.name or ""]
        else:
            context = []
        return password_problems(normalized, staff=staff, context=context) or None, normalized

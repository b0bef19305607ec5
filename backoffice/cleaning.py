"""Text as it enters from any form (portal, registration, back office): NFC, and no NUL,
control or bidi-override characters, so nothing raw reaches names, email headers or
exports (issue 9 item 7). Newlines and tabs stay in multi-line text."""

from __future__ import annotations

import re
import unicodedata

# C0 and C1 controls but \t \n \r, DEL, BOM and non-characters, and the bidi embeddings,
# overrides and isolates (U+202A–U+202E, U+2066–U+2069) that make "txt.exe" look like "exe.txt".
_CONTROL = re.compile(
    r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ufeff\ufffe\uffff]"
)
_SPACES = re.compile(r"\s+")


def clean_text(value):
    """Multi-line text: NFC, no control bytes (newlines and tabs stay), trimmed. What a
    field already parsed into something else (a clock field's minutes) is left alone."""
    if not isinstance(value, str):
        return value
    value = unicodedata.normalize("NFC", value).replace("\r\n", "\n")
    return _CONTROL.sub("", value).strip()


def one_line(value):
    """Single-line text: cleaned, every run of whitespace becomes one space."""
    value = clean_text(value)
    return _SPACES.sub(" ", value) if isinstance(value, str) and value else value

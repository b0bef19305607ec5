"""Timeline notes written by the code itself, stored neutral and translated when shown.

A TicketEvent's `note` holds either what a person typed (shown as it is) or, for the
notes the code writes (a merge, an auto-finish), a machine form: a marker, a kind and
its parameters as JSON. `text()` turns the machine form into the viewer's language at
display time, so an English colleague does not read the Indonesian a worker or a
colleague happened to write it in. Rows written before this (free text) have no
marker and are shown unchanged.

The marker is a control character (U+001F): `typed()` removes it from what a person
typed, so a typed note can never pass for a machine one.
"""

from __future__ import annotations

import json

from flask_babel import gettext as _

MARK = "\x1f"
LIMIT = 500  # TicketEvent.note's length
TEXT_LIMIT = 400  # a typed note carried inside a machine note (the forms allow 400)

MERGED_FROM = "merged_from"  # the survivor: another ticket was merged into it
MERGED_INTO = "merged_into"  # the duplicate: it was merged into another ticket
AUTO_FINISHED = "auto_finished"  # finished by the worker: the customer did not answer


def typed(note: str | None) -> str:
    """A note a person typed, made safe to store: it cannot start a machine note."""
    return (note or "").replace(MARK, "")


def encode(kind: str, **params) -> str:
    """The stored, language-neutral form of a code-written note."""
    if "text" in params:  # the typed part, when there is one
        params["text"] = typed(params["text"])[:TEXT_LIMIT]
        if not params["text"]:
            del params["text"]
    coded = MARK + kind + json.dumps(params, ensure_ascii=False, separators=(",", ":"))
    return coded if len(coded) <= LIMIT else coded[: len(MARK + kind)] + "{}"


def decode(note: str | None) -> tuple[str, dict] | None:
    """(kind, params) of a machine note; None for a typed or an old free-text note."""
    if not note or not note.startswith(MARK):
        return None
    body = note[len(MARK) :]
    at = body.find("{")
    if at <= 0:
        return None
    try:
        params = json.loads(body[at:])
    except ValueError:
        return None
    return (body[:at], params) if isinstance(params, dict) else None


def text(note: str | None) -> str:
    """The note as the current viewer reads it, in their language."""
    coded = decode(note)
    if coded is None:
        return typed(note)
    kind, p = coded
    number, typed_text = str(p.get("number", "?")), p.get("text") or ""
    if kind == MERGED_FROM:
        shown = _("%(number)s merged into this ticket (%(n)d messages)", number=number, n=_count(p))
    elif kind == MERGED_INTO:
        shown = _("merged into %(number)s", number=number)
    elif kind == AUTO_FINISHED:
        shown = _("no answer from the customer for %(n)d working days", n=_count(p))
    else:  # a kind a later version wrote: its typed part at least
        shown = ""
    return f"{shown}: {typed_text}" if shown and typed_text else shown or typed_text


def _count(params: dict) -> int:
    n = params.get("n")
    return n if isinstance(n, int) else 0

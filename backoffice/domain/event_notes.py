"""Timeline notes written by the code itself, stored neutral and translated when shown.

A TicketEvent's `note` holds either what a person typed (shown as it is) or, for the
notes the code writes (a merge, an auto-finish, a due time moved), a machine form: a
marker, a kind and its parameters as JSON. `text()` turns the machine form into the
viewer's language at display time, so an English colleague does not read the
Indonesian a worker or a colleague happened to write it in. Rows written before this
(free text) have no marker and are shown unchanged.

The marker is a control character (U+001F): `typed()` removes it from what a person
typed, so a typed note can never pass for a machine one.
"""

from __future__ import annotations

import json

from flask_babel import gettext as _

from ..models.enums import Priority

MARK = "\x1f"
LIMIT = 500  # TicketEvent.note's length
TEXT_LIMIT = 400  # a typed note carried inside a machine note (the forms allow 400)

MERGED_FROM = "merged_from"  # the survivor: another ticket was merged into it
MERGED_INTO = "merged_into"  # the duplicate: it was merged into another ticket
AUTO_FINISHED = "auto_finished"  # finished by the worker: the customer did not answer
DUE_MOVED = "due_moved"  # an SLA due time moved (domain/sla.move_note); `why` is coded too
# why a due time moved:
WITH_DEPARTMENT = "with_department"
PRIORITY = "priority"
WORKING_TIME = "working_time"
RESUMED = "resumed"
HOURS_CHANGED = "hours_changed"
CALENDAR_CHANGED = "calendar_changed"
COMPANY_DAY = "company_day"
COMPANY_DAY_REMOVED = "company_day_removed"


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
    render = _RENDER.get(kind)
    shown = render(p) if render else ""  # a kind a later version wrote: its typed part
    typed_text = p.get("text") or ""
    return f"{shown}: {typed_text}" if shown and typed_text else shown or typed_text


def _count(params: dict) -> int:
    n = params.get("n")
    return n if isinstance(n, int) else 0


def _label(enum_type, value) -> str:
    try:
        return enum_type(value).label
    except ValueError:
        return str(value)


def _due_moved(p: dict) -> str:
    return _(
        "%(clock)s due %(old)s → %(new)s %(zone)s (%(calendar)s): %(why)s",
        clock=_("first response") if p.get("first") else _("resolution"),
        old=p.get("old", "?"),
        new=p.get("new", "?"),
        zone=p.get("zone", ""),
        calendar=p.get("calendar", ""),
        why=text(p.get("why") if isinstance(p.get("why"), str) else ""),
    )


_RENDER = {
    MERGED_FROM: lambda p: _(
        "%(number)s merged into this ticket (%(n)d messages)",
        number=str(p.get("number", "?")),
        n=_count(p),
    ),
    MERGED_INTO: lambda p: _("merged into %(number)s", number=str(p.get("number", "?"))),
    AUTO_FINISHED: lambda p: _("no answer from the customer for %(n)d working days", n=_count(p)),
    DUE_MOVED: _due_moved,
    # Why a due time moved (DUE_MOVED's `why`, itself coded):
    WITH_DEPARTMENT: lambda p: _("now with %(d)s, on its working hours", d=str(p.get("d", "?"))),
    PRIORITY: lambda p: _(
        "priority %(old)s → %(new)s",
        old=_label(Priority, p.get("old")),
        new=_label(Priority, p.get("new")),
    ),
    WORKING_TIME: lambda p: _("now counted in working time"),
    RESUMED: lambda p: _(
        "the clock resumed after %(hours)s working hours stopped"
        " (waiting for the customer, or finished), not counted",
        hours=str(p.get("hours", "?")),
    ),
    HOURS_CHANGED: lambda p: _("business hours of %(d)s changed", d=str(p.get("d", "?"))),
    CALENDAR_CHANGED: lambda p: _("calendar of %(d)s changed", d=str(p.get("d", "?"))),
    COMPANY_DAY: lambda p: _(
        "company day %(day)s (%(name)s)",
        day=str(p.get("day", "?")),
        name=str(p.get("name", "")),
    ),
    COMPANY_DAY_REMOVED: lambda p: _("company day %(day)s removed", day=str(p.get("day", "?"))),
}

"""Finishing (or closing) a ticket, reopening it, and the customer's rating."""

from __future__ import annotations

from datetime import datetime

from flask_babel import gettext as _
from sqlalchemy import case

from ...models import EventAction, Ticket, User
from ...models.base import utcnow
from .. import DomainError, notifications
from .. import permissions as perm
from .transitions import SYSTEM, Action, F, SystemActor, _check, _flush, _move, _operation


@_operation
def finish(
    ticket: Ticket,
    actor: User | SystemActor,
    *,
    note: str = "",
    coded: str = "",
    expected_version: int | None = None,
    now: datetime | None = None,
) -> None:
    """Finish an open ticket (staff), close it (its customer), or, as SYSTEM, finish a
    ticket that waited for the customer too long (domain/autofinish.py): the customer
    gets the same email with its rating links in every case but their own close.
    `coded`: the system's note (event_notes.encode) instead of a typed `note`."""
    now = now or utcnow()
    if actor is SYSTEM:
        action = Action.AUTO_FINISH
    else:
        action = Action.CLOSE if perm.owns_ticket(actor, ticket) else Action.FINISH
    _check(ticket, actor, action, expected_version, now)
    if ticket.status is F:
        raise DomainError(_("This ticket is already finished."))
    _move(ticket, actor, action, EventAction.FINISHED, note=note, coded=coded, now=now)
    _flush(ticket, now)
    notifications.ticket_finished(ticket, actor)


@_operation
def reopen(
    ticket: Ticket,
    actor: User,
    *,
    note: str = "",
    expected_version: int | None = None,
    now: datetime | None = None,
) -> None:
    """Reopen a finished ticket: staff any time, its customer within 7 days."""
    now = now or utcnow()
    if ticket.status is not F:
        raise DomainError(_("Only a finished ticket can be reopened."))
    _check(ticket, actor, Action.REOPEN, expected_version, now)
    ticket.reopen_count += 1
    _move(ticket, actor, Action.REOPEN, EventAction.REOPENED, note=note, now=now)
    _flush(ticket, now)


@_operation
def rate(
    ticket: Ticket, actor: User, score: int, comment: str = "", *, now: datetime | None = None
) -> None:
    """The customer rates a finished ticket once, 1 to 5, with an optional comment."""
    now = now or utcnow()
    _check(ticket, actor, Action.RATE, None, now)
    if ticket.status is not F:
        raise DomainError(_("Only a finished ticket can be rated."))
    if ticket.rating is not None:
        raise DomainError(_("This ticket has already been rated."))
    try:
        score = int(score)
    except (TypeError, ValueError):
        score = 0
    if not 1 <= score <= 5:
        raise DomainError(_("A rating is a whole number from 1 to 5."))
    comment = (comment or "").replace("\x00", "").strip()
    if len(comment) > 2000:
        raise DomainError(_("The comment is too long (at most %(n)d characters).", n=2000))
    ticket.rating, ticket.rating_comment, ticket.rated_at = score, comment or None, now
    _move(ticket, actor, Action.RATE, EventAction.RATED, note=str(score), now=now)
    _flush(ticket, now)


def staff_rating():
    """The rating as staff and department averages count it (SQL): a ticket nobody
    answered (no staff reply before the customer closed and rated it) rates no one's
    handling, so it counts as unrated. The rating itself stays on the ticket."""
    return case((Ticket.first_response_at.is_not(None), Ticket.rating), else_=None)

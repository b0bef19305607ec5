"""The status machine of the ticket lifecycle (docs/architecture.md §2) and how an
operation applies it: `TRANSITIONS` and the actions, `_may` (who may do what),
`_check`, `_move` (the status change and its event), `_flush`, `_operation`."""

from __future__ import annotations

import enum
import functools
from datetime import datetime, timedelta

from flask_babel import gettext as _
from sqlalchemy.orm.exc import StaleDataError

from ...extensions import db
from ...models import EventAction, RoutingRule, Ticket, TicketEvent, TicketStatus, User
from ...models.base import utcnow
from ...models.enums import OPEN_STATUSES
from .. import ConflictError, DomainError, PermissionDenied, event_notes, sla
from .. import permissions as perm

P, T, R, F = (
    TicketStatus.PROGRESS,
    TicketStatus.TEAM,
    TicketStatus.RESPONDED,
    TicketStatus.FINISHED,
)

REOPEN_WINDOW = timedelta(days=7)


class SystemActor:
    """carebox itself, acting on its own (auto-finish): not a User, so it has no login,
    no roles and no password. Its events and messages are stored without an author
    and shown as "system" on the timeline (`TicketMessage.by_system` marks its messages).
    Only the actions in SYSTEM_ACTIONS are open to it."""

    __slots__ = ()
    id = None  # compares unequal to every user's id (notifications skip "the actor")

    def __repr__(self) -> str:
        return "SYSTEM"


SYSTEM = SystemActor()


class Action(enum.StrEnum):
    """What moves a ticket; each is allowed to some actors (see `_may`)."""

    ROUTE = "route"  # a routing rule: on filing, or (SYSTEM) when the parcel's situation turns
    DISPATCH = "dispatch"  # master admin sends a progress ticket to a department
    ESCALATE = "escalate"  # staff move a ticket to (another) department
    STAFF_REPLY = "staff_reply"
    CUSTOMER_REPLY = "customer_reply"
    FINISH = "finish"  # staff
    CLOSE = "close"  # the customer closes their own ticket
    REOPEN = "reopen"  # staff any time, the customer within REOPEN_WINDOW
    MERGE = "merge"  # staff merge a duplicate into another open ticket of its customer
    # Changes that keep the status:
    NOTE = "note"
    PRIORITY = "priority"
    ASSIGN = "assign"
    RATE = "rate"
    LINK_PARCEL = "link_parcel"  # staff name the customer's parcel the ticket is about
    # The system's own (SYSTEM): a waiting ticket's warning, then its finish; ROUTE too.
    FINISH_WARNING = "finish_warning"
    AUTO_FINISH = "auto_finish"


SYSTEM_ACTIONS = frozenset({Action.FINISH_WARNING, Action.AUTO_FINISH, Action.ROUTE})

# The status machine of docs/architecture.md §2. A move not listed here is refused.
TRANSITIONS: dict[tuple[TicketStatus, TicketStatus], frozenset[Action]] = {
    (P, T): frozenset({Action.ROUTE, Action.DISPATCH}),
    (P, R): frozenset({Action.STAFF_REPLY}),
    (P, P): frozenset({Action.CUSTOMER_REPLY}),
    (T, R): frozenset({Action.STAFF_REPLY}),
    (T, T): frozenset({Action.ESCALATE, Action.CUSTOMER_REPLY}),
    (R, R): frozenset({Action.STAFF_REPLY}),  # a follow-up while waiting for the customer
    (R, T): frozenset({Action.ESCALATE, Action.CUSTOMER_REPLY}),
    (R, P): frozenset({Action.CUSTOMER_REPLY}),
    (P, F): frozenset({Action.FINISH, Action.CLOSE, Action.MERGE}),
    (T, F): frozenset({Action.FINISH, Action.CLOSE, Action.MERGE}),
    (R, F): frozenset({Action.FINISH, Action.CLOSE, Action.AUTO_FINISH, Action.MERGE}),
    (F, T): frozenset({Action.REOPEN}),
    (F, P): frozenset({Action.REOPEN}),
}

STAFF_PERMISSION = {
    Action.DISPATCH: perm.TICKET_DISPATCH,
    Action.ESCALATE: perm.TICKET_ESCALATE,
    Action.STAFF_REPLY: perm.TICKET_REPLY,
    Action.FINISH: perm.TICKET_FINISH,
    Action.MERGE: perm.TICKET_FINISH,  # merging finishes the duplicate
    Action.REOPEN: perm.TICKET_REOPEN,
    Action.NOTE: perm.TICKET_NOTE,
    Action.PRIORITY: perm.TICKET_PRIORITY,
    Action.ASSIGN: perm.TICKET_ASSIGN,
    Action.LINK_PARCEL: perm.TICKET_PRIORITY,  # who sets a ticket's particulars
}
KEEPS_STATUS = frozenset(
    {
        Action.NOTE,
        Action.PRIORITY,
        Action.ASSIGN,
        Action.RATE,
        Action.FINISH_WARNING,
        Action.LINK_PARCEL,
    }
)
CUSTOMER_ACTIONS = frozenset({Action.CUSTOMER_REPLY, Action.CLOSE, Action.REOPEN, Action.RATE})


def _may(actor: User | SystemActor | None, ticket: Ticket, action: Action, now: datetime) -> bool:
    """Whether `actor` may perform `action` on `ticket`, ignoring its status."""
    if action is Action.ROUTE:
        return actor is None or actor is SYSTEM  # filing, or route_by_situation
    if ticket.merged_into_id is not None and action is not Action.NOTE:
        return False  # a merged ticket lives on in its survivor
    if actor is SYSTEM or action in SYSTEM_ACTIONS:
        return actor is SYSTEM and action in SYSTEM_ACTIONS
    if actor is None:
        return False
    if perm.owns_ticket(actor, ticket) and action in CUSTOMER_ACTIONS:
        if action is Action.REOPEN:
            return ticket.finished_at is not None and now - ticket.finished_at <= REOPEN_WINDOW
        return True
    permission = STAFF_PERMISSION.get(action)
    return bool(permission and perm.may(actor, ticket, permission))


def can_transition(
    ticket: Ticket, to: TicketStatus, actor: User | None, now: datetime | None = None
) -> bool:
    """Whether some action of `actor` may move `ticket` from its status to `to`."""
    now = now or utcnow()
    actions = TRANSITIONS.get((ticket.status, to), frozenset())
    return any(_target(ticket, a) is to and _may(actor, ticket, a, now) for a in actions)


def _target(ticket: Ticket, action: Action) -> TicketStatus:
    """Where `action` takes the ticket from its current status."""
    s = ticket.status
    if action in (Action.ROUTE, Action.DISPATCH, Action.ESCALATE):
        return T
    if action is Action.STAFF_REPLY:
        return R
    if action is Action.CUSTOMER_REPLY:
        if s is R:
            return T if ticket.department_id else P
        return s
    if action in (Action.FINISH, Action.CLOSE, Action.AUTO_FINISH, Action.MERGE):
        return F
    if action is Action.REOPEN:
        return T if ticket.department_id else P
    return s


def allowed_actions(ticket: Ticket, actor: User | None, now: datetime | None = None) -> set[Action]:
    """The actions `actor` may take on `ticket` right now (the desk shows these as buttons)."""
    now = now or utcnow()
    result = set()
    for action in Action:
        if not _may(actor, ticket, action, now):
            continue
        if action in (Action.NOTE, Action.ASSIGN):
            result.add(action)
        elif action in (Action.PRIORITY, Action.LINK_PARCEL):
            if ticket.status in OPEN_STATUSES:
                result.add(action)
        elif action is Action.RATE:
            if ticket.status is F and ticket.rating is None:
                result.add(action)
        elif action in TRANSITIONS.get((ticket.status, _target(ticket, action)), ()):
            result.add(action)
    return result


def _check(
    ticket: Ticket, actor: User | None, action: Action, expected_version: int | None, now: datetime
) -> None:
    if expected_version is not None and int(expected_version) != ticket.version_id:
        raise ConflictError(conflict_message(ticket))
    if not _may(actor, ticket, action, now):
        if action is Action.REOPEN and actor is not None and perm.owns_ticket(actor, ticket):
            raise DomainError(_("A ticket can be reopened only within 7 days of finishing."))
        raise PermissionDenied(_("You are not allowed to do that on this ticket."))


def conflict_message(ticket: Ticket) -> str:
    """The "changed by someone else" text for `ticket` (read it before a flush or commit
    that may fail: a failed one leaves the ticket unreadable)."""
    return _(
        "Ticket %(number)s was changed by someone else while you were working on it. "
        "Reload the page to see the latest version; nothing of yours was saved.",
        number=ticket.number,
    )


def _move(
    ticket: Ticket,
    actor: User | SystemActor | None,
    action: Action,
    event: EventAction,
    *,
    note: str = "",
    coded: str = "",
    rule: RoutingRule | None = None,
    now: datetime,
) -> TicketEvent:
    """Apply `action`'s status change (if any) through TRANSITIONS and record it.
    `note` is stored as typed; `coded` is a code-written note (event_notes.encode),
    translated when the timeline is shown."""
    before = ticket.status
    after = _target(ticket, action)
    if action not in KEEPS_STATUS and action not in TRANSITIONS.get((before, after), ()):
        raise DomainError(
            _("This ticket cannot go from %(a)s to %(b)s.", a=before.label, b=after.label)
        )
    ticket.status = after
    if after is not R:
        ticket.auto_finish_warned_at = None  # no longer waiting: a warning is void
    # Only a move into or out of `finished` touches finished_at: a note, an
    # assignment or a rating on a finished ticket must not restart the clock
    # (resolution times and the 7-day reopen window are measured from it).
    if after is F and before is not F:
        ticket.finished_at = now
    elif before is F and after is not F:
        ticket.finished_at = None
    ev = TicketEvent(
        ticket=ticket,
        actor=None if actor is SYSTEM else actor,
        action=event,
        from_status=before,
        to_status=after if after != before else None,
        rule_id=rule.id if rule else None,
        note=(coded or event_notes.typed(note))[:500],
        created_at=now,
    )
    db.session.add(ev)
    return ev


def _flush(ticket: Ticket, now: datetime | None = None) -> None:
    sla.refresh(ticket, now)  # every operation ends here: the stored due times follow it
    message = conflict_message(ticket)  # a failed flush leaves the ticket unreadable
    try:
        db.session.flush()
    except StaleDataError as exc:
        raise ConflictError(message) from exc
    # A Galera certification conflict (CertificationConflict) is left to the caller:
    # filing is retried, a staff decision is a conflict (backoffice/transactions.py).


def _operation(fn):
    """Run a lifecycle operation without autoflush, so the only flush is the final one,
    where a concurrent change surfaces as a ConflictError."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with db.session.no_autoflush:
            return fn(*args, **kwargs)

    return wrapper

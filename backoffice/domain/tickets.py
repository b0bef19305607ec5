"""The ticket lifecycle: the only code that changes a ticket.

Every function checks who may do it, changes the ticket, appends a
`TicketEvent` and flushes. None of them commits or reads the request: the
caller (a view, the portal, the CLI) owns the transaction.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Sequence
from datetime import datetime, timedelta

from flask_babel import gettext as _
from sqlalchemy import case, select, update
from sqlalchemy.orm import aliased, contains_eager, joinedload
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.exc import StaleDataError

from ..extensions import db
from ..models import (
    Department,
    EventAction,
    MessageChannel,
    Order,
    Priority,
    RoutingRule,
    ShipmentSituation,
    Ticket,
    TicketAttachment,
    TicketEvent,
    TicketKind,
    TicketMessage,
    TicketStatus,
    User,
)
from ..models.base import utcnow
from ..models.enums import OPEN_STATUSES
from . import (
    ConflictError,
    DomainError,
    PermissionDenied,
    assignment,
    clean_text,
    event_notes,
    notifications,
    shipments,
    situations,
    sla,
)
from . import permissions as perm

__all__ = [
    "SYSTEM",
    "TRANSITIONS",
    "Action",
    "TicketStatus",
    "allowed_actions",
    "assign",
    "can_transition",
    "dispatch",
    "escalate",
    "duplicates_of",
    "file_ticket",
    "finish",
    "link_parcel",
    "merge",
    "post_message",
    "rate",
    "reopen",
    "route_by_situation",
    "set_priority",
    "staff_rating",
    "warn_before_finish",
]

P, T, R, F = (
    TicketStatus.PROGRESS,
    TicketStatus.TEAM,
    TicketStatus.RESPONDED,
    TicketStatus.FINISHED,
)

REOPEN_WINDOW = timedelta(days=7)
MAX_BODY = 10_000
MAX_SUBJECT = 200


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


# Kept for callers of the old name: the working-time rules live in domain/sla.py.
sla_hours = sla.sla_hours


def find_route(
    kind: TicketKind,
    product_id: int | None,
    situation: ShipmentSituation | None = None,
) -> RoutingRule | None:
    """The most specific active rule for a new ticket. Every condition a rule names must
    match; the parcel's situation counts most, then the product, then the kind
    (kind+product > product > kind), and a rule naming nothing is the catch-all."""
    return _pick_route(_active_rules(), kind, product_id, situation)


def _active_rules() -> list[RoutingRule]:
    """The active rules of active departments (a short table: read whole, one query, so
    that a batch of tickets is routed by one read — route_by_situation)."""
    stmt = (
        select(RoutingRule)
        .join(RoutingRule.department)
        .options(contains_eager(RoutingRule.department))  # the rule's department: no lazy load
        .where(RoutingRule.active, Department.active)
        .order_by(RoutingRule.position, RoutingRule.id)
    )
    return list(db.session.scalars(stmt).unique())


def _pick_route(rules, kind, product_id, situation) -> RoutingRule | None:
    """find_route's one rule over `rules` (in position, id order)."""
    best, best_score = None, -1
    for rule in rules:
        if rule.kind is not None and rule.kind != kind:
            continue
        if rule.product_id is not None and rule.product_id != product_id:
            continue
        if rule.situation is not None and rule.situation != situation:
            continue
        score = (
            4 * (rule.situation is not None)
            + 2 * (rule.product_id is not None)
            + (rule.kind is not None)
        )
        if score > best_score:  # strictly: the first in position order wins a tie
            best, best_score = rule, score
    return best


def route_by_situation(ticket_ids, now: datetime | None = None) -> int:
    """The parcels' situation of these tickets just changed: those still in Progress that
    nobody ever dispatched (no department: a dispatch, escalation or route gives one, and
    nothing takes it away) go where a routing rule *on that situation* sends them, as
    SYSTEM through `dispatch` (a ROUTED event without an author: the system's, naming the
    rule). Tickets staff dispatched or escalated are never touched. One query for the
    tickets and one for the rules per call; then each routed ticket is one dispatch.
    A ticket someone changed meanwhile is left to them. Returns how many were routed."""
    now = now or utcnow()
    ids = sorted(set(ticket_ids))
    if not ids:
        return 0
    candidates = list(
        db.session.scalars(
            select(Ticket)
            .options(joinedload(Ticket.order))
            .where(
                Ticket.id.in_(ids),
                Ticket.status == P,
                Ticket.department_id.is_(None),
                Ticket.merged_into_id.is_(None),
                Ticket.situation.is_not(None),
            )
            .order_by(Ticket.id)
        )
    )
    if not candidates:
        return 0
    rules = _active_rules()
    routed = 0
    for ticket in candidates:
        product_id = ticket.order.product_id if ticket.order else None
        rule = _pick_route(rules, ticket.kind, product_id, ticket.situation)
        if rule is None or rule.situation is None:
            continue  # only the situation is new: other rules had their chance at filing
        try:
            with db.session.begin_nested():
                dispatch(ticket, rule.department, SYSTEM, rule=rule, now=now)
        except (ConflictError, DomainError):
            continue  # moved by someone meanwhile: theirs stands
        routed += 1
    return routed


@_operation
def file_ticket(
    customer: User,
    kind: TicketKind,
    subject: str,
    body: str,
    *,
    order: Order | None = None,
    attachments: Sequence[TicketAttachment] = (),
    channel: MessageChannel = MessageChannel.PORTAL,
    external_id: str | None = None,
    follow_up_of: Ticket | None = None,
    now: datetime | None = None,
    submission: str | None = None,
) -> Ticket:
    """File a new ticket for `customer`; a matching routing rule sends it to `team`.

    Guarantees: the ticket has a unique number `CX-<year>-<id>`, SLA due times,
    the first message (written on `channel`) and a FILED event (plus ROUTED
    naming the rule). `submission` (the form's one-time token) is unique: a second
    ticket with the same one fails at the insert (IntegrityError), before any email.
    """
    now = now or utcnow()
    if not perm.has(customer, perm.PORTAL):
        raise PermissionDenied(_("Only customers can file tickets."))
    if order is not None and order.customer_id != customer.id:
        raise DomainError(_("That order is not yours."))
    subject = clean_text(subject, MAX_SUBJECT, _("Subject"))
    body = clean_text(body, MAX_BODY, _("Message"))
    db.session.flush()  # the caller's changes first: the rules and calendars read below see them
    ticket = Ticket(
        kind=TicketKind(kind),
        subject=subject,
        customer=customer,
        order=order,
        follow_up_of=follow_up_of,
        submission=submission,
        status=P,
        priority=Priority.NORMAL,
        created_at=now,
        updated_at=now,
        last_message_at=now,
        # placeholders until the route is known: sla.start below sets both
        first_response_due=now,
        resolution_due=now,
    )
    db.session.add(ticket)
    msg = TicketMessage(
        ticket=ticket,
        author=customer,
        body=body,
        created_at=now,
        attachments=list(attachments),
        channel=channel,
        external_id=external_id,
    )
    db.session.add(msg)
    db.session.add(
        # The note set as _move sets it: events with the same columns go in one INSERT.
        TicketEvent(
            ticket=ticket,
            actor=customer,
            action=EventAction.FILED,
            to_status=P,
            note="",
            created_at=now,
        )
    )
    # The parcel's situation first: routing rules may match on it.
    ticket.situation, ticket.situation_due_at = situations.for_new_ticket(
        ticket.kind, order, attachments, now
    )
    rule = find_route(ticket.kind, order.product_id if order else None, ticket.situation)
    if rule is not None:
        ticket.department_id, ticket.department = rule.department_id, rule.department
    sla.start(ticket, now)  # on the routed department's calendar (the default one if none)
    if rule is not None:
        _move(ticket, None, Action.ROUTE, EventAction.ROUTED, rule=rule, now=now, note=str(rule))
        _round_robin(ticket, now)
    # One flush writes the whole ticket with its message and events (the unit of work
    # needs no second one to update it); the id then makes the number, unique without
    # a counter to contend on, set by one UPDATE that leaves version and time alone.
    _flush(ticket, now)
    number = f"CX-{now.year}-{ticket.id:06d}"
    db.session.execute(
        update(Ticket)
        .where(Ticket.id == ticket.id)
        .values(number=number, updated_at=ticket.updated_at)
        .execution_options(synchronize_session=False)
    )
    set_committed_value(ticket, "number", number)
    notifications.ticket_filed(ticket, first_message=msg)
    return ticket


@_operation
def post_message(
    ticket: Ticket,
    author: User,
    body: str,
    *,
    internal: bool = False,
    expected_version: int | None = None,
    attachments: Sequence[TicketAttachment] = (),
    channel: MessageChannel = MessageChannel.PORTAL,
    external_id: str | None = None,
    now: datetime | None = None,
    whatsapp_template=None,
) -> TicketMessage:
    """Add a public reply or an internal note, moving the status as docs/architecture.md §2 says.

    A staff reply moves progress/team to responded and sets the first response
    time; a customer reply moves responded back to team (progress without a
    department). Internal notes never change the status and are staff-only.
    `whatsapp_template` (domain.whatsapp_outbox.Chosen): a staff reply sent as that
    WhatsApp template (notifications.message_posted).
    """
    now = now or utcnow()
    is_customer = perm.owns_ticket(author, ticket) and not internal
    if internal:
        action, event = Action.NOTE, EventAction.NOTE
    elif is_customer:
        action, event = Action.CUSTOMER_REPLY, EventAction.CUSTOMER_REPLIED
    else:
        action, event = Action.STAFF_REPLY, EventAction.REPLIED
    _check(ticket, author, action, expected_version, now)
    if ticket.status is F and action is not Action.NOTE:
        raise DomainError(_("This ticket is finished. Reopen it to continue the conversation."))
    body = clean_text(body, MAX_BODY, _("Message"))
    msg = TicketMessage(
        ticket=ticket,
        author=author,
        body=body,
        internal=internal,
        from_staff=not is_customer,
        created_at=now,
        attachments=list(attachments),
        channel=channel,
        external_id=external_id,
    )
    db.session.add(msg)
    _move(ticket, author, action, event, now=now)
    # Notes bump the ticket's version too: a stale desk must not miss one.
    ticket.updated_at = now
    if action is not Action.NOTE:
        ticket.last_message_at = now
        ticket.last_from_staff = not is_customer
        ticket.auto_finish_warned_at = None  # the wait for the customer starts anew
        if action is Action.STAFF_REPLY and ticket.first_response_at is None:
            ticket.first_response_at = now
    before = ticket.situation
    if is_customer and any(situations.is_photo(a) for a in attachments):
        situations.photo_added(ticket, now)
    _flush(ticket, now)
    notifications.message_posted(msg, whatsapp_template=whatsapp_template)
    if ticket.situation != before:
        route_by_situation([ticket.id], now)  # e.g. now damaged: the rule on it applies
    return msg


@_operation
def dispatch(
    ticket: Ticket,
    department: Department,
    actor: User | SystemActor,
    *,
    note: str = "",
    expected_version: int | None = None,
    now: datetime | None = None,
    only: Action | None = None,
    rule: RoutingRule | None = None,
) -> TicketEvent:
    """Send a ticket to `department`: dispatch from progress, escalate from team/responded;
    as SYSTEM, route a Progress ticket by `rule` (route_by_situation).

    `only` (Action.DISPATCH or Action.ESCALATE) refuses the other one: a bulk action
    named "escalate" must not dispatch a Progress ticket, nor "dispatch" escalate."""
    now = now or utcnow()
    action = Action.DISPATCH if ticket.status is P else Action.ESCALATE
    if actor is SYSTEM:
        action = Action.ROUTE
        if ticket.status is not P:
            raise DomainError(
                _("This ticket cannot go from %(a)s to %(b)s.", a=ticket.status.label, b=T.label)
            )
    if only is Action.ESCALATE and action is not only:
        raise DomainError(_("A Progress ticket is dispatched, not escalated."))
    if only is Action.DISPATCH and action is not only:
        raise DomainError(_("Only a Progress ticket is dispatched; this one is escalated."))
    _check(ticket, actor, action, expected_version, now)
    if ticket.status is F:
        raise DomainError(_("A finished ticket cannot be dispatched; reopen it first."))
    if not department.active:
        raise DomainError(_("That department is not active."))
    if ticket.status is T and ticket.department_id == department.id:
        raise DomainError(_("The ticket is already with %(d)s.", d=str(department)))
    sla.checkpoint(ticket, now)  # the time used so far counts on the old calendar
    # Both: the permission checks of round-robin read the id before any flush.
    ticket.department_id, ticket.department = department.id, department
    event = {
        Action.DISPATCH: EventAction.DISPATCHED,
        Action.ESCALATE: EventAction.ESCALATED,
        Action.ROUTE: EventAction.ROUTED,
    }[action]
    note = note or (str(rule) if rule is not None else department.code)
    ev = _move(ticket, actor, action, event, note=note, rule=rule, now=now)
    sla.replan(ticket, now, event_notes.encode(event_notes.WITH_DEPARTMENT, d=department.code))
    _round_robin(ticket, now)
    _flush(ticket, now)
    notifications.ticket_reached_department(ticket, actor)
    return ev


def escalate(ticket: Ticket, department: Department, actor: User, **kwargs) -> TicketEvent:
    """Move a Team or Responded ticket to (another) department; never a Progress one."""
    return dispatch(ticket, department, actor, only=Action.ESCALATE, **kwargs)


@_operation
def set_priority(
    ticket: Ticket,
    priority: Priority,
    actor: User,
    *,
    expected_version: int | None = None,
    now: datetime | None = None,
) -> None:
    """Change the priority of an open ticket; its SLA due times follow."""
    now = now or utcnow()
    _check(ticket, actor, Action.PRIORITY, expected_version, now)
    if ticket.status is F:
        raise DomainError(_("A finished ticket's priority cannot change."))
    priority = Priority(priority)
    if priority is ticket.priority:
        return
    old = ticket.priority
    ticket.priority = priority
    sla.priority_changed(ticket, old, now)
    _move(
        ticket,
        actor,
        Action.PRIORITY,
        EventAction.PRIORITY,
        now=now,
        note=f"{old.value} → {priority.value}",
    )
    _flush(ticket, now)


@_operation
def assign(
    ticket: Ticket,
    assignee: User | None,
    actor: User,
    *,
    expected_version: int | None = None,
    now: datetime | None = None,
) -> None:
    """Assign the ticket to a staff member (or nobody)."""
    now = now or utcnow()
    _check(ticket, actor, Action.ASSIGN, expected_version, now)
    if assignee is not None and not perm.can_work_on(assignee, ticket):
        raise DomainError(
            _(
                "%(name)s cannot take this ticket: only active staff who can open it.",
                name=assignee.display_name,
            )
        )
    ticket.assignee = assignee
    _move(
        ticket,
        actor,
        Action.ASSIGN,
        EventAction.ASSIGNED,
        now=now,
        note=assignee.email if assignee else "",
    )
    _flush(ticket, now)


def _round_robin(ticket: Ticket, now: datetime) -> None:
    """A ticket that reached a round-robin department without anyone there able to
    work on it goes to the agent whose turn it is (domain/assignment.py)."""
    if ticket.department is None or perm.can_work_on(ticket.assignee, ticket):
        return
    agent = assignment.claim_agent(ticket.department, ticket)
    if agent is None:
        return
    ticket.assignee = agent
    _move(ticket, None, Action.ASSIGN, EventAction.ASSIGNED, now=now, note=agent.email)


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


@_operation
def link_parcel(
    ticket: Ticket,
    resi: str,
    actor: User,
    *,
    expected_version: int | None = None,
    now: datetime | None = None,
) -> Order:
    """Staff name the parcel an open ticket is about, by its resi (the customer wrote
    without it, or gave the wrong one): checked by the one linking rule
    (`shipments.customer_parcel`: check digit, a known parcel, the ticket's own
    customer's), then the ticket's situation follows its new parcel. Keeps the status;
    records a PARCEL_LINKED event naming the resi."""
    now = now or utcnow()
    _check(ticket, actor, Action.LINK_PARCEL, expected_version, now)
    if ticket.status is F:
        raise DomainError(_("A finished ticket's parcel cannot change."))
    order, problem = shipments.customer_parcel(resi, ticket.customer, staff=True)
    if order is None:
        raise DomainError(problem)
    if ticket.order_id == order.id:
        raise DomainError(_("The ticket is already about parcel %(resi)s.", resi=order.resi))
    ticket.order_id, ticket.order = order.id, order
    ticket.situation, ticket.situation_due_at = situations.for_ticket(ticket, now)
    _move(ticket, actor, Action.LINK_PARCEL, EventAction.PARCEL_LINKED, note=order.resi, now=now)
    ticket.updated_at = now
    _flush(ticket, now)
    return order


@_operation
def merge(
    ticket: Ticket,
    into: Ticket,
    actor: User,
    *,
    note: str = "",
    expected_version: int | None = None,
    now: datetime | None = None,
) -> TicketEvent:
    """Merge the duplicate `ticket` into `into`, an open ticket of the same customer.

    Guarantees: `ticket`'s messages (with their attachments) and events move to `into`;
    `ticket` is finished and points to `into` (`merged_into`); both timelines get a
    MERGED event naming the other; `into` takes over the parcel when it had none and
    its latest message time; the customer is told by email (the outbox, their
    language). Refused: into itself, from or into a finished (or merged) ticket,
    across customers (their conversations are private to each), or without the
    finish permission on both. A change to either ticket since the actor saw it
    (`expected_version`, or a concurrent reply: both rows are locked, then their
    versions compared) is a ConflictError and nothing moves — so a reply racing the
    merge either committed first (and the merge is refused) or waits and fails its
    own version check, never lost in between.
    """
    now = now or utcnow()
    _check(ticket, actor, Action.MERGE, expected_version, now)
    if into.id == ticket.id:
        raise DomainError(_("A ticket cannot be merged into itself."))
    if ticket.status is F:
        raise DomainError(
            _(
                "Ticket %(number)s is finished: only an open ticket can be merged.",
                number=ticket.number,
            )
        )
    if into.status is F or into.merged_into_id is not None:
        raise DomainError(
            _("Ticket %(number)s is finished: merge into an open ticket.", number=into.number)
        )
    if into.customer_id != ticket.customer_id:
        raise DomainError(
            _(
                "Tickets %(a)s and %(b)s belong to different customers and cannot be merged.",
                a=ticket.number,
                b=into.number,
            )
        )
    if not _may(actor, into, Action.MERGE, now):
        raise PermissionDenied(_("You are not allowed to do that on this ticket."))
    _lock_unchanged(ticket, into)
    table_msg, table_ev = TicketMessage.__table__, TicketEvent.__table__
    moved = db.session.execute(
        update(table_msg).where(table_msg.c.ticket_id == ticket.id).values(ticket_id=into.id)
    ).rowcount
    db.session.execute(
        update(table_ev).where(table_ev.c.ticket_id == ticket.id).values(ticket_id=into.id)
    )
    for obj in list(db.session.identity_map.values()):  # loaded rows follow the move
        if isinstance(obj, (TicketMessage, TicketEvent)) and obj.ticket_id == ticket.id:
            db.session.expire(obj, ["ticket_id", "ticket"])
    if into.order_id is None and ticket.order_id is not None:
        into.order_id, into.order = ticket.order_id, ticket.order
    if ticket.last_message_at > into.last_message_at:
        into.last_message_at, into.last_from_staff = ticket.last_message_at, ticket.last_from_staff
    into.updated_at = now
    db.session.add(
        TicketEvent(
            ticket=into,
            actor=actor,
            action=EventAction.MERGED,
            note=event_notes.encode(
                event_notes.MERGED_FROM, number=ticket.number, n=moved or 0, text=note
            ),
            created_at=now,
        )
    )
    ticket.merged_into_id, ticket.merged_into = into.id, into
    ev = _move(
        ticket,
        actor,
        Action.MERGE,
        EventAction.MERGED,
        coded=event_notes.encode(event_notes.MERGED_INTO, number=into.number, text=note),
        now=now,
    )
    sla.refresh(into, now)
    _flush(ticket, now)
    if into.order_id is not None:
        situations.parcels_changed([into.order_id], now)
    notifications.ticket_merged(ticket, into)
    return ev


def _lock_unchanged(*tickets: Ticket) -> None:
    """Lock the rows of `tickets` (in id order: two merges cannot deadlock) and refuse
    when one changed since it was loaded (a reply committed meanwhile)."""
    by_id = {t.id: t for t in tickets}
    rows = db.session.execute(
        select(Ticket.id, Ticket.version_id)
        .where(Ticket.id.in_(by_id))
        .order_by(Ticket.id)
        .with_for_update()
        .execution_options(populate_existing=False)
    ).all()
    for ticket_id, version in rows:
        if version != by_id[ticket_id].version_id:
            raise ConflictError(conflict_message(by_id[ticket_id]))


def duplicates_of(tickets: Sequence[Ticket]) -> dict[int, str]:
    """For each open ticket of `tickets` that is a second (or later) open ticket on the
    same parcel, the number of the first one — the ticket to merge it into. One query
    for the whole page (served by the index on ticket.order_id)."""
    order_ids = {t.order_id for t in tickets if t.order_id and t.status in OPEN_STATUSES}
    if not order_ids:
        return {}
    first = {}
    rows = db.session.execute(
        select(Ticket.order_id, Ticket.id, Ticket.number)
        .where(Ticket.order_id.in_(order_ids), Ticket.status.in_(OPEN_STATUSES))
        .order_by(Ticket.order_id, Ticket.id)
    )
    for order_id, ticket_id, number in rows:
        first.setdefault(order_id, (ticket_id, number))
    return {
        t.id: first[t.order_id][1]
        for t in tickets
        if t.order_id in first and t.status in OPEN_STATUSES and first[t.order_id][0] != t.id
    }


@functools.cache
def _first_open_alias():
    # One alias for every statement: adapting a new alias's columns costs ~2 ms each time.
    return aliased(Ticket, name="first_open")


def first_open_on_same_order(t=Ticket):
    """SQL correlated to `t` (an open ticket): the number of the first open ticket on
    t's parcel when that is not t itself, else NULL. `duplicates_of`'s rule for one
    row, for a list that reads it with its page in the same statement (served by
    ix_ticket_order_id: the order's tickets, by id)."""
    first = _first_open_alias()
    return (
        select(first.number)
        .where(first.order_id == t.order_id, first.status.in_(OPEN_STATUSES), first.id < t.id)
        .order_by(first.id)
        .limit(1)
        .correlate(t)
        .scalar_subquery()
    )


@_operation
def warn_before_finish(ticket: Ticket, body: str, *, now: datetime | None = None) -> TicketMessage:
    """SYSTEM tells the customer of a waiting ticket that it will be finished soon:
    `body` (in their language) becomes a public message of the conversation, sent on
    their channel like any reply (notifications.message_posted), with a FINISH_WARNED
    event. It keeps the status and the time the wait started (last_message_at)."""
    now = now or utcnow()
    _check(ticket, SYSTEM, Action.FINISH_WARNING, None, now)
    if ticket.status is not R:
        raise DomainError(_("Only a ticket waiting for the customer can be warned."))
    msg = TicketMessage(
        ticket=ticket,
        author=None,
        by_system=True,
        from_staff=True,
        body=clean_text(body, MAX_BODY, _("Message")),
        created_at=now,
        channel=MessageChannel.PORTAL,
    )
    db.session.add(msg)
    _move(ticket, SYSTEM, Action.FINISH_WARNING, EventAction.FINISH_WARNED, now=now)
    ticket.auto_finish_warned_at = now
    ticket.updated_at = now
    _flush(ticket, now)
    notifications.message_posted(msg)
    return msg

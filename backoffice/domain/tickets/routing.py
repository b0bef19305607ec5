"""Where a ticket goes: the routing rules (on filing, and when its parcel's situation
turns), dispatch and escalation to a department, and round-robin assignment there."""

from __future__ import annotations

from datetime import datetime

from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session, contains_eager, joinedload

from ...extensions import db
from ...models import (
    Department,
    EventAction,
    RoutingRule,
    ShipmentSituation,
    Ticket,
    TicketEvent,
    TicketKind,
    User,
)
from ...models.base import utcnow
from .. import ConflictError, DomainError, assignment, event_notes, notifications, setup_cache, sla
from .. import permissions as perm
from .transitions import SYSTEM, Action, F, P, SystemActor, T, _check, _flush, _move, _operation


def find_route(
    kind: TicketKind,
    product_id: int | None,
    situation: ShipmentSituation | None = None,
) -> RoutingRule | None:
    """The most specific active rule for a new ticket (in the session). Every condition a
    rule names must match; the parcel's situation counts most, then the product, then the
    kind (kind+product > product > kind), and a rule naming nothing is the catch-all."""
    return _attached(_pick_route(_active_rules(), kind, product_id, situation))


def _active_rules() -> list[RoutingRule]:
    """The active rules of active departments, with their departments: a short table read
    whole, so that a batch of tickets is routed by one read (route_by_situation), and kept
    by the process while the setup is unchanged (domain/setup_cache.py). The rules are
    copies outside any session: `_attached` puts the one chosen into it."""
    return setup_cache.cached("routing_rules", _load_rules)


def _load_rules() -> list[RoutingRule]:
    stmt = (
        select(RoutingRule)
        .join(RoutingRule.department)
        .options(contains_eager(RoutingRule.department))  # the rule's department: no lazy load
        .where(RoutingRule.active, Department.active)
        .order_by(RoutingRule.position, RoutingRule.id)
    )
    # A session of their own on the transaction's connection: the copies never belong to
    # the caller's session, whose objects stay as they are.
    with Session(bind=db.session.connection()) as session:
        return list(session.scalars(stmt).unique())


def _attached(rule: RoutingRule | None) -> RoutingRule | None:
    """The session's instance of a copied rule and its department, made without a
    statement (merge without load: the copy is what the database holds under the token)."""
    return None if rule is None else db.session.merge(rule, load=False)


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
        rule = _attached(rule)
        try:
            with db.session.begin_nested():
                dispatch(ticket, rule.department, SYSTEM, rule=rule, now=now)
        except (ConflictError, DomainError):
            continue  # moved by someone meanwhile: theirs stands
        routed += 1
    return routed


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

"""Changes that keep the status: priority, assignee, the parcel a ticket is about."""

from __future__ import annotations

from datetime import datetime

from flask_babel import gettext as _

from ...models import EventAction, Order, Priority, Ticket, User
from ...models.base import utcnow
from .. import DomainError, shipments, situations, sla
from .. import permissions as perm
from .transitions import Action, F, _check, _flush, _move, _operation


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

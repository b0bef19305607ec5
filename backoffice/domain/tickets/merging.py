"""Merging a duplicate ticket into another, and finding the duplicates a list shows."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime

from flask_babel import gettext as _
from sqlalchemy import select, update
from sqlalchemy.orm import aliased

from ...extensions import db
from ...models import EventAction, Ticket, TicketEvent, TicketMessage, User
from ...models.base import utcnow
from ...models.enums import OPEN_STATUSES
from .. import (
    ConflictError,
    DomainError,
    PermissionDenied,
    event_notes,
    notifications,
    situations,
    sla,
)
from .transitions import Action, F, _check, _flush, _may, _move, _operation, conflict_message


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

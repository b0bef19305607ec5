"""Filing a new ticket: its number, first message, SLA and route."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from flask_babel import gettext as _
from sqlalchemy import bindparam, update
from sqlalchemy.orm.attributes import set_committed_value

from ...extensions import db
from ...models import (
    EventAction,
    MessageChannel,
    Order,
    Priority,
    Ticket,
    TicketAttachment,
    TicketEvent,
    TicketKind,
    TicketMessage,
    User,
)
from ...models.base import utcnow
from .. import DomainError, PermissionDenied, clean_text, notifications, situations, sla
from .. import permissions as perm
from .routing import _round_robin, find_route
from .transitions import Action, P, _flush, _move, _operation

MAX_BODY = 10_000
MAX_SUBJECT = 200
# The number's UPDATE, built once and run on the session's connection: nothing in the
# session to synchronise (set_committed_value below), so no ORM statement around it.
_T = Ticket.__table__
_NUMBER = (
    update(_T)
    .where(_T.c.id == bindparam("ticket"))
    .values(number=bindparam("ticket_number"), updated_at=bindparam("at"))
)


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
        follow_up_of_id=follow_up_of.id if follow_up_of else None,
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
    db.session.connection().execute(
        _NUMBER, {"ticket": ticket.id, "ticket_number": number, "at": ticket.updated_at}
    )
    set_committed_value(ticket, "number", number)
    notifications.ticket_filed(ticket, first_message=msg)
    return ticket

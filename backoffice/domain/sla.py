"""Service levels: the due times a ticket's clocks give, and which one matters now.

The lifecycle (domain.tickets) calls `refresh` before every flush of a ticket, so
the stored `Ticket.next_due_at` is kept in this one place.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import case

from ..models import Ticket, TicketStatus

# The clock does not run while the ticket waits for the customer, nor once it is done.
STOPPED = (TicketStatus.RESPONDED, TicketStatus.FINISHED)


def next_due(ticket) -> datetime | None:
    """The due time that matters now: the first response's until answered, then the
    resolution's; None while the clock is stopped (responded, finished). `ticket` is a
    Ticket or anything with its attributes (a bulk loader's row)."""
    if ticket.status in STOPPED:
        return None
    if ticket.first_response_at is None:
        return ticket.first_response_due
    return ticket.resolution_due


def next_due_sql(t=Ticket):
    """`next_due` as SQL over the ticket table (or its Core table), for set-based updates."""
    return case(
        (t.status.in_(STOPPED), None),
        (t.first_response_at.is_(None), t.first_response_due),
        else_=t.resolution_due,
    )


def refresh(ticket: Ticket) -> None:
    """Store `next_due(ticket)` on the ticket (called by the lifecycle before it flushes)."""
    ticket.next_due_at = next_due(ticket)

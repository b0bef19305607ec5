"""Who has a ticket's desk open: the last time each staff member opened it.

The lists' unread mark compares a ticket's last customer message with the time
its assignee last opened the desk (`TicketViewer.opened_at`). Like the rest of
domain/, nothing here commits or reads the request; a lost race between two
tabs of the same person is harmless (both write "now").
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from ..extensions import db
from ..models import Ticket, TicketViewer, User
from ..models.base import utcnow


def mark_opened(ticket: Ticket, user: User, now: datetime | None = None) -> None:
    """Record that `user` has just seen `ticket`'s conversation (an upsert, flushed).

    A Core UPDATE first (the common case, one statement); the first visit
    inserts inside a savepoint so a concurrent first visit of the same person
    costs nothing but the duplicate key."""
    now = now or utcnow()
    result = db.session.execute(
        update(TicketViewer)
        .where(TicketViewer.ticket_id == ticket.id, TicketViewer.user_id == user.id)
        .values(opened_at=now)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount:
        return
    try:
        with db.session.begin_nested():
            db.session.add(TicketViewer(ticket_id=ticket.id, user_id=user.id, opened_at=now))
    except IntegrityError:
        pass  # opened in another tab at the same moment: its time is as good


def opened_times(pairs) -> dict[tuple[int, int], datetime]:
    """`{(ticket_id, user_id): opened_at}` for the given pairs, in one query."""
    pairs = {(t, u) for t, u in pairs if u is not None}
    if not pairs:
        return {}
    ticket_ids = {t for t, _u in pairs}
    rows = db.session.execute(
        db.select(TicketViewer.ticket_id, TicketViewer.user_id, TicketViewer.opened_at).where(
            TicketViewer.ticket_id.in_(ticket_ids),
            TicketViewer.user_id.in_({u for _t, u in pairs}),
        )
    )
    return {
        (r.ticket_id, r.user_id): r.opened_at for r in rows if (r.ticket_id, r.user_id) in pairs
    }


def is_unread(ticket: Ticket, opened_at: datetime | None) -> bool:
    """The customer wrote last, after the assignee last opened the ticket (or never opened)."""
    if ticket.assignee_id is None or ticket.last_from_staff:
        return False
    return opened_at is None or opened_at < ticket.last_message_at

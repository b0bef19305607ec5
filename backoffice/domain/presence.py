"""Who has a ticket's desk open: the last time each staff member opened it, and
who is viewing or typing right now.

The lists' unread mark compares a ticket's last customer message with the time
its assignee last opened the desk (`TicketViewer.opened_at`). Presence rides the
desk's poll: each poll is a heartbeat (`seen_at`, and `typing_at` while the
reply box changed lately); someone is viewing while their last heartbeat is
younger than VIEWING_TTL, typing while their last keystroke is younger than
TYPING_TTL, so a closed tab or a stopped hand fades on its own, with no cleanup.
It lives in the database so every app instance sees the same people. Like the rest of
domain/, nothing here commits or reads the request; a lost race between two
tabs of the same person is harmless (both write "now").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from ..extensions import db
from ..models import Ticket, TicketViewer, User
from ..models.base import utcnow

VIEWING_TTL = timedelta(seconds=30)  # three missed polls of 10 s
TYPING_TTL = timedelta(seconds=15)


def mark_opened(ticket: Ticket, user: User, now: datetime | None = None) -> None:
    """Record that `user` has just seen `ticket`'s conversation (an upsert, flushed).

    A Core UPDATE first (the common case, one statement); the first visit
    inserts inside a savepoint so a concurrent first visit of the same person
    costs nothing but the duplicate key."""
    now = now or utcnow()
    _upsert(ticket, user, now, opened_at=now, seen_at=now)


def heartbeat(ticket: Ticket, user: User, *, typing: bool, now: datetime | None = None) -> None:
    """`user`'s desk of `ticket` is still open (and they are typing, if `typing`)."""
    now = now or utcnow()
    values = {"seen_at": now, **({"typing_at": now} if typing else {})}
    _upsert(ticket, user, now, **values)


def _upsert(ticket: Ticket, user: User, now: datetime, **values) -> None:
    result = db.session.execute(
        update(TicketViewer)
        .where(TicketViewer.ticket_id == ticket.id, TicketViewer.user_id == user.id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount:
        return
    values.setdefault("opened_at", now)
    try:
        with db.session.begin_nested():
            db.session.add(TicketViewer(ticket_id=ticket.id, user_id=user.id, **values))
    except IntegrityError:
        pass  # the same person in another tab at the same moment: its time is as good


@dataclass(frozen=True)
class Present:
    user_id: int
    name: str
    typing: bool


def others(ticket: Ticket, user: User, now: datetime | None = None) -> list[Present]:
    """The other staff members who have `ticket`'s desk open now, typing ones first."""
    now = now or utcnow()
    rows = db.session.execute(
        select(User.id, User.name, User.email, TicketViewer.typing_at)
        .join(TicketViewer, TicketViewer.user_id == User.id)
        .where(
            TicketViewer.ticket_id == ticket.id,
            TicketViewer.user_id != user.id,
            TicketViewer.seen_at >= now - VIEWING_TTL,
        )
        .order_by(User.name, User.id)
    ).all()
    people = [
        Present(
            r.id, r.name or r.email, r.typing_at is not None and r.typing_at >= now - TYPING_TTL
        )
        for r in rows
    ]
    return sorted(people, key=lambda p: not p.typing)


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

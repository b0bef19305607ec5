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

from sqlalchemy import ColumnElement, Select, and_, bindparam, false, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload

from ..extensions import db
from ..models import Ticket, TicketViewer, User
from ..models.base import utcnow

VIEWING_TTL = timedelta(seconds=30)  # three missed polls of 10 s
TYPING_TTL = timedelta(seconds=15)
# A poll rewrites its heartbeat only when the stored one is this old (issue 16: an idle
# desk's poll is a read, not a write and a commit, most of the time). The desk polls
# every 10 s, so every other poll writes, and someone still polling never looks older
# than ~20 s (VIEWING_TTL is 30); typing is rewritten at most every 5 s of its 15.
SEEN_REFRESH = VIEWING_TTL / 2
TYPING_REFRESH = TYPING_TTL / 3


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


def poll(
    ticket: Ticket, user: User, *, typing: bool, now: datetime | None = None
) -> tuple[list[Present], bool]:
    """A poll of `user`'s desk of `ticket`: the others present (as `others`) and whether
    a heartbeat was written (then the caller commits). Only their ids are read: a row
    with `id` does for either.

    One read of the ticket's viewers, the user's own row included (`settle` decides from
    it); the idle poll's short way reads the same rows joined to its ticket's
    (`with_viewers`, backoffice/idle_polls.py)."""
    now = now or utcnow()
    rows = db.session.execute(
        select(*_VIEWER_COLUMNS)
        .join(TicketViewer, TicketViewer.user_id == User.id)
        .where(
            TicketViewer.ticket_id == ticket.id,
            (TicketViewer.seen_at >= now - VIEWING_TTL) | (TicketViewer.user_id == user.id),
        )
        .order_by(User.name, User.id)
    ).all()
    return settle(ticket, user, rows, typing=typing, now=now)


_VIEWER_COLUMNS = (User.id, User.name, User.email, TicketViewer.seen_at, TicketViewer.typing_at)


def with_viewers(stmt: Select, ticket_id, user_id) -> Select:
    """`stmt` (one row per ticket) outer-joined to the rows `poll` reads of that ticket's
    viewers — `ticket_id` and `user_id` are SQL columns of `stmt`; the moment is the
    `viewing_since` parameter (now - VIEWING_TTL) — labelled `viewer_*`: what `settle`
    and an ETag need (ids and times, no names). In no order: sorting them made MariaDB
    build a temporary table on disk (the roles' permissions are TEXT), 3 ms of a 0.3 ms
    read; read them back with `viewer_rows`."""
    here = and_(
        TicketViewer.ticket_id == ticket_id,
        (TicketViewer.seen_at >= bindparam("viewing_since")) | (TicketViewer.user_id == user_id),
    )
    return stmt.outerjoin(TicketViewer, here).add_columns(
        TicketViewer.user_id.label("viewer_id"),
        TicketViewer.seen_at.label("viewer_seen_at"),
        TicketViewer.typing_at.label("viewer_typing_at"),
    )


def viewer_rows(rows) -> list[_Viewer]:
    """The viewers of rows read through `with_viewers`, once each (in no order, nameless)."""
    seen: dict[int, _Viewer] = {}
    for r in rows:
        if r.viewer_id is not None and r.viewer_id not in seen:
            seen[r.viewer_id] = _Viewer(r.viewer_id, None, "", r.viewer_seen_at, r.viewer_typing_at)
    return list(seen.values())


def settle(ticket, user, rows, *, typing: bool, now: datetime) -> tuple[list[Present], bool]:
    """`poll`'s decision from the viewer rows it read (id, name, email, seen_at,
    typing_at; the user's own included): the others present, and whether a heartbeat was
    written — only when the stored one is older than SEEN_REFRESH (TYPING_REFRESH for
    typing), so what the others see is the same as with a write on every poll."""
    mine = next((r for r in rows if r.id == user.id), None)
    values = {}
    if mine is None or mine.seen_at is None or mine.seen_at < now - SEEN_REFRESH:
        values["seen_at"] = now
    if typing and (mine is None or mine.typing_at is None or mine.typing_at < now - TYPING_REFRESH):
        values.update(seen_at=now, typing_at=now)
    if values:
        _upsert(ticket, user, now, **values)
    return _present([r for r in rows if r.id != user.id], now), bool(values)


def _present(rows, now: datetime) -> list[Present]:
    people = [
        Present(
            r.id, r.name or r.email, r.typing_at is not None and r.typing_at >= now - TYPING_TTL
        )
        for r in rows
    ]
    return sorted(people, key=lambda p: not p.typing)


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
    return _present(rows, now)


def viewing(user: User, now: datetime):
    """A loader option for a statement of tickets: with each, the viewers `others` would
    read (the other staff here now, with their names), so the desk reads them with its
    ticket instead of in a statement of their own. Read them with `others_loaded`."""
    here = (TicketViewer.user_id != user.id) & (TicketViewer.seen_at >= now - VIEWING_TTL)
    return (
        joinedload(Ticket.viewers.and_(here))
        .joinedload(TicketViewer.user)
        .load_only(User.id, User.name, User.email)
    )


def others_loaded(ticket: Ticket, now: datetime) -> list[Present]:
    """`others` from a ticket loaded with `viewing(user, now)` (the same people, same order)."""
    viewers = sorted(ticket.viewers, key=lambda v: ((v.user.name or "").casefold(), v.user_id))
    return _present([_Row(v.user_id, v.user.name, v.user.email, v.typing_at) for v in viewers], now)


@dataclass(frozen=True)
class _Viewer:
    id: int
    name: str | None
    email: str
    seen_at: datetime | None
    typing_at: datetime | None


@dataclass(frozen=True)
class _Row:
    id: int
    name: str | None
    email: str
    typing_at: datetime | None


def unread(opened_at) -> ColumnElement[bool]:
    """SQL: the customer wrote last, after the assignee last opened the ticket (or never
    opened it). `opened_at`: the assignee's TicketViewer.opened_at, outer-joined (the
    lists read it with their page)."""
    return and_(
        Ticket.assignee_id.is_not(None),
        Ticket.last_from_staff == false(),
        or_(opened_at.is_(None), opened_at < Ticket.last_message_at),
    )

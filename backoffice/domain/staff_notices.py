"""Agent notifications (docs/architecture.md §9): what a staff member should look at.

Two events make one: a customer's reply on a ticket assigned to the agent, and a
ticket reaching the agent's department (dispatch, escalation, a routing rule) — for
everyone of that department who can work on it: its admins *and* customer service
agents who belong to it. The person who made the move is not told about it.

Notices are rows in the transaction of the change (like the outbox's emails), read
when the agent opens the ticket's desk, and, for agents who asked for it, mailed in
one digest per run of `carebox notices digest`, through the outbox, never twice.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from datetime import datetime

from flask_babel import gettext as _
from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.orm import contains_eager, load_only

from ..extensions import db
from ..models import NoticeKind, Role, StaffNotice, Ticket, User
from ..models.base import utcnow
from ..models.user import roles_users
from . import permissions as perm

DIGEST_LIMIT = 100  # notices listed in one digest email (the rest: "and N more")
SHOWN = 50  # notices on the notifications page


def _notify(
    users: Iterable[User], ticket: Ticket, kind: NoticeKind, now: datetime, new: bool = False
) -> None:
    """One unread notice per (user, ticket, kind): an existing unread one is refreshed.
    `new`: the ticket was filed in this transaction, so no notice of it exists yet."""
    users = {u.id: u for u in users if u is not None}
    if not users:
        return
    unread = set()
    if not new:  # a new ticket's id comes from the caller's flush: nobody has a notice yet
        unread = set(
            db.session.scalars(
                select(StaffNotice.user_id).where(
                    StaffNotice.ticket_id == ticket.id,
                    StaffNotice.kind == kind,
                    StaffNotice.read_at.is_(None),
                    StaffNotice.user_id.in_(users),
                )
            )
        )
    if unread:
        db.session.execute(
            update(StaffNotice)
            .where(
                StaffNotice.ticket_id == ticket.id,
                StaffNotice.kind == kind,
                StaffNotice.read_at.is_(None),
                StaffNotice.user_id.in_(unread),
            )
            .values(created_at=now)
        )
    fresh = sorted(users.keys() - unread)
    if fresh:  # one multi-row INSERT, not one per member (the unit of work inserts row by row)
        db.session.execute(
            insert(StaffNotice),
            [dict(user_id=u, ticket_id=ticket.id, kind=kind, created_at=now) for u in fresh],
        )


def customer_replied(ticket: Ticket, now: datetime | None = None) -> None:
    """The customer wrote on `ticket`: its assignee hears it (if they can still open it)."""
    assignee = ticket.assignee
    if assignee is None or not assignee.active or not perm.can_open_at_desk(assignee, ticket):
        return
    _notify([assignee], ticket, NoticeKind.CUSTOMER_REPLY, now or utcnow())


def department_staff(department_id: int) -> list[User]:
    """The active accounts of a department with their roles, by id: one statement (flat
    outer joins, not a lazy load per member) that both the in-app notices and the admins'
    emails pick from, so a filing costs the same however large the department is. Who
    holds which permission is decided on the loaded roles, the rows Flask-Security reads.
    Only the columns those two read (STAFF_COLUMNS) are loaded."""
    return list(db.session.scalars(_staff_statement(), {"department": department_id}).unique())


# What the notices and the admins' emails read of a member: who they are, whether they
# are active, their department (the permission checks), language and how to address
# them. PyMySQL parses every column's description on every statement (some 50 function
# calls a column): a whole user with roles was an eighth of a filing's Python.
STAFF_COLUMNS = ("id", "email", "name", "locale", "active", "department_id", "contact_only")


@functools.cache
def _staff_statement():
    """department_staff's statement, built once (its department a parameter)."""
    return (
        select(User)
        .outerjoin(roles_users, roles_users.c.user_id == User.id)
        .outerjoin(Role, Role.id == roles_users.c.role_id)
        .options(
            load_only(*(getattr(User, c) for c in STAFF_COLUMNS)),
            contains_eager(User.roles).load_only(Role.id, Role.name, Role.permissions),
        )
        .where(User.active, User.department_id == bindparam("department"))
        .order_by(User.id)
    )


def department_members(ticket: Ticket, staff: list[User] | None = None) -> list[User]:
    """Active staff of the ticket's department who can work on it: its admins, and the
    customer service agents who belong to it. `staff`: department_staff's, when read."""
    if ticket.department_id is None:
        return []
    if staff is None:
        staff = department_staff(ticket.department_id)
    return [u for u in staff if perm.can_work_on(u, ticket)]


def reached_department(
    ticket: Ticket,
    actor: User | None = None,
    now: datetime | None = None,
    staff: list[User] | None = None,
    new: bool = False,
) -> None:
    """`ticket` reached its department: everyone there hears it, except who sent it.
    `new`: filed in this transaction (_notify)."""
    people = [u for u in department_members(ticket, staff) if actor is None or u.id != actor.id]
    _notify(people, ticket, NoticeKind.DEPARTMENT, now or utcnow(), new=new)


def _unread(user: User):
    return (StaffNotice.user_id == user.id) & StaffNotice.read_at.is_(None)


def unread_count(user: User | None) -> int:
    """The menu's and the home page's count: the notices `unread` lists (one COUNT over
    the user's unread rows, each joined to its ticket by primary key)."""
    if not perm.is_staff(user):
        return 0
    return db.session.scalar(
        select(func.count())
        .select_from(StaffNotice)
        .join(Ticket, StaffNotice.ticket_id == Ticket.id)
        .where(_unread(user), perm.desk_scope(user))
    )


def unread_count_column(user: User):
    """`unread_count` as a scalar subquery, for a statement of tickets that reads it with
    its rows (the desk's ticket): uncorrelated, its own join to the tickets in scope."""
    return (
        select(func.count())
        .select_from(StaffNotice)
        .join(Ticket, StaffNotice.ticket_id == Ticket.id)
        .where(_unread(user), perm.desk_scope(user))
        .correlate(None)
        .scalar_subquery()
    )


def unread_on_ticket_column(user: User):
    """How many of `user`'s unread notices are about the statement's ticket (correlated):
    `mark_read(user, ticket)` has something to do only when this is not 0."""
    return (
        select(func.count())
        .select_from(StaffNotice)
        .where(_unread(user), StaffNotice.ticket_id == Ticket.id)
        .correlate(Ticket)
        .scalar_subquery()
    )


def unread(user: User, limit: int = SHOWN) -> list[StaffNotice]:
    """The latest unread notices of `user` whose ticket they can still open, newest first."""
    rows = db.session.scalars(
        select(StaffNotice)
        .join(Ticket, StaffNotice.ticket_id == Ticket.id)
        .where(_unread(user), perm.desk_scope(user))
        .order_by(StaffNotice.created_at.desc(), StaffNotice.id.desc())
        .limit(limit)
    )
    return list(rows)


def mark_read(user: User, ticket: Ticket | None = None, now: datetime | None = None) -> int:
    """The agent opened `ticket` (or asked to clear all): its notices are read."""
    where = _unread(user)
    if ticket is not None:
        where = where & (StaffNotice.ticket_id == ticket.id)
    result = db.session.execute(update(StaffNotice).where(where).values(read_at=now or utcnow()))
    return result.rowcount or 0


def send_digests(now: datetime | None = None) -> int:
    """One email per agent who asked for the digest, listing their unread notices not
    mailed yet; returns how many emails were queued. Each agent's email and the marks
    on its notices commit together; a notice another worker marked in the meantime
    makes this worker skip that agent (the compare-and-set UPDATE counts rows)."""
    from .notifications import send_to  # notifications calls this module

    now = now or utcnow()
    pending = (
        select(StaffNotice.user_id)
        .where(StaffNotice.read_at.is_(None), StaffNotice.emailed_at.is_(None))
        .distinct()
    )
    agents = list(
        db.session.scalars(
            select(User).where(User.active, User.notice_digest, User.id.in_(pending))
        )
    )
    sent = 0
    for agent in agents:
        if not perm.is_staff(agent):
            continue
        rows = db.session.scalars(
            select(StaffNotice)
            .join(Ticket, StaffNotice.ticket_id == Ticket.id)
            .where(_unread(agent), StaffNotice.emailed_at.is_(None), perm.desk_scope(agent))
            .order_by(StaffNotice.created_at, StaffNotice.id)
            .limit(DIGEST_LIMIT + 1)
        ).all()
        shown, more = rows[:DIGEST_LIMIT], max(len(rows) - DIGEST_LIMIT, 0)
        if not shown:
            continue
        ids = [n.id for n in shown]
        marked = db.session.execute(
            update(StaffNotice)
            .where(StaffNotice.id.in_(ids), StaffNotice.emailed_at.is_(None))
            .values(emailed_at=now)
        ).rowcount
        if marked != len(ids):  # another worker mailed some of them: leave this agent
            db.session.rollback()
            continue
        from .links import absolute_url

        send_to(
            agent,
            "staff_digest",
            lambda n=len(rows): _("carebox: notifications to look at (%(n)d)", n=n),
            notices=[(n, absolute_url(f"/admin/tickets/desk/{n.ticket.number}/")) for n in shown],
            more=more,
            notices_url=absolute_url("/admin/notifications/"),
        )
        db.session.commit()
        sent += 1
    return sent

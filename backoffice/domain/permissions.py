"""Roles as bundles of permissions, and the queries that scope what a user sees.

Code checks permissions, never role names. `visible_tickets` is the one query
that scopes tickets for the back office; `can_see_ticket` is its in-memory twin
(kept next to it so the two cannot drift apart unnoticed: tests compare them).
The desk reaches a little further than the lists (`desk_tickets`,
`can_open_at_desk`, docs/architecture.md §1), and `may` is the per-action rule on top of both.
"""

from __future__ import annotations

import functools

from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, and_, exists, false, func, literal, or_, select
from sqlalchemy.orm import aliased

from ..extensions import db
from ..models import Order, Role, Ticket, TicketMessage, TicketStatus, User, roles_users
from ..models.enums import OPEN_STATUSES

MASTER_ADMIN = "master_admin"
ADMIN_DEPARTMENT = "admin_department"
CUSTOMER_SERVICE = "customer_service"
CUSTOMER = "customer"

STAFF_ROLES = (MASTER_ADMIN, ADMIN_DEPARTMENT, CUSTOMER_SERVICE)
ALL_ROLES = (*STAFF_ROLES, CUSTOMER)

# Ticket visibility
TICKETS_ALL = "tickets.read_all"  # every list, Progress included
TICKETS_DESK = "tickets.read_desk"  # Team, Responded and Finished of every department
TICKETS_DEPARTMENT = "tickets.read_department"  # Team tickets of one's own department
# Ticket actions
TICKET_DISPATCH = "tickets.dispatch"
TICKET_REPLY = "tickets.reply"
TICKET_NOTE = "tickets.note"
TICKET_PRIORITY = "tickets.priority"
TICKET_ESCALATE = "tickets.escalate"
TICKET_ASSIGN = "tickets.assign"
TICKET_FINISH = "tickets.finish"
TICKET_REOPEN = "tickets.reopen"
# Other back-office areas
BACKOFFICE = "backoffice.access"
REPORTS = "reports.export"
ADMIN_PEOPLE = "admin.people"  # staff users, departments, routing rules
ADMIN_CONTENT = "admin.content"  # FAQ, products, announcements
CUSTOMERS_READ = "customers.read"
CUSTOMERS_EXPORT = "customers.export"  # the customer list with loyalty figures, as CSV
ORDERS_READ = "orders.read"
ORDERS_UPDATE = "orders.update"
DASHBOARD_CHARTS = "dashboard.charts"
CANNED_SHARED = "canned.shared"  # manage the shared canned replies (everyone's own: BACKOFFICE)
MAIL_REVIEW = "mail.review"  # held inbound email: accept or reject it
# Portal
PORTAL = "portal.use"  # file tickets, order services, follow own objects

ROLE_PERMISSIONS: dict[str, tuple[str, ...]] = {
    MASTER_ADMIN: (
        BACKOFFICE,
        TICKETS_ALL,
        TICKET_DISPATCH,
        TICKET_REPLY,
        TICKET_NOTE,
        TICKET_PRIORITY,
        TICKET_ESCALATE,
        TICKET_ASSIGN,
        TICKET_FINISH,
        TICKET_REOPEN,
        REPORTS,
        ADMIN_PEOPLE,
        ADMIN_CONTENT,
        CUSTOMERS_READ,
        CUSTOMERS_EXPORT,
        ORDERS_READ,
        ORDERS_UPDATE,
        DASHBOARD_CHARTS,
        MAIL_REVIEW,
        CANNED_SHARED,
    ),
    CUSTOMER_SERVICE: (
        BACKOFFICE,
        TICKETS_DESK,
        TICKET_REPLY,
        TICKET_NOTE,
        TICKET_PRIORITY,
        TICKET_ESCALATE,
        TICKET_ASSIGN,
        TICKET_FINISH,
        TICKET_REOPEN,
        CUSTOMERS_READ,
        ORDERS_READ,
        ORDERS_UPDATE,
        MAIL_REVIEW,
    ),
    ADMIN_DEPARTMENT: (BACKOFFICE, TICKETS_DEPARTMENT, TICKET_REPLY, TICKET_NOTE),
    CUSTOMER: (PORTAL,),
}

ROLE_DESCRIPTIONS = {
    MASTER_ADMIN: "Master admin: every list, reports, people and content",
    CUSTOMER_SERVICE: "Customer service: Team, Responded and Finished tickets",
    ADMIN_DEPARTMENT: "Department admin: Team tickets of their own department",
    CUSTOMER: "Customer: the portal only",
}

# What the back office shows for each role, in the user's language (the descriptions
# above are what Flask-Security stores on the role rows).
ROLE_LABELS = {
    MASTER_ADMIN: _l("Master admin: every list, reports, people and content"),
    CUSTOMER_SERVICE: _l("Customer service: Team, Responded and Finished tickets"),
    ADMIN_DEPARTMENT: _l("Department admin: Team tickets of their own department"),
    CUSTOMER: _l("Customer: the portal only"),
}

DESK_STATUSES = (TicketStatus.TEAM, TicketStatus.RESPONDED, TicketStatus.FINISHED)


def needs_department(roles) -> bool:
    """A staff account whose roles scope it to one department must have one."""
    return any(TICKETS_DEPARTMENT in (role.permissions or []) for role in roles)


def has(user: User | None, permission: str) -> bool:
    return bool(user is not None and user.is_authenticated and user.has_permission(permission))


def is_staff(user: User | None) -> bool:
    return has(user, BACKOFFICE)


def visible_statuses(user: User | None) -> tuple[TicketStatus, ...]:
    """The ticket lists this user's menu shows."""
    if has(user, TICKETS_ALL):
        return tuple(TicketStatus)
    if has(user, TICKETS_DESK):
        return DESK_STATUSES
    if has(user, TICKETS_DEPARTMENT) and user.department_id is not None:
        return (TicketStatus.TEAM,)
    return ()


def ticket_scope(user: User | None):
    """The WHERE clause of the tickets a staff user may see in the back office."""
    conditions = []
    if has(user, TICKETS_ALL):
        return and_(True)
    if has(user, TICKETS_DESK):
        conditions.append(Ticket.status.in_(DESK_STATUSES))
    if has(user, TICKETS_DEPARTMENT) and user.department_id is not None:
        conditions.append(
            and_(Ticket.status == TicketStatus.TEAM, Ticket.department_id == user.department_id)
        )
    return or_(*conditions) if conditions else false()


def visible_tickets(user: User | None) -> Select:
    """SELECT of the tickets `user` may open in the back office."""
    return select(Ticket).where(ticket_scope(user))


def can_see_ticket(user: User | None, ticket: Ticket) -> bool:
    """In-memory twin of `ticket_scope` for one loaded ticket."""
    if has(user, TICKETS_ALL):
        return True
    if has(user, TICKETS_DESK) and ticket.status in DESK_STATUSES:
        return True
    return bool(
        has(user, TICKETS_DEPARTMENT)
        and user.department_id is not None
        and ticket.status == TicketStatus.TEAM
        and ticket.department_id == user.department_id
    )


# What may be done on a ticket reached only at the desk (not in one's lists): read
# it (the desk, its poll and files) and add internal notes. docs/architecture.md §1.
DESK_ONLY_PERMISSIONS = frozenset({TICKET_NOTE})


def _reaches_worked_on(user: User | None) -> bool:
    """Whether `user` is a department admin whose desk also reaches the open tickets
    of their department that they worked on (wrote a reply or a note on)."""
    return bool(
        has(user, TICKETS_DEPARTMENT)
        and not has(user, TICKETS_ALL)
        and user.department_id is not None
    )


def _worked_on_clause(user: User):
    return and_(
        Ticket.status.in_(OPEN_STATUSES),
        Ticket.department_id == user.department_id,
        exists().where(TicketMessage.ticket_id == Ticket.id, TicketMessage.author_id == user.id),
    )


def desk_scope(user: User | None):
    """The WHERE clause of the tickets `user` may open at the desk: those of their
    lists, plus (department admins) their department's open tickets they worked on,
    so a reply that moves one to Responded does not lock them out of the answer."""
    if _reaches_worked_on(user):
        return or_(ticket_scope(user), _worked_on_clause(user))
    return ticket_scope(user)


def desk_tickets(user: User | None) -> Select:
    """SELECT of the tickets `user` may open at the desk (read, and `may`'s actions)."""
    return select(Ticket).where(desk_scope(user))


def can_open_at_desk(user: User | None, ticket: Ticket) -> bool:
    """In-memory twin of `desk_scope` for one loaded ticket (one EXISTS query for a
    department admin's ticket outside their list, none otherwise)."""
    if can_see_ticket(user, ticket):
        return True
    if not _reaches_worked_on(user):
        return False
    if ticket.status not in OPEN_STATUSES or ticket.department_id != user.department_id:
        return False
    return bool(
        db.session.scalar(
            select(
                exists().where(
                    TicketMessage.ticket_id == ticket.id, TicketMessage.author_id == user.id
                )
            )
        )
    )


def may(user: User | None, ticket: Ticket, permission: str) -> bool:
    """The per-action rule: on a ticket of one's lists, whatever one's role grants; on
    a ticket reached only at the desk, only DESK_ONLY_PERMISSIONS (read and note)."""
    if not has(user, permission):
        return False
    if can_see_ticket(user, ticket):
        return True
    return permission in DESK_ONLY_PERMISSIONS and can_open_at_desk(user, ticket)


def owns_ticket(user: User | None, ticket: Ticket) -> bool:
    return has(user, PORTAL) and ticket.customer_id == user.id


def customer_tickets(user: User) -> Select:
    """The portal's scope: a customer's own tickets, whatever other roles they hold."""
    if not has(user, PORTAL):
        return select(Ticket).where(false())
    return select(Ticket).where(Ticket.customer_id == user.id)


def is_customers_ticket(user: User | None, ticket: Ticket) -> bool:
    """In-memory twin of `customer_tickets` for one loaded ticket (or a row with its
    `customer_id`)."""
    return has(user, PORTAL) and ticket.customer_id == user.id


def customer_orders(user: User) -> Select:
    if not has(user, PORTAL):
        return select(Order).where(false())
    return select(Order).where(Order.customer_id == user.id)


@functools.cache
def staff_with(permission: str) -> Select:
    """SELECT of the active users whom some role grants `permission` (by name order).

    Which roles grant it is read in the same statement, from the list Flask-Security
    reads (`role.permissions`, stored comma-separated). The join starts at the roles
    (a handful of rows), then their members: MariaDB is told so (STRAIGHT_JOIN), as it
    cannot estimate the roles the condition keeps and would otherwise read every user
    to find the few staff among the customers. Built once per permission."""
    role, member = aliased(Role), roles_users.alias()
    listed = literal(",") + role.permissions + literal(",")
    grants = func.instr(listed, f",{permission},") > 0  # (SQLite and MariaDB alike)
    return (
        select(User)
        .select_from(role)
        .join(member, member.c.role_id == role.id)
        .join(User, User.id == member.c.user_id)
        .where(grants, User.active)
        .distinct()  # a user two of whose roles grant it
        .order_by(User.name, User.id)
        .prefix_with("STRAIGHT_JOIN", dialect="mysql")
    )


def can_work_on(user: User | None, ticket: Ticket) -> bool:
    """Whether `ticket` may be assigned to `user`: active staff who may answer it
    (a reply or a note) and who can see it. The one rule of assignment, for the
    desk, the bulk action and round-robin alike."""
    return bool(
        user is not None
        and user.active
        and is_staff(user)
        and (has(user, TICKET_REPLY) or has(user, TICKET_NOTE))
        and can_see_ticket(user, ticket)
    )

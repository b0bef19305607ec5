"""Round-robin: which agent of a department gets the next ticket.

A department with `round_robin` on hands each ticket that reaches it without
someone able to work on it (filed and routed, dispatched, escalated) to one of
its agents, in turn. Guarantees:

- **Fair:** the agent with the lowest `round_robin_turn` (the longest since
  their last automatic ticket; ties by id) comes first and then gets the
  department's highest turn plus one, so N tickets over K agents give each N/K,
  give or take one.
- **Only those who can take it:** inactive agents, agents marked away (the
  toggle on their home page) and anyone `permissions.can_work_on` refuses are
  skipped; with nobody left the ticket stays unassigned.
- **Two tickets at once go to two agents:** the claim locks the department's
  row, then reads the candidates with a locking read, which sees the latest
  committed turns rather than the transaction's snapshot. Row
  locks are local to one Galera node (docs/architecture.md §13, trap 20), but
  two claims on two nodes that pick the same agent both write that agent's
  `round_robin_turn`, so certification lets one through and the other's commit
  fails with 1213 (backoffice/transactions.py: filing is retried and then
  picks the next agent; a staff action gets the usual conflict).

Like the lifecycle, nothing here commits or reads the request.
"""

from __future__ import annotations

from sqlalchemy import select

from ..extensions import db
from ..models import Department, Ticket, User
from . import permissions as perm


def claim_agent(department: Department, ticket: Ticket) -> User | None:
    """The agent of `department` whose turn it is for `ticket`, moved to the back of the line.

    None when the department has round-robin off or nobody can take the ticket."""
    if not department.round_robin:
        return None
    db.session.execute(
        select(Department.id).where(Department.id == department.id).with_for_update()
    )
    candidates = db.session.execute(
        select(User.id, User.round_robin_turn)
        .where(User.department_id == department.id, User.active, User.away.is_(False))
        .order_by(User.round_robin_turn, User.id)
        .with_for_update()
    ).all()
    top = max((row.round_robin_turn for row in candidates), default=0)
    for row in candidates:
        agent = db.session.get(User, row.id)
        if perm.can_work_on(agent, ticket):
            agent.round_robin_turn = top + 1
            return agent
    return None

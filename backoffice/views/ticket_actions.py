"""Bulk actions of the ticket lists (docs/architecture.md §9): each runs the lifecycle
row by row and ends in one summary of what was done and what was refused, and why.

Every row gets its own savepoint: a refused row (not allowed, wrong status, a
concurrent change) leaves nothing of itself behind and does not undo the rows
before it; the request commits once at the end.
"""

from __future__ import annotations

from flask import flash, request
from flask_admin.actions import action
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from flask_login import current_user

from ..domain import DomainError
from ..domain import permissions as perm
from ..domain import tickets as lifecycle
from ..extensions import db
from ..models import Department, Priority
from .desk_forms import assignee_from

# Flask-Admin action name -> the permission that offers it.
BULK_PERMISSIONS = {
    "dispatch": perm.TICKET_DISPATCH,
    "escalate": perm.TICKET_ESCALATE,
    "priority": perm.TICKET_PRIORITY,
    "assign": perm.TICKET_ASSIGN,
    "finish": perm.TICKET_FINISH,
}


def _chosen_department() -> Department:
    """The department chosen in the bulk bar (required; never a default)."""
    raw = (request.form.get("department") or "").strip()
    department = db.session.get(Department, int(raw)) if raw.isdigit() and len(raw) < 10 else None
    if department is None:
        raise DomainError(_("Choose a department in the bar above the list first."))
    return department


def _chosen_priority() -> Priority:
    try:
        return Priority(request.form.get("priority") or "")
    except ValueError:
        raise DomainError(_("Choose a priority in the bar above the list first.")) from None


class TicketActionsMixin:
    """The lists' bulk actions; mixed into TicketListView."""

    def bulk_allowed(self, name: str) -> bool | None:
        """Whether this user is offered action `name` (None: not one of ours)."""
        permission = BULK_PERMISSIONS.get(name)
        return None if permission is None else perm.has(current_user, permission)

    def run_bulk(self, ids, work) -> None:
        """Run `work(ticket)` on each selected ticket inside the list's scope, each
        in a savepoint, then commit and flash one summary."""
        rows = self.scoped_ids(ids)
        done, refused = 0, []
        for ticket in rows:
            number = ticket.number
            try:
                with db.session.begin_nested():
                    work(ticket)
            except DomainError as exc:  # PermissionDenied and ConflictError included
                refused.append(f"{number}: {exc}")
            else:
                done += 1
        db.session.commit()
        gone = len({str(i) for i in ids}) - len(rows)
        parts = [ngettext("%(num)d ticket done.", "%(num)d tickets done.", done)]
        if refused:
            parts.append(
                ngettext("%(num)d refused:", "%(num)d refused:", len(refused))
                + " "
                + "; ".join(refused)
            )
        if gone > 0:
            parts.append(
                ngettext(
                    "%(num)d is not in this list any more.",
                    "%(num)d are not in this list any more.",
                    gone,
                )
            )
        flash(" ".join(parts), "warning" if refused or gone else "success")

    @action(
        "assign",
        _l("Assign to the chosen colleague"),
        _l("Assign the selected tickets to the colleague chosen above the list?"),
    )
    def action_assign(self, ids):
        """Assign each selected ticket to the colleague chosen in the bulk bar."""
        try:
            target = assignee_from(request.form.get("assignee"))
        except DomainError as exc:
            flash(str(exc), "error")
            return None
        self.run_bulk(ids, lambda t: lifecycle.assign(t, target, current_user))
        return None

    def _with_choice(self, ids, choose, work):
        """Run `work(ticket, choice)` in bulk once `choose()` gave the bar's choice."""
        try:
            choice = choose()
        except DomainError as exc:
            flash(str(exc), "error")
            return None
        self.run_bulk(ids, lambda t: work(t, choice))
        return None

    @action(
        "dispatch",
        _l("Dispatch to the chosen department"),
        _l("Dispatch the selected tickets to the department chosen above the list?"),
    )
    def action_dispatch(self, ids):
        """Send each selected Progress ticket to the chosen department."""
        return self._with_choice(
            ids,
            _chosen_department,
            lambda t, d: lifecycle.dispatch(t, d, current_user, only=lifecycle.Action.DISPATCH),
        )

    @action(
        "escalate",
        _l("Escalate to the chosen department"),
        _l("Escalate the selected tickets to the department chosen above the list?"),
    )
    def action_escalate(self, ids):
        """Move each selected Team or Responded ticket to the chosen department."""
        return self._with_choice(
            ids, _chosen_department, lambda t, d: lifecycle.escalate(t, d, current_user)
        )

    @action(
        "priority",
        _l("Set the chosen priority"),
        _l("Give the selected tickets the priority chosen above the list?"),
    )
    def action_priority(self, ids):
        """Give each selected ticket the chosen priority."""
        return self._with_choice(
            ids, _chosen_priority, lambda t, p: lifecycle.set_priority(t, p, current_user)
        )

    @action("finish", _l("Finish"), _l("Finish the selected tickets?"))
    def action_finish(self, ids):
        """Finish each selected ticket."""
        self.run_bulk(ids, lambda t: lifecycle.finish(t, current_user))
        return None

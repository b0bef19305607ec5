"""Bulk actions of the ticket lists (docs/architecture.md §9): each runs the lifecycle
row by row and ends in one summary of what was done and what was refused, and why.

Every row gets its own savepoint: a refused row (not allowed, wrong status, a
concurrent change) leaves nothing of itself behind and does not undo the rows
before it; the request commits once at the end.
"""

from __future__ import annotations

from flask import flash, request
from flask_admin.actions import action
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from flask_login import current_user

from ..domain import DomainError
from ..domain import permissions as perm
from ..domain import tickets as lifecycle
from ..extensions import db
from .desk_forms import assignee_from

# Flask-Admin action name -> the permission that offers it.
BULK_PERMISSIONS = {"assign": perm.TICKET_ASSIGN}


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

"""The desk's parts that come after its first paint: the panels (`…/panel/<part>`) and
the canned-reply picker ("/" in the reply box, or `?canned=<id>` without JavaScript).

A mixin of `TicketDeskView` (views/desk.py), whose `_ticket` (the ticket in the desk's
scope, else 404) and `_origin` it uses.
"""

from __future__ import annotations

from flask import abort, current_app, flash, jsonify, request
from flask_admin import expose
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import contains_eager

from ..domain import canned
from ..domain import permissions as perm
from ..domain import tickets as lifecycle
from ..domain.tickets import Action
from ..extensions import db
from ..models import CannedReply, Department, Role, Ticket, TicketStatus, User
from ..models.base import MAX_ID
from ..models.user import roles_users
from .desk_context import customer_summary, merge_candidates
from .desk_forms import ActionForm, DispatchForm, ReplyForm
from .fields import to_choices

# The actions whose choices (departments, colleagues, tickets to merge into) the actions
# panel reads after the first paint.
PANEL_ACTIONS = frozenset({Action.DISPATCH, Action.ESCALATE, Action.ASSIGN, Action.MERGE})


class DeskPanels:
    """The panels and the canned replies of `TicketDeskView`."""

    @expose("/<number>/panel/<part>")
    def panel(self, number: str, part: str):
        """One panel of the desk that is not needed to read and answer: `actions` (dispatch
        or escalate, assign to a colleague, merge), `customer` (their orders and earlier
        tickets), `canned` (the canned-reply picker). The desk's JavaScript loads each
        after the page (`?partial=1`: the panel alone); without JavaScript its link opens
        it as a page of its own. Same scope as the desk (404 outside it) and the same
        rules as the page's own actions: a panel with nothing for this user is a 404."""
        build = PANELS.get(part)
        if build is None:
            abort(404)
        ticket = self._ticket(number)
        allowed = lifecycle.allowed_actions(ticket, current_user)
        version = request.args.get("version", type=int)
        if version is None or not 0 < version <= MAX_ID:
            version = ticket.version_id
        context = build(self, ticket, allowed, version)
        if context is None:
            abort(404)
        origin = self._origin()
        template = f"admin/tickets/_panel_{part}.html"
        common = {
            "ticket": ticket,
            "allowed": allowed,
            "Action": Action,
            "origin": origin,
            "version": version,
            "can_orders": perm.has(current_user, perm.ORDERS_READ),
            **context,
        }
        if request.args.get("partial") == "1":
            resp = current_app.response_class(self.render(template, partial=True, **common))
        else:
            resp = current_app.response_class(
                self.render(
                    "admin/tickets/desk_panel.html",
                    part=part,
                    panel=template,
                    partial=False,
                    **common,
                )
            )
        resp.headers["Cache-Control"] = "private, no-cache"
        return resp

    def _panel_actions(self, ticket: Ticket, allowed: set, version: int) -> dict | None:
        """Dispatch or escalate (the departments), assign to a colleague, merge."""
        if not allowed & PANEL_ACTIONS:
            return None
        form = ActionForm(formdata=None, expected_version=version)
        dispatch = None
        if allowed & {Action.DISPATCH, Action.ESCALATE}:
            dispatch = DispatchForm(formdata=None, expected_version=version)
            self._dispatch_choices(dispatch, ticket)
        colleagues = []
        if Action.ASSIGN in allowed:
            # Their roles in the same statement (can_work_on reads them): flat outer
            # joins, not a lazy load per colleague.
            staff = (
                perm.staff_with(perm.BACKOFFICE)
                .outerjoin(roles_users, roles_users.c.user_id == User.id)
                .outerjoin(Role, Role.id == roles_users.c.role_id)
                .options(contains_eager(User.roles))
            )
            colleagues = [
                u
                for u in db.session.scalars(staff).unique()
                if u.id != current_user.id and perm.can_work_on(u, ticket)
            ]
        merge_into = merge_candidates(ticket, current_user) if Action.MERGE in allowed else []
        return {
            "form": form,
            "dispatch": dispatch,
            "colleagues": colleagues,
            "merge_into": merge_into,
        }

    def _panel_customer(self, ticket: Ticket, allowed: set, version: int) -> dict:
        """The customer's orders and earlier tickets (inside the user's scope)."""
        return {"summary": customer_summary(ticket, current_user)}

    def _panel_canned(self, ticket: Ticket, allowed: set, version: int) -> dict | None:
        """The canned replies this user may insert (the picker without typing "/")."""
        if not allowed:
            return None
        return {"canned_replies": canned.usable_replies(current_user)}

    @staticmethod
    def _dispatch_choices(form: DispatchForm, ticket: Ticket) -> None:
        """The departments the ticket may be sent to (the actions panel's select)."""
        departments = db.session.scalars(
            select(Department).where(Department.active).order_by(Department.code)
        )
        # A Team ticket is already with its department; a responded one may go back to it.
        current = ticket.department_id if ticket.status is TicketStatus.TEAM else None
        form.department.choices = to_choices(
            [(d.id, f"{d.code} — {d}") for d in departments if d.id != current]
        )

    # --- canned replies ------------------------------------------------------

    def _canned_reply(self, reply_id) -> CannedReply | None:
        """A canned reply the user may insert, by id; None for anything else."""
        try:
            pk = int(reply_id)
        except (TypeError, ValueError):
            return None
        if not 0 < pk <= MAX_ID:
            return None
        return db.session.scalar(
            select(CannedReply).where(CannedReply.id == pk, canned.usable_scope(current_user))
        )

    def _canned_prefill(self, ticket: Ticket) -> dict:
        """`?canned=<id>` (the picker without JavaScript): the reply box starts with
        that text filled from the ticket; unknown ids are a message, not an error."""
        if "canned" not in request.args:
            return {}
        reply = self._canned_reply(request.args.get("canned"))
        if reply is None:
            flash(_("That canned reply is not available to you."), "warning")
            return {}
        filled = canned.fill(reply, ticket, current_user, ticket.customer.locale)
        form = ReplyForm(
            formdata=None,
            body=filled.text,
            canned_ids=str(reply.id),
            expected_version=ticket.version_id,
        )
        return {"reply": form, "missing": filled.missing}

    @expose("/<number>/canned")
    def canned_list(self, number: str):
        """The canned replies this user may insert on this ticket (the "/" picker)."""
        self._ticket(number)
        return jsonify(
            [
                {"id": r.id, "shortcut": r.shortcut, "title": r.title}
                for r in canned.usable_replies(current_user)
            ]
        )

    @expose("/<number>/canned/<reply_id>")
    def canned_text(self, number: str, reply_id: str):
        """One canned reply filled from this ticket: its text and the placeholders
        that had no value (left in the text, for the desk to highlight)."""
        ticket = self._ticket(number)
        reply = self._canned_reply(reply_id)
        if reply is None:
            abort(404)
        filled = canned.fill(reply, ticket, current_user, ticket.customer.locale)
        return jsonify({"id": reply.id, "text": filled.text, "missing": filled.missing})


PANELS = {
    "actions": DeskPanels._panel_actions,
    "customer": DeskPanels._panel_customer,
    "canned": DeskPanels._panel_canned,
}

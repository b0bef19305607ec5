"""The ticket desk: one ticket's conversation, timeline, context and actions.

Every change goes through `domain.tickets`; this module only checks that the
ticket is inside the user's scope, passes the version the page showed, commits
on success and rolls back on a DomainError. A stale page (ConflictError) is
answered 409 with the page redrawn around the user's unsent text.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from flask import (
    abort,
    current_app,
    flash,
    g,
    get_template_attribute,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_admin import BaseView, expose
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import contains_eager, joinedload

from ..domain import (
    ConflictError,
    DomainError,
    PermissionDenied,
    canned,
    notifications,
    presence,
    shipments,
    staff_notices,
    whatsapp_outbox,
    whatsapp_templates,
)
from ..domain import attachments as files
from ..domain import permissions as perm
from ..domain import tickets as lifecycle
from ..domain.tickets import Action
from ..extensions import db
from ..idle_polls import idle_poll, ticket_for_session
from ..models import (
    CannedReply,
    Department,
    Order,
    Priority,
    Role,
    Ticket,
    TicketAttachment,
    TicketMessage,
    TicketStatus,
    User,
)
from ..models.base import MAX_ID, utcnow
from ..models.enums import OPEN_STATUSES
from ..models.user import roles_users
from ..transactions import CertificationConflict, commit_or_conflict
from . import queues
from .base import StaffAccessMixin
from .desk_context import (
    customer_summary,
    last_customer_message,
    load_events,
    load_messages,
    merge_candidates,
    state_key,
)
from .desk_forms import (
    INTERNAL,
    PUBLIC,
    ActionForm,
    DispatchForm,
    MergeForm,
    ParcelForm,
    PriorityForm,
    ReplyForm,
    TemplateForm,
    assignee_from,
)
from .fields import to_choices
from .tickets import LIST_ENDPOINTS

POLL_BATCH = 50
# The actions of the desk's "Actions" card (replies and notes are under the conversation).
CARD_ACTIONS = frozenset(
    {Action.DISPATCH, Action.ESCALATE, Action.PRIORITY, Action.ASSIGN, Action.FINISH, Action.REOPEN}
)
# Those whose choices (departments, colleagues, tickets to merge into) the actions panel
# reads after the first paint.
PANEL_ACTIONS = frozenset({Action.DISPATCH, Action.ESCALATE, Action.ASSIGN, Action.MERGE})


def presence_text(people) -> str:
    """One line for the desk: who is replying, who else is viewing ("" when nobody)."""
    typing = [p.name for p in people if p.typing]
    viewing = [p.name for p in people if not p.typing]
    parts = []
    if typing:
        names = ", ".join(typing)
        parts.append(
            ngettext("%(names)s is replying…", "%(names)s are replying…", len(typing), names=names)
        )
    if viewing:
        parts.append(_("Also viewing: %(names)s", names=", ".join(viewing)))
    return " · ".join(parts)


class TicketDeskView(StaffAccessMixin, BaseView):
    """/admin/tickets/desk/<number>/ and its POST actions, poll and attachments."""

    def is_visible(self) -> bool:
        return False  # reached from the lists, not the menu

    def is_accessible(self) -> bool:
        return super().is_accessible() and bool(perm.visible_statuses(current_user))

    # --- loading -------------------------------------------------------------

    def _ticket(self, number: str) -> Ticket:
        """The ticket by number inside the user's desk scope (`desk_tickets`), else 404,
        with what the desk shows around it (customer and profile, assignee, department,
        order and product) in the same statement."""
        ticket = db.session.scalars(self._ticket_statement(number)).unique().first()
        if ticket is None:
            abort(404)
        return ticket

    @staticmethod
    def _ticket_statement(number: str):
        return (
            perm.desk_tickets(current_user)
            .where(Ticket.number == number)
            .options(
                joinedload(Ticket.customer).joinedload(User.profile),
                joinedload(Ticket.assignee),
                joinedload(Ticket.department),
                joinedload(Ticket.order).joinedload(Order.product),
            )
        )

    def _forms(self, ticket: Ticket, allowed: set, route=None, **given):
        version = {"expected_version": ticket.version_id}
        forms = {
            "template": self._template_form(ticket, route, given.get("template"), version),
            "reply": given.get("reply") or ReplyForm(formdata=None, **version),
            "dispatch": given.get("dispatch") or DispatchForm(formdata=None, **version),
            "priority": given.get("priority")
            or PriorityForm(formdata=None, priority=ticket.priority.value, **version),
            "action": ActionForm(formdata=None, **version),
        }
        for form in forms.values():
            if form is None:
                continue
            # A redrawn form keeps its text but must post the version now shown.
            form.expected_version.data = ticket.version_id
            form.expected_version.raw_data = [str(ticket.version_id)]
        reply = forms["reply"]
        choices = []
        if Action.STAFF_REPLY in allowed and not self._templates_only(route):
            choices.append((PUBLIC, _("Public reply")))
        if Action.NOTE in allowed:
            choices.append((INTERNAL, _("Internal note")))
        reply.visibility.choices = to_choices(choices)
        if reply.visibility.data not in {value for value, _label in choices} and choices:
            reply.visibility.data = choices[0][0]
        return forms

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

    # --- WhatsApp templates (outside the 24-hour window) ----------------------

    @staticmethod
    def _templates_only(route) -> bool:
        """WhatsApp allows only templates now and email cannot carry the reply either:
        the desk offers no free-text public reply, only the template picker."""
        return (
            route is not None
            and route.window_closed
            and (route.channel is None or route.channel.value == "whatsapp")
        )

    def _template_form(self, ticket: Ticket, route, given, version) -> TemplateForm | None:
        """The chosen template's form (`?wa_template=<id>`), its parameters prefilled
        from the ticket where a parameter names a known field; None when none is chosen."""
        if given is not None:
            return given
        if route is None or not route.window_closed or "wa_template" not in request.args:
            return None
        row = whatsapp_templates.get_active(request.args.get("wa_template"))
        if row is None:
            flash(_("Choose one of the approved templates."), "warning")
            return None
        template = whatsapp_templates.as_template(row)
        values = whatsapp_templates.known_values(ticket, current_user)
        form = TemplateForm(formdata=None, template_id=str(row.id), **version)
        for value in whatsapp_templates.prefill(template, values):
            form.params.append_entry(value)
        return form

    def _page_ticket(self, number: str) -> tuple[Ticket, dict]:
        """The desk page's ticket (`_ticket`) and, in the same statement, what its first
        paint shows beside it: the other staff here now (presence), the first open
        ticket on its parcel (the duplicate badge), the user's unread notices (the
        menu's count) and how many of them are about this ticket."""
        now = utcnow()
        stmt = (
            self._ticket_statement(number)
            .options(presence.viewing(current_user, now))
            .add_columns(
                lifecycle.first_open_on_same_order(),
                staff_notices.unread_count_column(current_user),
                staff_notices.unread_on_ticket_column(current_user),
            )
        )
        row = db.session.execute(stmt).unique().first()
        if row is None:
            abort(404)
        ticket, first_open, unread, unread_here = row
        # The menu shows the count after this visit reads the ticket's notices.
        g.notice_count = unread - unread_here
        return ticket, {
            "presence": presence.others_loaded(ticket, now),
            "duplicate_of": first_open if ticket.status in OPEN_STATUSES else None,
            "unread_here": unread_here,
        }

    def _render(
        self,
        ticket: Ticket,
        status: int = 200,
        conflict: str | None = None,
        missing: list[str] | None = None,
        loaded: dict | None = None,
        **forms,
    ):
        """The desk's first paint: the ticket, its conversation and reply box, the actions
        that need nothing more than the ticket, the parcel's timeline and the events.
        The panels that are not needed to read and answer (`PANELS`) come after it."""
        if loaded is None:  # a redrawn page after a POST: read them on their own
            loaded = {
                "presence": presence.others(ticket, current_user),
                "duplicate_of": lifecycle.duplicates_of([ticket]).get(ticket.id),
            }
        allowed = lifecycle.allowed_actions(ticket, current_user)
        events = load_events(ticket)
        messages = load_messages(ticket)
        route = notifications.reply_route(
            ticket, last_customer_message=last_customer_message(messages)
        )
        wa_templates = []
        if route.window_closed and Action.STAFF_REPLY in allowed:
            wa_templates = whatsapp_templates.active_templates()
        shown = self._forms(ticket, allowed, route, **forms)
        chosen = None
        if shown["template"] is not None:
            row = whatsapp_templates.get_active(shown["template"].template_id.data)
            chosen = whatsapp_templates.as_template(row) if row is not None else None
        origin = self._origin()
        previous, following = (
            queues.neighbours(current_user, origin, ticket.id) if origin else (None, None)
        )
        html = self.render(
            "admin/tickets/desk.html",
            origin=origin,
            previous_number=previous,
            presence=presence_text(loaded["presence"]),
            next_number=following,
            missing=missing or [],
            ticket=ticket,
            messages=messages,
            events=events,
            allowed=allowed,
            card_actions=bool(allowed & CARD_ACTIONS),
            more_actions=bool(allowed & PANEL_ACTIONS),
            Action=Action,
            forms=shown,
            reply_route=route,
            wa_templates=wa_templates,
            wa_chosen=chosen,
            conflict=conflict,
            sla_due=ticket.current_due,
            breached=ticket.sla_breached(utcnow()),
            state=state_key(ticket),
            last_id=messages[-1].id if messages else 0,
            can_orders=perm.has(current_user, perm.ORDERS_READ),
            can_customers=perm.has(current_user, perm.CUSTOMERS_READ),
            list_endpoint=LIST_ENDPOINTS[ticket.status],
            priorities=list(Priority),
            duplicate_of=loaded["duplicate_of"],
            panel_url=self._panel_url(ticket, origin),
        )
        return html, status

    @staticmethod
    def _panel_url(ticket: Ticket, origin: str | None):
        """URL of one panel of this page: the version the page shows goes with it, so a
        panel's forms decide on what the user saw (a later change is the usual 409)."""

        def url(part: str, **args) -> str:
            if origin:
                args["from"] = origin
            return url_for(
                ".panel", number=ticket.number, part=part, version=ticket.version_id, **args
            )

        return url

    # --- panels (after the first paint) ---------------------------------------

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

    # --- pages ---------------------------------------------------------------

    @expose("/")
    def index(self):
        """Open a ticket by its number (the home page's search box)."""
        number = (request.args.get("number") or "").strip().upper()
        if number:
            found = db.session.scalar(
                perm.desk_tickets(current_user).where(Ticket.number == number)
            )
            if found is not None:
                return redirect(url_for(".desk", number=found.number))
            flash(_("No ticket %(number)s in your lists.", number=number), "warning")
        return redirect(url_for("admin.index"))

    @expose("/<number>/")
    def desk(self, number: str):
        """The desk; opening it is recorded (the lists' unread mark, domain.presence)."""
        ticket, loaded = self._page_ticket(number)
        if ticket.merged_into_id is not None:
            flash(self._merged_text(ticket), "info")
            return redirect(url_for(".desk", number=ticket.merged_into.number))
        page = self._render(ticket, loaded=loaded, **self._canned_prefill(ticket))
        presence.mark_opened(ticket, current_user)
        if loaded["unread_here"]:
            staff_notices.mark_read(current_user, ticket)  # opening it is reading its notices
        db.session.commit()
        return page

    @staticmethod
    def _merged_text(ticket: Ticket) -> str:
        return _(
            "Ticket %(number)s was merged into %(into)s: its messages and events are there.",
            number=ticket.number,
            into=ticket.merged_into.number,
        )

    @staticmethod
    def _origin() -> str | None:
        """The list the agent came from (`queues.came_from`): the desk's `from`
        argument or form field, else the page that linked here."""
        return queues.came_from(request.values.get("from")) or queues.came_from(
            request.referrer and urlsplit(request.referrer)._replace(scheme="", netloc="").geturl()
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

    # --- actions -------------------------------------------------------------

    def _perform(
        self, number: str, form_cls, work, done: str, *, keep: str | None = None, on_conflict=None
    ):
        """Validate `form_cls`, run `work(ticket, form)`, commit, and answer.

        Invalid form (CSRF included): 400 with the form's errors. Conflict: 409,
        text kept. Not allowed: 403. Other DomainError: flashed; the reply form
        is redrawn with its text (422), other actions redirect back.
        """
        ticket = self._ticket(number)
        form = form_cls()
        if form_cls is DispatchForm:
            form.department.choices = to_choices(
                (d.id, d.code) for d in db.session.scalars(select(Department))
            )
        if form_cls is ReplyForm:
            form.visibility.choices = to_choices([(PUBLIC, PUBLIC), (INTERNAL, INTERNAL)])
        given = {keep: form} if keep else {}
        if not form.validate_on_submit():
            for field, errors in form.errors.items():
                for error in errors:
                    label = getattr(form, field).label.text if field != "csrf_token" else ""
                    flash(f"{label}: {error}" if label else error, "error")
            return self._render(ticket, 400, **given)
        before = ticket.status
        stored = []
        conflict = lifecycle.conflict_message(ticket)
        try:
            # A decision on the version the user saw: a Galera conflict (at a flush or
            # at COMMIT) is the usual conflict, never retried.
            try:
                work(ticket, form, stored)
            except CertificationConflict as exc:
                raise ConflictError(conflict) from exc
            commit_or_conflict(conflict)
        except PermissionDenied:
            self._discard(stored)
            db.session.rollback()
            abort(403)
        except ConflictError as exc:
            self._discard(stored)
            db.session.rollback()
            retried = on_conflict() if on_conflict else None
            if retried is not None:
                return retried
            return self._render(self._ticket(number), 409, conflict=str(exc), **given)
        except DomainError as exc:
            self._discard(stored)
            db.session.rollback()
            flash(str(exc), "error")
            if keep:
                return self._render(self._ticket(number), 422, **given)
            return redirect(url_for(".desk", number=number))
        flash(done, "success")
        origin = self._origin()
        if request.form.get("then") == "next" and origin:
            _prev, following = queues.neighbours(current_user, origin, ticket.id)
            if following:
                return redirect(url_for(".desk", number=following, **{"from": origin}))
            flash(_("That was the last ticket of this list."), "info")
            return redirect(origin)
        if perm.can_open_at_desk(current_user, ticket):
            if before is not ticket.status and not perm.can_see_ticket(current_user, ticket):
                flash(
                    _(
                        "Ticket %(number)s is now in %(status)s and has left your list; "
                        "while it is open you can still read it and add notes here.",
                        number=number,
                        status=ticket.status.label,
                    ),
                    "info",
                )
            return redirect(url_for(".desk", number=number, **({"from": origin} if origin else {})))
        flash(
            _(
                "Ticket %(number)s is now in %(status)s and has left your lists.",
                number=number,
                status=ticket.status.label,
            ),
            "info",
        )
        endpoint = LIST_ENDPOINTS[before]
        return redirect(url_for(f"{endpoint}.index_view"))

    @staticmethod
    def _discard(stored: list[TicketAttachment]) -> None:
        """Remove files stored for a change that was rolled back."""
        folder = Path(current_app.config["UPLOAD_FOLDER"])
        for attachment in stored:
            (folder / attachment.storage_key).unlink(missing_ok=True)

    @expose("/<number>/reply", methods=["POST"])
    def reply(self, number: str):
        """A reply or note; on a ticket merged meanwhile (before the page was sent, or
        while the reply raced the merge) it lands in the ticket that stays, never lost."""

        def work(ticket, form, stored):
            elsewhere = ticket.number != number  # the ticket was merged into this one
            finishing = request.form.get("then") == "finish" and not elsewhere
            if finishing and Action.FINISH not in lifecycle.allowed_actions(ticket, current_user):
                raise DomainError(_("You cannot finish this ticket; the reply was not sent."))
            if form.visibility.data == PUBLIC and self._templates_only(
                notifications.reply_route(ticket)
            ):
                raise DomainError(
                    _(
                        "The customer's 24-hour WhatsApp window has closed: "
                        "send one of the approved templates instead."
                    )
                )
            upload = form.attachment.data
            if upload is not None and getattr(upload, "filename", ""):
                upload.stream.seek(0)  # a second try reads the file again
                stored.append(files.store(upload.stream, upload.filename))
            lifecycle.post_message(
                ticket,
                current_user,
                form.body.data,
                internal=form.visibility.data == INTERNAL,
                expected_version=None if elsewhere else form.expected_version.data,
                attachments=stored,
            )
            canned.record_use((form.canned_ids.data or "").split(","), current_user)
            if finishing:
                # One step: the reply and the finish commit together, or neither does.
                lifecycle.finish(ticket, current_user)

        internal = request.form.get("visibility") == INTERNAL
        done = _("Internal note added.") if internal else _("Reply sent to the customer.")
        if request.form.get("then") == "finish":
            done = _("Reply sent and ticket finished.")

        def into_survivor():
            ticket = self._ticket(number)
            if ticket.merged_into_id is None:
                return None
            flash(self._merged_text(ticket), "info")
            return self._perform(ticket.merged_into.number, ReplyForm, work, done, keep="reply")

        return into_survivor() or self._perform(
            number, ReplyForm, work, done, keep="reply", on_conflict=into_survivor
        )

    @expose("/<number>/parcel", methods=["POST"])
    def parcel(self, number: str):
        """Link the ticket to its customer's parcel by resi (checked: check digit, known,
        the customer's own); the situation badge and the timeline follow."""

        def work(ticket, form, stored):
            lifecycle.link_parcel(
                ticket, form.resi.data, current_user, expected_version=form.expected_version.data
            )

        return self._perform(number, ParcelForm, work, _("Parcel linked to the ticket."))

    @expose("/<number>/merge", methods=["POST"])
    def merge(self, number: str):
        """Merge this ticket into another open ticket of its customer (the lifecycle's
        merge); the desk then shows the ticket that stays."""
        merged = {}

        def work(ticket, form, stored):
            wanted = (form.into.data or "").strip().upper()
            into = db.session.scalar(
                perm.visible_tickets(current_user).where(Ticket.number == wanted)
            )
            if into is None:
                raise DomainError(_("No ticket %(number)s in your lists.", number=wanted))
            lifecycle.merge(ticket, into, current_user, expected_version=form.expected_version.data)
            merged["into"] = into.number

        response = self._perform(number, MergeForm, work, _("Tickets merged."))
        if merged and not isinstance(response, tuple) and response.status_code in (302, 303):
            return redirect(url_for(".desk", number=merged["into"]))
        return response

    @expose("/<number>/whatsapp-template", methods=["POST"])
    def whatsapp_template(self, number: str):
        """Send a WhatsApp template with the parameters staff filled (outside the window)."""

        def work(ticket, form, stored):
            chosen = whatsapp_outbox.chosen_template(
                form.template_id.data, [entry.data or "" for entry in form.params]
            )
            lifecycle.post_message(
                ticket,
                current_user,
                whatsapp_templates.render(chosen.template, chosen.params),
                expected_version=form.expected_version.data,
                whatsapp_template=chosen,
            )

        return self._perform(
            number,
            TemplateForm,
            work,
            _("The template is queued for the customer on WhatsApp."),
            keep="template",
        )

    @expose("/<number>/dispatch", methods=["POST"])
    def dispatch(self, number: str):
        def work(ticket, form, stored):
            department = db.session.get(Department, form.department.data)
            if department is None:
                raise DomainError(_("Choose a department."))
            lifecycle.dispatch(
                ticket,
                department,
                current_user,
                note=form.note.data or "",
                expected_version=form.expected_version.data,
            )

        return self._perform(number, DispatchForm, work, _("Ticket sent to the department."))

    @expose("/<number>/priority", methods=["POST"])
    def priority(self, number: str):
        def work(ticket, form, stored):
            lifecycle.set_priority(
                ticket,
                Priority(form.priority.data),
                current_user,
                expected_version=form.expected_version.data,
            )

        return self._perform(number, PriorityForm, work, _("Priority changed."))

    @expose("/<number>/assign", methods=["POST"])
    def assign(self, number: str):
        def work(ticket, form, stored):
            lifecycle.assign(
                ticket,
                assignee_from(form.assignee.data),
                current_user,
                expected_version=form.expected_version.data,
            )

        return self._perform(number, ActionForm, work, _("Assignment changed."))

    @expose("/<number>/finish", methods=["POST"])
    def finish(self, number: str):
        def work(ticket, form, stored):
            lifecycle.finish(
                ticket,
                current_user,
                note=form.note.data or "",
                expected_version=form.expected_version.data,
            )

        return self._perform(number, ActionForm, work, _("Ticket finished."))

    @expose("/<number>/reopen", methods=["POST"])
    def reopen(self, number: str):
        def work(ticket, form, stored):
            lifecycle.reopen(
                ticket,
                current_user,
                note=form.note.data or "",
                expected_version=form.expected_version.data,
            )

        return self._perform(number, ActionForm, work, _("Ticket reopened."))

    # --- live updates and files ----------------------------------------------

    @expose("/<number>/poll")
    def poll(self, number: str):
        """New messages after `?after=<id>` as JSON; 304 while the ticket is unchanged.

        The ETag is the ticket's id and version (every message, note and action
        bumps the version), its situation and its parcel's events (a subquery of the
        ticket's read: shipments.timeline_mark), plus `after` and who else is here; the
        heartbeat is written about every other poll (presence.poll). An idle poll is
        answered 304 before this view by its short way (`_idle_desk_poll`: the ticket's
        row joined to the session's user, then its viewers). An answer carries the
        parcel's timeline and situation badge.
        """
        ticket, parcel_mark = self._polled(number)
        after = _poll_after()
        # Every poll is a presence heartbeat (domain/presence.py), written when due; who
        # else is here is part of the answer, so it is part of the ETag too.
        people, wrote = presence.poll(ticket, current_user, typing=_poll_typing())
        etag = _poll_etag(ticket, parcel_mark, after, people)
        if request.if_none_match.contains(etag):
            resp = current_app.response_class(status=304)
        else:
            render = get_template_attribute("admin/tickets/_macros.html", "message")
            messages = load_messages(ticket, after=after, limit=POLL_BATCH)
            resp = jsonify(
                {
                    "number": ticket.number,
                    "version": ticket.version_id,
                    "state": state_key(ticket),
                    "status": ticket.status.value,
                    "status_label": ticket.status.label,
                    "last_id": messages[-1].id if messages else after,
                    "messages": [{"id": m.id, "html": str(render(m, ticket))} for m in messages],
                    "presence": presence_text(people),
                    **self._parcel_json(ticket),
                }
            )
        if wrote:
            db.session.commit()  # after the answer is built: nothing above reloads
        resp.set_etag(etag)
        resp.headers["Cache-Control"] = "private, no-cache"
        return resp

    def _polled(self, number: str) -> tuple[Ticket, int]:
        """The ticket's row in the desk scope (else 404) and its parcel's mark."""
        row = db.session.execute(
            perm.desk_tickets(current_user)
            .where(Ticket.number == number)
            .add_columns(shipments.timeline_mark(Ticket.order_id))
        ).first()
        if row is None:
            abort(404)
        return row[0], row[1]

    @staticmethod
    def _parcel_json(ticket: Ticket) -> dict:
        """The situation badge and the parcel's tracking box as the desk draws them."""
        badge = get_template_attribute("_situation.html", "situation_badge")
        out = {"situation_html": str(badge(ticket.situation))}
        if ticket.order_id:
            order = db.session.scalar(
                select(Order).where(Order.id == ticket.order_id).options(joinedload(Order.product))
            )
            out["tracking_html"] = render_template(
                "admin/_tracking.html", shipment=shipments.shipment(order)
            ).strip()  # the box itself, replacing #tracking-timeline
        return out

    def _attachment(self, number: str, attachment_id: int) -> TicketAttachment:
        """A file of this ticket, after the same scope check as the desk itself; else 404."""
        ticket = self._ticket(number)
        if attachment_id > MAX_ID:
            abort(404)
        found = db.session.scalar(
            select(TicketAttachment)
            .join(TicketMessage, TicketAttachment.message_id == TicketMessage.id)
            .where(TicketAttachment.id == attachment_id, TicketMessage.ticket_id == ticket.id)
        )
        if found is None or not perm.can_open_at_desk(current_user, ticket):
            abort(404)
        return found

    @expose("/<number>/attachments/<int:attachment_id>")
    def attachment(self, number: str, attachment_id: int):
        """A file of this ticket: images inline, PDFs as a download."""
        return files.send(self._attachment(number, attachment_id))

    @expose("/<number>/attachments/<int:attachment_id>/thumbnail")
    def thumbnail(self, number: str, attachment_id: int):
        """The picture the conversation shows for an image attachment (404 for a PDF).

        The image itself, scaled by the browser into a fixed box (width/height on the
        <img>, object-fit in admin.css): Pillow is not a dependency, and attachments are
        at most ATTACHMENT_MAX_BYTES. Same authorization as `attachment`, so a thumbnail
        URL refuses exactly the people the file refuses."""
        found = self._attachment(number, attachment_id)
        if not files.is_image(found):
            abort(404)
        return files.send(found)


PANELS = {
    "actions": TicketDeskView._panel_actions,
    "customer": TicketDeskView._panel_customer,
    "canned": TicketDeskView._panel_canned,
}


# --- the idle poll's short way (backoffice/idle_polls.py) --------------------------------


def _poll_after() -> int:
    # Clamped: an id past 2**63 cannot be bound on SQLite, and no message has one.
    return min(max(request.args.get("after", default=0, type=int), 0), MAX_ID)


def _poll_typing() -> bool:
    return request.args.get("typing") == "1"


def _poll_etag(ticket, parcel_mark: int, after: int, people) -> str:
    """The desk poll's ETag: the ticket's version, situation and parcel's events, the
    messages asked for and who else is here (both ways compute it here)."""
    seen = ",".join(f"{p.user_id}{'t' if p.typing else ''}" for p in people)
    situation = ticket.situation.value if ticket.situation else ""
    return f"t{ticket.id}-v{ticket.version_id}-s{situation}-e{parcel_mark}-a{after}-p{seen}"


@idle_poll("ticket_desk.poll")  # the endpoint of TicketDeskView.poll (views/__init__.py)
def _idle_desk_poll(uniquifier: str, number: str) -> str | None:
    """The ETag of an idle desk poll from the ticket's row joined to the session's user
    and the ticket's viewers, writing the heartbeat when due as the full way does; None
    (the full way) for a ticket outside the user's lists or anything else it must judge."""
    user, ticket = ticket_for_session(
        uniquifier,
        number,
        Ticket.id,
        Ticket.version_id,
        Ticket.status,
        Ticket.department_id,
        Ticket.situation,
        shipments.timeline_mark(Ticket.order_id).label("parcel_mark"),
    )
    if user is None or not (perm.has(user, perm.BACKOFFICE) and perm.can_see_ticket(user, ticket)):
        return None  # a department admin's ticket off their list: `can_open_at_desk`'s
    people, wrote = presence.poll(ticket, user, typing=_poll_typing())
    if wrote:
        db.session.commit()  # kept whichever way answers: the full way sees it fresh
    return _poll_etag(ticket, ticket.parcel_mark, _poll_after(), people)

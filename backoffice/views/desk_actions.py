"""The desk's POST actions: reply or note, link a parcel, merge, a WhatsApp template,
dispatch, priority, assign, finish, reopen.

Every change goes through `domain.tickets`; this module only checks that the ticket is
inside the user's scope, passes the version the page showed, commits on success and
rolls back on a DomainError. A stale page (ConflictError) is answered 409 with the page
redrawn around the user's unsent text. A mixin of `TicketDeskView` (views/desk.py),
whose `_ticket`, `_render` and `_origin` it uses.
"""

from __future__ import annotations

from pathlib import Path

from flask import abort, current_app, flash, redirect, request, url_for
from flask_admin import expose
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from ..domain import (
    ConflictError,
    DomainError,
    PermissionDenied,
    canned,
    notifications,
    whatsapp_outbox,
    whatsapp_templates,
)
from ..domain import attachments as files
from ..domain import permissions as perm
from ..domain import tickets as lifecycle
from ..domain.tickets import Action
from ..extensions import db
from ..models import Department, Priority, Ticket, TicketAttachment
from ..transactions import CertificationConflict, commit_or_conflict
from . import queues
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


class DeskActions:
    """The POST actions of `TicketDeskView`."""

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

"""Inbound email held for review: staff with MAIL_REVIEW accept or reject it.

A message lands here (backoffice/channels/email_in.py) when its reply token is
forged, its sender is not the ticket's customer, the sender is a staff account,
or the sender's domain failed DMARC. Accepting posts it as the ticket's customer
(or its sender's, when no ticket was named); rejecting keeps it, never posted.
The list shows held mail only; the body is shown as text, escaped like every
customer's words.
"""

from __future__ import annotations

from flask import abort, flash, redirect, request, url_for
from flask_admin import expose
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy.orm import joinedload

from ..channels import email_in
from ..channels.email_parse import parse
from ..domain import DomainError, attachments
from ..domain import permissions as perm
from ..extensions import db
from ..i18n import TranslatedForm
from ..models import InboundEmail, InboundStatus
from .base import SecureModelView, enum_label
from .formatting import datetime_text


class ReviewForm(TranslatedForm):
    """Only the CSRF token: the decision is the URL (accept or reject)."""


class MailReviewView(SecureModelView):
    required_permission = perm.MAIL_REVIEW
    can_view_details = True
    details_template = "admin/mail_review/details.html"
    column_auto_select_related = False
    column_list = ["received_at", "sender", "subject", "reason", "ticket"]
    column_labels = {
        "received_at": _l("Received"),
        "sender": _l("Sender"),
        "subject": _l("Subject"),
        "reason": _l("Why it is held"),
        "ticket": _l("Ticket"),
    }
    column_formatters = {
        "received_at": lambda v, c, m, n: datetime_text(m.received_at),
        "reason": enum_label,
        "ticket": lambda v, c, m, n: m.ticket.number if m.ticket is not None else "—",
    }
    column_sortable_list = ["received_at", "sender"]
    column_searchable_list = ["sender", "subject"]
    column_default_sort = [("received_at", True), ("id", True)]

    def __init__(self, *args, **kwargs):
        super().__init__(InboundEmail, db, *args, **kwargs)

    def scope(self):
        return InboundEmail.status == InboundStatus.HELD

    def get_query(self):
        return super().get_query().options(joinedload(InboundEmail.ticket))

    @expose("/details/")
    def details_view(self):
        """The held mail as staff need it to decide: sender, ticket, the text, its files."""
        row = self.get_one(request.args.get("id"))
        mail = parse(row.raw)
        ticket = row.ticket
        return self.render(
            self.details_template,
            model=row,
            mail=mail,
            ticket=ticket,
            ticket_visible=ticket is not None and perm.can_see_ticket(current_user, ticket),
            form=ReviewForm(),
            return_url=self.get_url(".index_view"),
        )

    def _decide(self, verb):
        row = self.get_one(request.args.get("id"))
        form = ReviewForm()
        if not form.validate_on_submit():
            flash(_("The form expired or was incomplete; nothing changed."), "error")
            return redirect(url_for(".details_view", id=row.id))
        try:
            with attachments.removed_on_error():  # files of a post that rolls back
                result = verb(row, current_user)
                db.session.commit()
        except DomainError as exc:
            db.session.rollback()
            flash(str(exc), "error")
            return redirect(url_for(".details_view", id=row.id))
        return result

    @expose("/accept/", methods=["POST"])
    def accept_view(self):
        """Post the held mail (see `email_in.accept`); back to the list."""
        result = self._decide(email_in.accept)
        if not isinstance(result, email_in.inbound.Received):
            return result
        flash(_("Posted in ticket %(number)s.", number=result.ticket.number), "success")
        return redirect(url_for(".index_view"))

    @expose("/reject/", methods=["POST"])
    def reject_view(self):
        """Reject the held mail: never posted, never answered; back to the list."""
        result = self._decide(email_in.reject)
        if result is not None:
            return result
        flash(_("Rejected. Nothing was posted or sent."), "success")
        return redirect(url_for(".index_view"))

    def _handle_view(self, name, **kwargs):
        if name in ("accept_view", "reject_view") and request.method != "POST":
            abort(405)
        return super()._handle_view(name, **kwargs)

"""Sending and publishing an announcement, and the send log (ADMIN_CONTENT: the master admin).

The send page works in two steps. A GET form picks the audience and shows how
many consenting customers it holds right now (it changes nothing). The
confirmation is a POST with a CSRF token that carries what the admin saw: the
recipient count and how many times this announcement already went to this
audience. The send happens only if both still hold, so a double click, a
second tab or an audience that changed meanwhile sends nothing and says why;
repeating a send to the same audience needs an explicit tick. The domain
(`domain.announcements`) queues the emails and writes the log row; the view
commits.
"""

from __future__ import annotations

from flask import abort, flash, redirect, request, url_for
from flask_admin import expose
from flask_admin.model.template import EndpointLinkRowAction
from flask_babel import get_locale, ngettext
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from markupsafe import Markup, escape
from sqlalchemy import select
from sqlalchemy.orm import joinedload
from wtforms import BooleanField, Form, HiddenField, IntegerField, RadioField, SelectField
from wtforms.validators import AnyOf, InputRequired, NumberRange
from wtforms.widgets import HiddenInput

from ..domain import DomainError, PermissionDenied
from ..domain import announcements as ann
from ..domain import permissions as perm
from ..domain.announcements import Audience, AudienceKind
from ..domain.loyalty import Segment
from ..extensions import db
from ..i18n import TranslatedMeta
from ..models import Announcement, AnnouncementSend, Product
from ..transactions import commit_or_conflict
from .base import SecureModelView
from .fields import AdminForm, to_choices
from .filters import IdFilter
from .formatting import datetime_text

LOG_SHOWN = 50
# The send log's announcement filter is its first filter (see AnnouncementSendView).
LOG_FILTER_ARG = "flt0_0"


class AudienceForm(Form):
    """The GET form of the preview step (no CSRF: it only counts)."""

    Meta = TranslatedMeta

    audience = RadioField(
        _l("Audience"),
        choices=to_choices(
            [
                (AudienceKind.ALL.value, _l("All consenting customers")),
                (AudienceKind.SEGMENT.value, _l("Consenting customers in a loyalty segment")),
                (AudienceKind.SERVICE.value, _l("Consenting customers who ordered a service")),
            ]
        ),
        default=AudienceKind.ALL.value,
        validators=[InputRequired()],
    )
    segment = SelectField(
        _l("Loyalty segment"),
        choices=to_choices((s.value, s._labels()[s]) for s in Segment),
        validate_choice=False,
    )
    service = SelectField(_l("Service ordered"), validate_choice=False)

    def prepare(self) -> None:
        """Service choices are read per request: products come and go."""
        products = db.session.scalars(
            select(Product).order_by(Product.active.desc(), Product.position, Product.code)
        )
        locale = get_locale()
        lang = locale.language if locale else "id"
        inactive = _(" (inactive)")
        self.service.choices = to_choices(
            (str(p.id), f"{p.code} — {p.localized('name', lang)}" + ("" if p.active else inactive))
            for p in products
        )

    def chosen(self) -> Audience | None:
        """The audience asked for, or None with the reason in the form's errors."""
        if not self.validate():
            return None
        kind = self.audience.data
        value = {"segment": self.segment.data, "service": self.service.data}.get(kind)
        try:
            audience = Audience.parse(kind, value)
        except DomainError as exc:
            self.audience.errors = [str(exc)]
            return None
        if (
            audience.kind is AudienceKind.SERVICE
            and db.session.get(Product, audience.product_id) is None
        ):
            self.audience.errors = [_("Choose a valid audience.")]
            return None
        return audience


def audience_args(audience: Audience) -> dict:
    """The preview step's query string for `audience` (to come back to it)."""
    args = {"audience": audience.kind.value}
    if audience.kind is AudienceKind.SEGMENT:
        args["segment"] = audience.value
    elif audience.kind is AudienceKind.SERVICE:
        args["service"] = audience.value
    return args


class SendForm(AdminForm):
    """The confirmation: the audience, and what the admin saw when they confirmed."""

    audience = HiddenField(validators=[InputRequired()])
    value = HiddenField()
    expected_count = IntegerField(widget=HiddenInput(), validators=[NumberRange(min=0)])
    seen_sends = IntegerField(widget=HiddenInput(), validators=[NumberRange(min=0)])
    send_again = BooleanField(_l("Yes, send it again to this audience"))
    publish = BooleanField(_l("Also publish it on the portal home"))


class PublishForm(AdminForm):
    published = HiddenField(validators=[AnyOf(["1", "0"])])


class AnnouncementSendMixin:
    """The "Send / publish" page of one announcement, for the AnnouncementView."""

    column_extra_row_actions = [
        EndpointLinkRowAction("fa fa-paper-plane", ".send_view", title=_l("Send / publish"))
    ]
    list_template = "admin/announcements/list.html"

    def _announcement(self) -> Announcement:
        return self.get_one(request.args.get("id"))

    @expose("/send/", methods=["GET"])
    def send_view(self):
        """Step 1: choose an audience and see its count now. Changes nothing."""
        announcement = self._announcement()
        form = AudienceForm(request.args)
        form.prepare()
        context = {"audience": None, "count": None, "previous": [], "confirm": None}
        if "audience" in request.args:
            audience = form.chosen()
            if audience is not None:
                count = ann.audience_count(audience)
                previous = ann.previous_sends(announcement, audience)
                context.update(
                    audience=audience,
                    audience_label=audience.describe(),
                    count=count,
                    previous=previous,
                    confirm=SendForm(
                        formdata=None,
                        audience=audience.kind.value,
                        value=audience.value or "",
                        expected_count=count,
                        seen_sends=len(previous),
                    ),
                )
        log = db.session.scalars(
            ann.send_log(announcement.id)
            .options(joinedload(AnnouncementSend.actor))
            .limit(LOG_SHOWN)
        ).all()
        return self.render(
            "admin/announcements/send.html",
            announcement=announcement,
            form=form,
            publish_form=PublishForm(
                formdata=None, published="0" if announcement.published else "1"
            ),
            log=log,
            log_url=url_for("announcement_log.index_view", **{LOG_FILTER_ARG: announcement.id}),
            return_url=self.get_url(".index_view"),
            **context,
        )

    @expose("/send/confirm/", methods=["POST"])
    def send_confirm(self):
        """Step 2: queue the emails, if the audience still is what the admin saw.

        Refused (nothing sent, a flashed reason): a missing or wrong CSRF token, an
        unknown audience, a count that changed since the preview, a send to this
        audience that happened since the preview (a double click), or a repeat send
        without the "send again" tick. Concurrent confirmations of one announcement
        run one after the other (`previous_sends(lock=True)`).
        """
        announcement = self._announcement()
        form = SendForm()
        page = url_for(".send_view", id=announcement.id)
        if not form.validate_on_submit():
            for errors in form.errors.values():
                for error in errors:
                    flash(error, "error")
            return redirect(page)
        try:
            audience = Audience.parse(form.audience.data, form.value.data or None)
        except DomainError as exc:
            flash(str(exc), "error")
            return redirect(page)
        preview = redirect(url_for(".send_view", id=announcement.id, **audience_args(audience)))
        previous = ann.previous_sends(announcement, audience, lock=True)
        refusal = None
        sent_meanwhile = _(
            "This announcement was sent to this audience meanwhile, so nothing was "
            "sent now. Check the send log below."
        )
        if len(previous) != form.seen_sends.data:
            refusal = sent_meanwhile
        elif previous and not form.send_again.data:
            refusal = _(
                "This announcement already went to this audience on %(when)s. Nothing was "
                "sent; tick the box to send it again.",
                when=datetime_text(previous[-1].created_at),
            )
        else:
            count = ann.audience_count(audience)
            if count == 0:
                refusal = _("Nobody in this audience can receive it; nothing was sent.")
            elif count != form.expected_count.data:
                refusal = _(
                    "The audience changed since the preview: %(now)d recipients instead of "
                    "%(then)d. Nothing was sent; check the count and confirm again.",
                    now=count,
                    then=form.expected_count.data,
                )
        if refusal:
            db.session.rollback()
            flash(refusal, "error")
            return preview
        try:
            log = ann.send_announcement(announcement, audience, current_user, targeted=count)
            if form.publish.data:
                ann.publish(announcement, current_user)
            # Galera: a confirmation of this announcement committed on another node first.
            commit_or_conflict(sent_meanwhile)
        except PermissionDenied:
            db.session.rollback()
            abort(403)
        except DomainError as exc:
            db.session.rollback()
            flash(str(exc), "error")
            return preview
        flash(
            ngettext(
                "Sending started: %(num)d email for: %(audience)s. The mail worker "
                "delivers it; the send log shows how far it got.",
                "Sending started: %(num)d emails for: %(audience)s. The mail worker "
                "delivers them; the send log shows how far it got.",
                log.targeted,
                audience=log.audience_label,
            ),
            "success",
        )
        if form.publish.data:
            flash(_("The announcement is on the portal home."), "success")
        return redirect(page)

    @expose("/publish/", methods=["POST"])
    def publish_view(self):
        """Put the announcement on the portal home (published=1) or take it off (0)."""
        announcement = self._announcement()
        form = PublishForm()
        page = redirect(url_for(".send_view", id=announcement.id))
        if not form.validate_on_submit():
            flash(_("The form expired or was incomplete; nothing changed."), "error")
            return page
        try:
            if form.published.data == "1":
                ann.publish(announcement, current_user)
                message = _("The announcement is on the portal home.")
            else:
                ann.unpublish(announcement, current_user)
                message = _("The announcement is no longer on the portal home.")
            db.session.commit()
        except PermissionDenied:
            db.session.rollback()
            abort(403)
        flash(message, "success")
        return page


class AnnouncementFilter(IdFilter):
    """The sends of one announcement; options are read per request (SecureModelView)."""

    def __init__(self, name):
        super().__init__(AnnouncementSend.announcement_id, name)

    def load_options(self):
        rows = db.session.execute(
            select(Announcement.id, Announcement.title_id).order_by(Announcement.id.desc())
        ).all()
        return [(str(i), title) for i, title in rows]

    def apply(self, query, value, alias=None):
        return query.filter(self.get_column(alias) == value)


def _waiting(send: AnnouncementSend) -> Markup | int:
    if not send.queueing:
        return send.pending
    return Markup('{} <small class="text-muted">({})</small>').format(send.pending, _("queueing"))


def _announcement_link(view, context, model, name):
    url = url_for("announcements.send_view", id=model.announcement_id)
    return Markup('<a href="{}">{}</a>').format(url, escape(model.announcement.title_id))


class AnnouncementSendView(SecureModelView):
    """The send log: who sent what to whom, and what became of the emails. Read-only.

    Part of the announcements (docs/architecture.md §1), so not a menu entry of its own: the
    announcement list and each "Send / publish" page link to it.
    """

    required_permission = perm.ADMIN_CONTENT
    column_list = [
        "created_at",
        "announcement",
        "actor",
        "audience_label",
        "targeted",
        "queued",
        "sent",
        "failed",
        "unsubscribed",
        "pending",
    ]
    column_labels = {
        "created_at": _l("Sent at"),
        "announcement": _l("Announcement"),
        "actor": _l("Sent by"),
        "audience_label": _l("Audience"),
        "targeted": _l("Targeted"),
        "queued": _l("Queued"),
        "sent": _l("Sent"),
        "failed": _l("Failed"),
        "unsubscribed": _l("Unsubscribed"),
        "pending": _l("Waiting"),
    }
    column_formatters = {
        "created_at": lambda v, c, m, n: datetime_text(m.created_at),
        "announcement": _announcement_link,
        "actor": lambda v, c, m, n: m.actor.display_name if m.actor else "—",
        "pending": lambda v, c, m, n: _waiting(m),
    }
    column_sortable_list = ["created_at", "targeted", "sent", "failed", "unsubscribed"]
    column_default_sort = [("created_at", True), ("id", True)]
    column_searchable_list = ["audience_label"]
    column_filters = [AnnouncementFilter(_l("Announcement"))]
    column_auto_select_related = False

    def __init__(self, **kwargs):
        super().__init__(AnnouncementSend, db, **kwargs)

    def is_visible(self) -> bool:
        return False

    def get_query(self):
        return (
            super()
            .get_query()
            .options(joinedload(AnnouncementSend.announcement), joinedload(AnnouncementSend.actor))
        )

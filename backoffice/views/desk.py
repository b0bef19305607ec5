"""The ticket desk: one ticket's conversation, timeline, context and actions.

This module draws the page (its first paint) and loads the ticket inside the user's
scope; the view's other parts are mixins by what they do: `desk_panels` (what comes
after the first paint, and the canned replies), `desk_actions` (the POSTs, every change
through `domain.tickets`) and `desk_live` (the poll and the attachments). URLs and
endpoint names are the view's: `ticket_desk.<method>`.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import abort, flash, g, redirect, request, url_for
from flask_admin import BaseView, expose
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy.orm import joinedload, load_only

from ..domain import notifications, presence, staff_notices, whatsapp_templates
from ..domain import permissions as perm
from ..domain import tickets as lifecycle
from ..domain.tickets import Action
from ..extensions import db
from ..models import CustomerProfile, Order, Priority, Product, Ticket, User
from ..models.base import utcnow
from ..models.enums import OPEN_STATUSES
from . import queues
from .base import StaffAccessMixin
from .desk_actions import DeskActions
from .desk_context import (
    last_customer_message,
    load_events,
    load_messages,
    presence_text,
    state_key,
)
from .desk_forms import (
    INTERNAL,
    PUBLIC,
    ActionForm,
    DispatchForm,
    PriorityForm,
    ReplyForm,
    TemplateForm,
)
from .desk_live import DeskLive
from .desk_panels import PANEL_ACTIONS, DeskPanels
from .fields import to_choices
from .tickets import LIST_ENDPOINTS

# What the desk's statements load with the ticket: customer and profile, assignee,
# department, order and product (built once: loader options are immutable).
AROUND = (
    joinedload(Ticket.customer).joinedload(User.profile),
    joinedload(Ticket.assignee),
    joinedload(Ticket.department),
    joinedload(Ticket.order).joinedload(Order.product),
)
# ... and what the first paint reads of them: what it prints, what the reply route
# (notifications.reply_route, contacts.mailable) and the canned prefill read. The driver
# describes every column it is sent (~40 Python calls each, whatever the value): whole
# rows were 156 columns. A column left out is read when something asks for it.
PAGE_AROUND = (
    load_only(
        Ticket.number,
        Ticket.kind,
        Ticket.status,
        Ticket.priority,
        Ticket.subject,
        Ticket.customer_id,
        Ticket.order_id,
        Ticket.department_id,
        Ticket.assignee_id,
        Ticket.created_at,
        Ticket.first_response_due,
        Ticket.resolution_due,
        Ticket.sla_paused_at,
        Ticket.first_response_at,
        Ticket.finished_at,
        Ticket.rating,
        Ticket.merged_into_id,
        Ticket.situation,
        Ticket.version_id,
    ),
    joinedload(Ticket.customer)
    .load_only(
        User.id,
        User.email,
        User.name,
        User.phone,
        User.phone_key,
        User.active,
        User.locale,
        User.contact_only,
    )
    .joinedload(User.profile)
    .load_only(CustomerProfile.segment),
    joinedload(Ticket.assignee).load_only(User.id, User.name, User.email),
    joinedload(Ticket.department),
    joinedload(Ticket.order)
    .load_only(
        Order.number,
        Order.resi,
        Order.customer_id,
        Order.product_id,
        Order.origin,
        Order.destination,
        Order.weight_kg,
        Order.status,
        Order.price,
        Order.last_event,
        Order.last_event_at,
        Order.created_at,
    )
    .joinedload(Order.product)
    .load_only(Product.code, Product.eta_days),
)


def _user():
    """The signed-in user itself: each attribute read through Flask-Login's `current_user`
    proxy costs ~6 Python calls, and the desk's permission checks read it ~200 times."""
    return current_user._get_current_object()


# The actions of the desk's "Actions" card (replies and notes are under the conversation).
CARD_ACTIONS = frozenset(
    {Action.DISPATCH, Action.ESCALATE, Action.PRIORITY, Action.ASSIGN, Action.FINISH, Action.REOPEN}
)


class TicketDeskView(DeskPanels, DeskActions, DeskLive, StaffAccessMixin, BaseView):
    """/admin/tickets/desk/<number>/ and its panels, POST actions, poll and attachments."""

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
    def _ticket_statement(number: str, around=AROUND):
        return perm.desk_tickets(_user()).where(Ticket.number == number).options(*around)

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
            self._ticket_statement(number, PAGE_AROUND)
            .options(presence.viewing(_user(), now))
            .add_columns(
                lifecycle.first_open_on_same_order(),
                staff_notices.unread_count_column(_user()),
                staff_notices.unread_on_ticket_column(_user()),
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
        allowed = lifecycle.allowed_actions(ticket, _user())
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
            can_orders=perm.has(_user(), perm.ORDERS_READ),
            can_customers=perm.has(_user(), perm.CUSTOMERS_READ),
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
        presence.mark_opened(ticket, _user())
        if loaded["unread_here"]:
            staff_notices.mark_read(_user(), ticket)  # opening it is reading its notices
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

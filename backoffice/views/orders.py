"""Orders for customer service and the master admin: list, detail, status changes.

A status change goes through `domain.orders.change_status` (its transition
table decides); the form also carries the status the user saw, so two staff
moving one order at once cannot overwrite each other unnoticed.
"""

from __future__ import annotations

from flask import abort, flash, redirect, request, url_for
from flask_admin import expose
from flask_admin.contrib.sqla.filters import FilterLike
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import joinedload
from wtforms import HiddenField, SelectField, StringField
from wtforms.validators import InputRequired, Length, Optional

from ..domain import DomainError, PermissionDenied, shipments
from ..domain import orders as order_rules
from ..domain import permissions as perm
from ..extensions import db
from ..i18n import TranslatedForm
from ..models import Order, OrderEvent, OrderStatus, Ticket
from .base import SecureModelView, enum_label
from .fields import to_choices
from .filters import EnumFilter, LocalDateBetween
from .formatting import datetime_text, money_text, weight_text


class StatusForm(TranslatedForm):
    seen = HiddenField(validators=[InputRequired()])
    to = SelectField(_l("New status"), validators=[InputRequired()])
    note = StringField(_l("Note"), validators=[Optional(), Length(max=500)])


class EventForm(TranslatedForm):
    event = SelectField(_l("Event"), validators=[InputRequired()])
    occurred_at = StringField(
        _l("When"),
        validators=[Optional(), Length(max=40)],
        description=_l("e.g. 2026-12-01 14:05 (WIB) or with its offset; empty: now"),
    )
    location = StringField(_l("Place (hub or city)"), validators=[Optional(), Length(max=120)])
    note = StringField(_l("Note"), validators=[Optional(), Length(max=500)])


def _event_form(formdata=None) -> EventForm:
    form = EventForm(formdata=formdata)
    # A required select starts with an empty choice: nothing is chosen for the user.
    # Not `cancelled`: that is the status form's (orders.cancel), never an event by hand.
    kinds = ((k.value, k.label) for k in shipments.FEED_KINDS)
    form.event.choices = to_choices([("", "—"), *kinds])
    return form


def next_statuses(order: Order) -> list[OrderStatus]:
    return [s for s in OrderStatus if s in order_rules.ORDER_TRANSITIONS[order.status]]


class OrderView(SecureModelView):
    required_permission = perm.ORDERS_READ
    can_view_details = True
    details_template = "admin/orders/details.html"
    column_auto_select_related = False
    column_list = [
        "number",
        "resi",
        "customer",
        "product",
        "origin",
        "destination",
        "weight_kg",
        "status",
        "price",
        "created_at",
    ]
    column_labels = {
        "number": _l("Number"),
        "resi": _l("Tracking number"),
        "customer": _l("Customer"),
        "product": _l("Service"),
        "origin": _l("Origin"),
        "destination": _l("Destination"),
        "weight_kg": _l("Weight (kg)"),
        "status": _l("Status"),
        "price": _l("Price (Rp)"),
        "created_at": _l("Ordered"),
        "customer.name": _l("Customer name"),
        "customer.email": _l("Customer e-mail"),
        "receiver_name": _l("Receiver"),
    }
    column_formatters = {
        "customer": lambda v, c, m, n: m.customer.display_name,
        "product": lambda v, c, m, n: m.product.code,
        "status": enum_label,
        "price": lambda v, c, m, n: money_text(m.price),
        "weight_kg": lambda v, c, m, n: weight_text(m.weight_kg),
        "created_at": lambda v, c, m, n: datetime_text(m.created_at),
    }
    column_sortable_list = ["number", "status", "price", "created_at"]
    column_searchable_list = ["number", "resi", "customer.name", "customer.email", "receiver_name"]
    column_default_sort = [("created_at", True), ("id", True)]

    def __init__(self, *args, **kwargs):
        self.column_filters = [
            EnumFilter(Order.status, _l("Status"), OrderStatus),
            LocalDateBetween(Order.created_at, _l("Ordered")),
            FilterLike("product.code", _l("Service code")),
        ]
        super().__init__(Order, db, *args, **kwargs)

    def get_query(self):
        return super().get_query().options(joinedload(Order.customer), joinedload(Order.product))

    def _status_form(self, order: Order, formdata=None) -> StatusForm:
        form = StatusForm(formdata=formdata, seen=order.status.value)
        # A required select starts with an empty choice: nothing is chosen for the user.
        form.to.choices = to_choices(
            [("", "—"), *((s.value, s.label) for s in next_statuses(order))]
        )
        return form

    @expose("/details/")
    def details_view(self):
        """The order, its status history, its tickets (in scope) and the status form."""
        order = self.get_one(request.args.get("id"))
        events = db.session.scalars(
            select(OrderEvent)
            .where(OrderEvent.order_id == order.id)
            .options(joinedload(OrderEvent.actor))
            .order_by(OrderEvent.id)
        ).all()
        tickets = db.session.scalars(
            perm.visible_tickets(current_user)
            .where(Ticket.order_id == order.id)
            .order_by(Ticket.created_at.desc())
            .limit(20)
        ).all()
        can_update = perm.has(current_user, perm.ORDERS_UPDATE) and bool(next_statuses(order))
        return self.render(
            self.details_template,
            model=order,
            events=events,
            tickets=tickets,
            form=self._status_form(order) if can_update else None,
            event_form=_event_form() if perm.has(current_user, perm.ORDERS_UPDATE) else None,
            shipment=shipments.shipment(order),
            can_customers=perm.has(current_user, perm.CUSTOMERS_READ),
            return_url=self.get_url(".index_view"),
        )

    @expose("/status/", methods=["POST"])
    def status_view(self):
        """Change the order's status (ORDERS_UPDATE), if it is still what the user saw."""
        order = self.get_one(request.args.get("id"))
        if not perm.has(current_user, perm.ORDERS_UPDATE):
            abort(403)
        back = redirect(url_for(".details_view", id=order.id))
        form = self._status_form(order, formdata=request.form)
        # Any status is a valid choice here: the transition rules answer, in words.
        form.to.choices = to_choices((s.value, s.label) for s in OrderStatus)
        if not form.validate_on_submit():
            for errors in form.errors.values():
                for error in errors:
                    flash(error, "error")
            return back
        if form.seen.data != order.status.value:
            flash(
                _(
                    "Order %(number)s was changed by someone else meanwhile (it is now "
                    "%(status)s). Nothing was saved; check it and try again.",
                    number=order.number,
                    status=order.status.label,
                ),
                "error",
            )
            return back
        try:
            order_rules.change_status(
                order, OrderStatus(form.to.data), current_user, note=form.note.data or ""
            )
            db.session.commit()
        except PermissionDenied:
            db.session.rollback()
            abort(403)
        except DomainError as exc:
            db.session.rollback()
            flash(str(exc), "error")
            return back
        flash(
            _(
                "Order %(number)s is now %(status)s.",
                number=order.number,
                status=order.status.label,
            ),
            "success",
        )
        return back

    @expose("/event/", methods=["POST"])
    def event_view(self):
        """Add one tracking event by hand (ORDERS_UPDATE), through shipments.add_event."""
        order = self.get_one(request.args.get("id"))
        if not perm.has(current_user, perm.ORDERS_UPDATE):
            abort(403)
        back = redirect(url_for(".details_view", id=order.id))
        form = _event_form(formdata=request.form)
        if not form.validate_on_submit():
            for errors in form.errors.values():
                for error in errors:
                    flash(error, "error")
            return back
        try:
            shipments.add_event(
                order,
                form.event.data,
                current_user,
                occurred_at=(form.occurred_at.data or "").strip() or None,
                location=form.location.data or "",
                note=form.note.data or "",
            )
            db.session.commit()
        except PermissionDenied:
            db.session.rollback()
            abort(403)
        except DomainError as exc:
            db.session.rollback()
            flash(str(exc), "error")
            return back
        flash(_("The event was added to the parcel's timeline."), "success")
        return back

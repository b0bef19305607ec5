"""Customers, read-only: profile, loyalty segment, orders and tickets (CUSTOMERS_READ)."""

from __future__ import annotations

from flask import request
from flask_admin import expose
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import func, select
from sqlalchemy.orm import joinedload

from ..domain import permissions as perm
from ..extensions import db
from ..models import CustomerProfile, Order, Role, Ticket, User
from .base import SecureModelView
from .formatting import datetime_text

SHOWN = 50


def customer_role_ids() -> list[int]:
    return [r.id for r in db.session.scalars(select(Role)) if perm.PORTAL in (r.permissions or [])]


class CustomerView(SecureModelView):
    """Accounts with a portal role. Nothing here changes a customer."""

    required_permission = perm.CUSTOMERS_READ
    can_view_details = True
    details_template = "admin/customers/details.html"
    column_list = ["name", "email", "phone", "segment", "marketing_consent", "active", "created_at"]
    column_labels = {
        "name": _l("Name"),
        "email": _l("E-mail"),
        "phone": _l("Phone"),
        "segment": _l("Loyalty segment"),
        "marketing_consent": _l("News by e-mail"),
        "active": _l("Active"),
        "created_at": _l("Registered"),
        "profile.segment": _l("Loyalty segment"),
    }
    column_formatters = {
        "segment": lambda v, c, m, n: m.profile.segment if m.profile else "",
        "created_at": lambda v, c, m, n: datetime_text(m.created_at),
    }
    column_sortable_list = ["name", "email", "created_at"]
    column_searchable_list = ["name", "email", "phone"]
    column_filters = ["active", "marketing_consent", "profile.segment"]
    column_default_sort = [("created_at", True), ("id", True)]
    column_auto_select_related = False

    def scope(self):
        return User.roles.any(Role.id.in_(customer_role_ids()))

    def get_query(self):
        return super().get_query().options(joinedload(User.profile))

    @expose("/details/")
    def details_view(self):
        """The profile with its latest orders and the tickets this user may open."""
        customer = self.get_one(request.args.get("id"))
        orders = db.session.scalars(
            select(Order)
            .where(Order.customer_id == customer.id)
            .options(joinedload(Order.product))
            .order_by(Order.created_at.desc(), Order.id.desc())
            .limit(SHOWN)
        ).all()
        order_count = db.session.scalar(
            select(func.count()).select_from(Order).where(Order.customer_id == customer.id)
        )
        visible = perm.visible_tickets(current_user).where(Ticket.customer_id == customer.id)
        tickets = db.session.scalars(
            visible.options(joinedload(Ticket.department))
            .order_by(Ticket.created_at.desc(), Ticket.id.desc())
            .limit(SHOWN)
        ).all()
        ticket_count = db.session.scalar(select(func.count()).select_from(visible.subquery()))
        all_tickets = db.session.scalar(
            select(func.count()).select_from(Ticket).where(Ticket.customer_id == customer.id)
        )
        return self.render(
            self.details_template,
            model=customer,
            profile=db.session.get(CustomerProfile, customer.id),
            orders=orders,
            order_count=order_count,
            tickets=tickets,
            ticket_count=ticket_count,
            hidden_tickets=all_tickets - ticket_count,
            can_orders=perm.has(current_user, perm.ORDERS_READ),
            return_url=self.get_url(".index_view"),
        )

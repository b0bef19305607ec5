"""Customers, read-only: profile, loyalty segment, orders and tickets (CUSTOMERS_READ).

The loyalty segment is shown and filterable for everyone who may read
customers; the CSV export of customers with their loyalty figures is for
CUSTOMERS_EXPORT (the master admin) only. It streams like the ticket export
(backoffice/views/reports.py): keyset batches of plain tuples, every text cell
neutralised against spreadsheet formulas.
"""

from __future__ import annotations

from datetime import timedelta

from flask import abort, current_app, request
from flask_admin import expose
from flask_admin.contrib.sqla.filters import BaseSQLAFilter
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import func, select
from sqlalchemy.orm import joinedload

from ..domain import permissions as perm
from ..domain.loyalty import Segment
from ..extensions import db
from ..models import CustomerProfile, Order, Role, Ticket, User
from ..models.base import utcnow
from ..replica import stream
from .base import SecureModelView
from .exports import keyset_rows, stream_csv, yes_no
from .formatting import datetime_text
from .sqlhelpers import offset_minutes

SHOWN = 50


def customer_role_ids() -> list[int]:
    return [r.id for r in db.session.scalars(select(Role)) if perm.PORTAL in (r.permissions or [])]


def segment_condition(segment: Segment):
    """WHERE clause of the users in `segment`. A customer without a profile (not
    refreshed yet) is "new", as for announcements' audiences."""
    if segment is Segment.NEW:
        others = select(CustomerProfile.user_id).where(CustomerProfile.segment != Segment.NEW.value)
        return User.id.not_in(others)
    return User.id.in_(
        select(CustomerProfile.user_id).where(CustomerProfile.segment == segment.value)
    )


def segment_label(profile: CustomerProfile | None) -> str:
    value = profile.segment if profile is not None else Segment.NEW.value
    try:
        return Segment(value).label
    except ValueError:  # a segment this version does not know: show it as stored
        return value


class SegmentFilter(BaseSQLAFilter):
    """Loyalty segment equals; an unknown value is refused, not sent to SQL."""

    def __init__(self, name):
        # Lazy labels: Flask-Admin reads the options once, at start-up.
        super().__init__(User.id, name, options=[(s.value, s._labels()[s]) for s in Segment])

    def validate(self, value):
        return value in {s.value for s in Segment}

    def apply(self, query, value, alias=None):
        return query.filter(segment_condition(Segment(value)))

    def operation(self):
        return _l("equals")


# Each language by its own name, as the language switch shows it.
LANGUAGE_NAMES = {"id": "Bahasa Indonesia", "en": "English"}


def export_headers() -> list[str]:
    return [
        _("Id"),
        _("Name"),
        _("E-mail"),
        _("Phone"),
        _("Language"),
        _("Active"),
        _("News by e-mail"),
        _("Registered"),
        _("Loyalty segment"),
        _("Days since last order"),
        _("Orders in the window"),
        _("Spent in the window (Rp)"),
        _("Complaint rate"),
        _("Average rating"),
        _("Loyalty refreshed"),
        _("Loyalty segment code"),
    ]


def export_rows(conditions, batch: int):
    """Yield one list of cells per customer, `batch` rows at a time by id (keyset)."""
    columns = (
        User.id,
        User.name,
        User.email,
        User.phone,
        User.locale,
        User.active,
        User.marketing_consent,
        User.created_at,
        CustomerProfile.segment,
        CustomerProfile.recency_days,
        CustomerProfile.frequency,
        CustomerProfile.monetary,
        CustomerProfile.complaint_rate,
        CustomerProfile.avg_rating,
        CustomerProfile.refreshed_at,
    )
    shift = timedelta(minutes=offset_minutes())  # once, not per cell

    def local(value):
        return "" if value is None else (value + shift).replace(microsecond=0).isoformat(sep=" ")

    def num(value):
        return "" if value is None else value

    stmt = (
        select(*columns)
        .outerjoin(CustomerProfile, CustomerProfile.user_id == User.id)
        .where(*conditions)
    )
    for r in keyset_rows(stmt, User.id, batch):
        yield [
            r.id,
            r.name or "",
            r.email,
            r.phone or "",
            LANGUAGE_NAMES.get(r.locale or "", r.locale or ""),
            yes_no(r.active),
            yes_no(r.marketing_consent),
            local(r.created_at),
            str(Segment(r.segment or Segment.NEW.value).label),
            num(r.recency_days),
            num(r.frequency),
            num(r.monetary),
            num(r.complaint_rate),
            num(r.avg_rating),
            local(r.refreshed_at),
            r.segment or Segment.NEW.value,
        ]


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
        "segment": lambda v, c, m, n: segment_label(m.profile),
        "created_at": lambda v, c, m, n: datetime_text(m.created_at),
    }
    column_descriptions = {
        "segment": _l("Customers without loyalty figures yet count as New."),
    }
    column_sortable_list = ["name", "email", "created_at"]
    column_searchable_list = ["name", "email", "phone"]
    column_filters = ["active", "marketing_consent", SegmentFilter(_l("Loyalty segment"))]
    column_default_sort = [("created_at", True), ("id", True)]
    column_auto_select_related = False
    list_template = "admin/customers/list.html"

    def scope(self):
        return User.roles.any(Role.id.in_(customer_role_ids()))

    def get_query(self):
        return super().get_query().options(joinedload(User.profile))

    def render(self, template, **kwargs):
        """The list links its export (CUSTOMERS_EXPORT only), keeping an active segment filter."""
        if perm.has(current_user, perm.CUSTOMERS_EXPORT):
            segments = [
                value
                for idx, _name, value in kwargs.get("active_filters") or ()
                if isinstance(self._filters[idx], SegmentFilter)
            ]
            args = {"segment": segments[-1]} if len(set(segments)) == 1 else {}
            kwargs.setdefault("export_customers_url", self.get_url(".export_csv", **args))
        else:
            kwargs.setdefault("export_customers_url", None)
        return super().render(template, **kwargs)

    @expose("/export.csv")
    def export_csv(self):
        """Every customer (of `?segment=`, if given) with their loyalty figures, as a
        streamed CSV. CUSTOMERS_EXPORT only: reading the list is not enough."""
        if not perm.has(current_user, perm.CUSTOMERS_EXPORT):
            abort(403)
        conditions = [self.scope()]
        name = "customers"
        if request.args.get("segment"):
            try:
                segment = Segment(request.args["segment"])
            except ValueError:
                abort(400)
            conditions.append(segment_condition(segment))
            name = f"customers-{segment.value}"
        batch = int(current_app.config.get("CAREBOX_REPORT_BATCH", 2000))
        filename = f"{name}-{utcnow():%Y%m%d}.csv"

        rows = stream(export_rows(conditions, batch))
        return stream_csv(filename, export_headers(), rows, batch)

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
            segment_label=segment_label(customer.profile),
            orders=orders,
            order_count=order_count,
            tickets=tickets,
            ticket_count=ticket_count,
            hidden_tickets=all_tickets - ticket_count,
            can_orders=perm.has(current_user, perm.ORDERS_READ),
            return_url=self.get_url(".index_view"),
        )

"""The portal blueprint and what every portal view shares.

`get_owned_or_404` is the only way a view loads an object a customer owns
(ticket, order, attachment): it runs the scoped query of
`backoffice.domain.permissions` and answers 404 for anything else, so another
customer's object looks exactly like one that does not exist.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import wraps

from flask import Blueprint, abort, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_limiter.util import get_remote_address
from flask_login import current_user
from flask_security import auth_required
from sqlalchemy import Select, select

from backoffice.domain import permissions as perm
from backoffice.extensions import db
from backoffice.models import Order, Ticket, TicketAttachment, TicketMessage
from backoffice.models.base import MAX_ID

bp = Blueprint("portal", __name__)

# Ticket and order numbers look like CX-2026-000123 / ORD-2026-000042. Anything
# else cannot exist, so it is a 404 before the database is asked.
NUMBER_RE = re.compile(r"^[A-Z]{2,4}-\d{4}-\d{6,10}$")
PER_PAGE = 20


def lang() -> str:
    """The language of this request: `id` or `en`."""
    loc = get_locale()
    return loc.language if loc else "id"


def _ticket_scope(user, number: str) -> Select:
    return perm.customer_tickets(user).where(Ticket.number == number)


def _order_scope(user, number: str) -> Select:
    return perm.customer_orders(user).where(Order.number == number)


def _attachment_scope(user, attachment_id: int) -> Select:
    # Only files on public messages of the customer's own tickets.
    return (
        select(TicketAttachment)
        .join(TicketMessage, TicketAttachment.message_id == TicketMessage.id)
        .join(Ticket, TicketMessage.ticket_id == Ticket.id)
        .where(
            TicketAttachment.id == attachment_id,
            TicketMessage.internal.is_(False),
            perm.customer_tickets(user).whereclause,
        )
    )


OWNED: dict[str, Callable[..., Select]] = {
    "ticket": _ticket_scope,
    "order": _order_scope,
    "attachment": _attachment_scope,
}


def find_owned(kind: str, key, *options, columns=()):
    """The signed-in customer's object of `kind` with `key`, or None. With `columns`
    (SQL expressions read in the same statement): the row (object, *values), or None."""
    if not current_user.is_authenticated:
        return None
    if kind in ("ticket", "order") and not NUMBER_RE.match(key or ""):
        return None
    if kind == "attachment" and not 0 < key <= MAX_ID:
        return None
    stmt = OWNED[kind](current_user, key)
    if options:
        stmt = stmt.options(*options)
    if columns:
        return db.session.execute(stmt.add_columns(*columns).limit(1)).first()
    return db.session.scalars(stmt.limit(1)).first()


def get_owned_or_404(kind: str, key, *options):
    """Load a ticket (by number), order (by number) or attachment (by id) of the
    signed-in customer; 404 for anything that is not theirs. `options` are loader
    options (e.g. `load_only`) for views that need only a few columns."""
    obj = find_owned(kind, key, *options)
    if obj is None:
        abort(404)
    return obj


def wants_json() -> bool:
    accept = request.accept_mimetypes
    return accept["application/json"] > accept["text/html"]


def not_a_customer():
    """403 for signed-in accounts without the customer role (staff, mostly)."""
    message = _(
        "This page is for customer accounts. Staff accounts work on tickets and "
        "orders in the back office."
    )
    if wants_json():
        return {"error": _("Access denied"), "message": message}, 403
    link = url_for("admin.index") if perm.is_staff(current_user) else None
    return (
        render_template(
            "error.html",
            code=403,
            title=_("Access denied"),
            message=message,
            link=link,
            link_text=_("Go to the back office"),
        ),
        403,
    )


def customer_required(view):
    """Signed in (else the login page, keeping ?next=) and holding the portal
    permission (else 403 with an explanation)."""

    @wraps(view)
    def inner(*args, **kwargs):
        if not perm.has(current_user, perm.PORTAL):
            return not_a_customer()
        return view(*args, **kwargs)

    return auth_required("session")(inner)


def user_key() -> str:
    """Rate-limit key: the account when signed in, else the address."""
    if current_user.is_authenticated:
        return f"user:{current_user.id}"
    return f"addr:{get_remote_address()}"


def succeeded(response) -> bool:
    """Only requests that changed something use up a rate limit."""
    return response.status_code < 400


def page_arg() -> int:
    try:
        return max(1, min(int(request.args.get("page", "1")), 10_000))
    except ValueError:
        return 1


@bp.app_template_global()
def field_attrs(field, base: str, extra: dict, described: bool = False) -> dict:
    """HTML attributes of a form control: Bootstrap classes, aria links to help and errors."""
    attrs = dict(extra)
    ids = [f"{field.id}-help"] if described else []
    css = [base, attrs.pop("class_", "")]
    if field.errors:
        ids.append(f"{field.id}-errors")
        attrs["aria_invalid"] = "true"
        css.append("is-invalid")
    if ids:
        attrs["aria_describedby"] = " ".join(ids)
    attrs["class_"] = " ".join(c for c in css if c)
    return attrs

"""Orders: the customer's list, ordering a service at its tariff, one order's history."""

from __future__ import annotations

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from backoffice.domain import DomainError, PermissionDenied, shipments
from backoffice.domain import orders as order_rules
from backoffice.domain import permissions as perm
from backoffice.domain.orders import place_order
from backoffice.extensions import db, limiter
from backoffice.models import Order, OrderEvent, Product, ProductKind
from backoffice.transactions import retrying

from .base import (
    PER_PAGE,
    bp,
    customer_required,
    get_owned_or_404,
    lang,
    page_arg,
    user_key,
)
from .forms import CancelOrderForm, OrderForm, choice, parse_weight


def _services() -> list[Product]:
    stmt = (
        select(Product)
        .where(Product.active.is_(True), Product.kind == ProductKind.SERVICE)
        .order_by(Product.position, Product.id)
    )
    return list(db.session.scalars(stmt))


@bp.route("/orders")
@customer_required
def orders():
    page = page_arg()
    stmt = (
        perm.customer_orders(current_user)
        .options(selectinload(Order.product))
        .order_by(Order.created_at.desc(), Order.id.desc())
        .offset((page - 1) * PER_PAGE)
        .limit(PER_PAGE + 1)
    )
    rows = db.session.scalars(stmt).all()
    return render_template(
        "portal/orders.html", orders=rows[:PER_PAGE], page=page, has_more=len(rows) > PER_PAGE
    )


def _order_limit() -> str:
    return current_app.config["RATELIMIT_ORDER"]


def _placed(response) -> bool:
    """Only a placed order (the redirect to it) counts; previews and refusals do not."""
    return response.status_code in (302, 303)


@bp.route("/orders/new", methods=["GET", "POST"])
@limiter.limit(_order_limit, key_func=user_key, methods=["POST"], deduct_when=_placed)
@customer_required
def new_order():
    services = _services()
    by_code = {p.code: p for p in services}
    form = OrderForm()
    form.service.choices = [choice(p.code, p.localized("name", lang())) for p in services]
    if not form.is_submitted():
        if request.args.get("service") in by_code:
            form.service.data = request.args["service"]
        return render_template("portal/order_new.html", form=form, services=services, quote=None)

    ok = form.validate_on_submit()
    product = by_code.get(form.service.data or "")
    if product is None:
        form.service.errors = [*form.service.errors, _("Choose one of the listed services.")]
        ok = False
    weight = parse_weight(form.weight.data)
    out_of_range = (
        product is not None
        and weight is not None
        and not product.min_weight_kg <= weight <= product.max_weight_kg
    )
    if out_of_range:
        form.weight.errors = [
            *form.weight.errors,
            _(
                "%(service)s takes parcels from %(lo)s to %(hi)s kg.",
                service=product.localized("name", lang()),
                lo=_kg(product.min_weight_kg),
                hi=_kg(product.max_weight_kg),
            ),
        ]
        ok = False
    quote = product.price_for(weight) if ok else None
    if not ok or request.form.get("action") == "preview":
        return (
            render_template("portal/order_new.html", form=form, services=services, quote=quote),
            200 if ok else 400,
        )
    try:
        # Safe to repeat: a Galera conflict (the customer's loyalty profile, written by
        # an order of theirs committed on another node) rolled everything back.
        order = retrying(
            lambda: place_order(
                current_user,
                product,
                origin=form.origin.data,
                destination=form.destination.data,
                weight_kg=weight,
                receiver_name=form.receiver_name.data,
                receiver_phone=form.receiver_phone.data,
                notes=form.notes.data or "",
            ),
            what="placing an order",
        )
    except DomainError as exc:
        db.session.rollback()
        form.form_errors.append(str(exc))
        return (
            render_template("portal/order_new.html", form=form, services=services, quote=None),
            400,
        )
    flash(
        _(
            "Thank you! Your order %(number)s was placed. Its resi (tracking number) is %(resi)s.",
            number=order.number,
            resi=order.resi,
        ),
        "success",
    )
    return redirect(url_for("portal.order", number=order.number))


def _kg(value) -> str:
    return f"{value.normalize():f}"


@bp.route("/orders/<number>")
@customer_required
def order(number: str):
    obj = get_owned_or_404("order", number, selectinload(Order.product))
    events = db.session.scalars(
        select(OrderEvent).where(OrderEvent.order_id == obj.id).order_by(OrderEvent.id)
    ).all()
    return render_template(
        "portal/order.html",
        order=obj,
        events=events,
        s=shipments.shipment(obj),
        cancel_form=CancelOrderForm() if order_rules.can_cancel(obj, current_user) else None,
    )


@bp.route("/orders/<number>/cancel", methods=["POST"])
@customer_required
def cancel_order(number: str):
    """The customer cancels their own order before pickup (`orders.cancel`): once, however
    often the button is pressed; after pickup it is refused, saying what to do instead."""
    obj = get_owned_or_404("order", number)
    back = redirect(url_for("portal.order", number=obj.number))
    form = CancelOrderForm()
    if not form.validate_on_submit():
        for errors in form.errors.values():
            for error in errors:
                flash(error, "error")
        return back
    try:
        # Safe to repeat: cancel reads the order's status again under its lock.
        event = retrying(
            lambda: order_rules.cancel(obj, current_user, note=form.reason.data or ""),
            what="cancelling an order",
        )
    except (DomainError, PermissionDenied) as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return back
    if event is None:
        flash(_("Order %(number)s was cancelled already.", number=obj.number), "info")
    else:
        flash(
            _("Order %(number)s is cancelled. It will not be picked up.", number=obj.number),
            "success",
        )
    return back

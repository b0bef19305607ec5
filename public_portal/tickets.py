"""Tickets: file one, follow it as a chat, reply, close, reopen, rate.

Every change goes through `backoffice.domain.tickets`; the view commits, or
rolls back and shows the rule's message next to the field. The ticket page
works as plain forms; `portal-chat.js` adds live updates by polling
`ticket_messages`, which answers 304 while the ticket's version is unchanged.
"""

from __future__ import annotations

import uuid
from contextlib import suppress
from pathlib import Path

from flask import (
    abort,
    current_app,
    flash,
    get_template_attribute,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_security import auth_required
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload, lazyload, load_only, selectinload

from backoffice.domain import DomainError, shipments
from backoffice.domain import attachments as files
from backoffice.domain import permissions as perm
from backoffice.domain import tickets as lifecycle
from backoffice.domain.tickets import Action
from backoffice.extensions import db, limiter
from backoffice.i18n import choose_locale
from backoffice.idle_polls import SessionUser, idle_poll, read, ticket_statement
from backoffice.models import (
    Order,
    Ticket,
    TicketAttachment,
    TicketKind,
    TicketMessage,
    TicketStatus,
    User,
)
from backoffice.transactions import retrying
from backoffice.views.formatting import iso_datetime, when_text

from .base import (
    MAX_ID,
    NUMBER_RE,
    PER_PAGE,
    bp,
    customer_required,
    find_owned,
    get_owned_or_404,
    lang,
    page_arg,
    succeeded,
    user_key,
    wants_json,
)
from .forms import RateForm, ReplyForm, TicketForm, VersionForm, clean_text, one_line, upper

# What customers read: plain words, not the desk's list names.
CUSTOMER_STATUS = {
    TicketStatus.PROGRESS: _l("Received"),
    TicketStatus.TEAM: _l("Being handled by our team"),
    TicketStatus.RESPONDED: _l("Answered: waiting for you"),
    TicketStatus.FINISHED: _l("Closed"),
}


def status_label(status: TicketStatus) -> str:
    return str(CUSTOMER_STATUS[status])


def _file_limit() -> str:
    return current_app.config["RATELIMIT_TICKET_FILE"]


def _reply_limit() -> str:
    return current_app.config["RATELIMIT_TICKET_REPLY"]


def _store_upload(field) -> TicketAttachment | None:
    """The checked, stored attachment of `field`, None without one; errors go on the field."""
    upload = field.data
    if not upload or not getattr(upload, "filename", None):
        return None
    try:
        return files.store(upload.stream, upload.filename)
    except DomainError as exc:
        field.errors = [*field.errors, str(exc)]
        return None


def _discard(attachment: TicketAttachment | None) -> None:
    """Remove a stored file whose ticket or message was not saved."""
    if attachment is not None:
        with suppress(OSError):
            (Path(current_app.config["UPLOAD_FOLDER"]) / attachment.storage_key).unlink()


# --- list and filing ---------------------------------------------------------------


@bp.route("/tickets")
@customer_required
def tickets():
    page = page_arg()
    stmt = (
        perm.customer_tickets(current_user)
        .order_by(Ticket.created_at.desc(), Ticket.id.desc())
        .offset((page - 1) * PER_PAGE)
        .limit(PER_PAGE + 1)
    )
    rows = db.session.scalars(stmt).all()
    return render_template(
        "portal/tickets.html",
        tickets=rows[:PER_PAGE],
        page=page,
        has_more=len(rows) > PER_PAGE,
        status_label=status_label,
    )


def _recent_orders() -> list[Order]:
    stmt = perm.customer_orders(current_user).order_by(Order.id.desc()).limit(20)
    return list(db.session.scalars(stmt))


def _render_new(form: TicketForm, status: int = 200):
    return (
        render_template("portal/ticket_new.html", form=form, recent_orders=_recent_orders()),
        status,
    )


@bp.route("/tickets/new", methods=["GET", "POST"])
@limiter.limit(_file_limit, key_func=user_key, methods=["POST"], deduct_when=succeeded)
@customer_required
def new_ticket():
    form = TicketForm()
    if not form.is_submitted():
        # The chat box and the order page carry the question or the order over.
        args = request.args
        form.subject.data = (one_line(args.get("subject", "")) or "")[:200]
        form.body.data = (clean_text(args.get("body", "")) or "")[:2000]
        form.order_number.data = (upper(one_line(args.get("order_number", ""))) or "")[:20]
        # The tracking page's "tell us" link carries the resi (checked when sent).
        form.resi.data = (upper(one_line(args.get("resi", ""))) or "")[:40]
        kind = args.get("kind")
        form.kind.data = kind if kind in {k.value for k in TicketKind} else ""
        form.submission.data = uuid.uuid4().hex
        return _render_new(form)

    ok = form.validate_on_submit()
    # A form sent again is not looked up first: its token fails at the insert
    # (uq_ticket_submission, answered below), so a first sending costs no query for it.
    order = None
    if ok and form.order_number.data:
        order = find_owned("order", form.order_number.data)
        if order is None:
            form.order_number.errors = [
                *form.order_number.errors,
                _("You have no order with this number. Check it on your orders page."),
            ]
            ok = False
    if ok and form.resi.data:
        parcel, problem = shipments.customer_parcel(form.resi.data, current_user)
        if problem:
            form.resi.errors = [*form.resi.errors, problem]
            ok = False
        elif order is not None and order.id != parcel.id:
            form.resi.errors = [
                *form.resi.errors,
                _(
                    "This resi belongs to your order %(other)s, not to order %(number)s. "
                    "Give one of the two, or both of the same order.",
                    other=parcel.number,
                    number=order.number,
                ),
            ]
            ok = False
        else:
            order = parcel
    attachment = _store_upload(form.attachment) if ok else None
    if not ok or form.attachment.errors:
        _discard(attachment)
        return _render_new(form, 400)
    try:
        # Safe to repeat: a Galera conflict (another node's commit) files it again.
        # The number is read before the commit, which expires the ticket (no reload).
        number = retrying(
            lambda: (
                lifecycle.file_ticket(
                    current_user,
                    TicketKind(form.kind.data),
                    form.subject.data,
                    form.body.data,
                    order=order,
                    attachments=[attachment] if attachment else [],
                    submission=form.submission.data or None,
                ).number
            ),
            what="filing a ticket",
        )
    except IntegrityError:
        # The same form filed concurrently (a double click): the other request won.
        db.session.rollback()
        _discard(attachment)
        already = _filed_by(form.submission.data)
        if already is not None:
            return _filed(already.number, again=True)
        form.submission.data = uuid.uuid4().hex  # someone else's token: a fresh form
        form.form_errors.append(_("This form was already sent. Check it and send it again."))
        return _render_new(form, 400)
    except DomainError as exc:
        db.session.rollback()
        _discard(attachment)
        form.form_errors.append(str(exc))
        return _render_new(form, 400)
    return _filed(number)


def _filed_by(submission: str | None) -> Ticket | None:
    """The current customer's ticket filed by the form with this one-time token."""
    if not submission:
        return None
    return db.session.scalar(
        select(Ticket).where(Ticket.submission == submission, Ticket.customer_id == current_user.id)
    )


def _filed(number: str, *, again: bool = False):
    if again:
        message = _("Your ticket %(number)s was already filed; here it is.", number=number)
    else:
        message = _("Thank you! Your ticket %(number)s was filed. We answer here.", number=number)
    flash(message, "success")
    return redirect(url_for("portal.ticket", number=number))


# --- the conversation ------------------------------------------------------------------


def public_messages(ticket: Ticket, after: int = 0) -> list[TicketMessage]:
    """The customer-visible messages of `ticket` (never internal notes), oldest first."""
    stmt = (
        select(TicketMessage)
        .where(
            TicketMessage.ticket_id == ticket.id,
            TicketMessage.internal.is_(False),
            TicketMessage.id > after,
        )
        .options(
            # The author's name only: not their roles (User.roles loads eagerly by default).
            joinedload(TicketMessage.author).options(
                load_only(User.id, User.name), lazyload(User.roles)
            ),
            selectinload(TicketMessage.attachments),
            # The WhatsApp delivery state is the desk's (it loads eagerly there), not the portal's.
            lazyload(TicketMessage.whatsapp_send),
        )
        .order_by(TicketMessage.id)
    )
    return list(db.session.scalars(stmt).unique())


def author_label(message: TicketMessage) -> str:
    if not message.from_staff:
        return _("You")
    name = (message.author.name if message.author else "").split(" ")[0]
    # "Rina from carebox": a person, and whom they work for ("Rina, carebox" read oddly).
    return _("%(name)s from carebox", name=name) if name else _("carebox customer care")


def _channel_badge(channel):
    """The channel badge as the page shows it (templates/_channel.html), for live updates."""
    return get_template_attribute("_channel.html", "channel_badge")(channel)


def _message_json(message: TicketMessage) -> dict:
    return {
        "id": message.id,
        "body": message.body,
        "mine": not message.from_staff,
        "author": author_label(message),
        "at": iso_datetime(message.created_at),
        "at_label": when_text(message.created_at),
        "channel": message.channel.value,
        "channel_html": str(_channel_badge(message.channel)),
        "attachments": [
            {
                "url": url_for("portal.attachment", attachment_id=a.id),
                "name": a.filename,
                "image": a.content_type.startswith("image/"),
                "size": a.size,
            }
            for a in message.attachments
        ],
    }


def _render_ticket(ticket: Ticket, status: int = 200, **forms):
    messages = public_messages(ticket)
    actions = lifecycle.allowed_actions(ticket, current_user)
    order = db.session.get(Order, ticket.order_id) if ticket.order_id else None
    parcel = shipments.shipment(order) if order else None
    reply_form = forms.get("reply_form") or ReplyForm()
    rate_form = forms.get("rate_form") or RateForm()
    return (
        render_template(
            "portal/ticket.html",
            ticket=ticket,
            order=order,
            parcel=parcel,
            messages=messages,
            last_id=messages[-1].id if messages else 0,
            can_reply=Action.CUSTOMER_REPLY in actions,
            can_close=Action.CLOSE in actions,
            can_reopen=Action.REOPEN in actions,
            can_rate=Action.RATE in actions,
            reply_form=reply_form,
            rate_form=rate_form,
            status_label=status_label,
            author_label=author_label,
            poll_url=url_for("portal.ticket_messages", number=ticket.number),
            etag=f'"{_etag(ticket, len(parcel.events) if parcel else 0)}"',
        ),
        status,
    )


def _merged(ticket: Ticket):
    """A merged ticket's pages lead to the ticket it was merged into, saying so."""
    into = ticket.merged_into
    flash(
        _(
            "Ticket %(number)s was joined with your ticket %(into)s: the conversation "
            "continues here.",
            number=ticket.number,
            into=into.number,
        ),
        "info",
    )
    return redirect(url_for("portal.ticket", number=into.number))


@bp.route("/tickets/<number>")
@customer_required
def ticket(number: str):
    found = get_owned_or_404("ticket", number)
    if found.merged_into_id is not None:
        return _merged(found)
    return _render_ticket(found)


def _etag(ticket: Ticket, parcel_mark: int, language: str | None = None) -> str:
    # The version changes with every message, note and status change of the ticket; the
    # situation and the parcel's events (shipments.timeline_mark) when tracking moves; the
    # language is part of it because the labels are translated.
    situation = ticket.situation.value if ticket.situation else ""
    return f"t{ticket.id}-v{ticket.version_id}-s{situation}-e{parcel_mark}-{language or lang()}"


_IDLE_CHAT = ticket_statement(
    Ticket.id,
    Ticket.version_id,
    Ticket.situation,
    Ticket.customer_id,
    shipments.timeline_mark(Ticket.order_id).label("parcel_mark"),
    user_columns=(User.locale,),
)


@idle_poll("portal.ticket_messages")
def _idle_chat_poll(uniquifier: str, number: str) -> str | None:
    """The ETag of an idle chat poll from the ticket's row joined to the session's user
    (backoffice/idle_polls.py); None (the full way) for anything but their own ticket."""
    if not NUMBER_RE.match(number):
        return None
    rows = read(_IDLE_CHAT, uniquifier=uniquifier, number=number)
    if not rows:
        return None
    user, ticket = SessionUser(rows), rows[0]
    if not perm.is_customers_ticket(user, ticket):
        return None
    language = choose_locale(user.locale).split("_")[0]
    return _etag(ticket, ticket.parcel_mark, language)


def _parcel_json(ticket: Ticket) -> dict:
    """The parcel's box as the page draws it (status, promise, timeline) and the situation
    badge, for a chat that stays open while tracking events arrive."""
    badge = get_template_attribute("_situation.html", "situation_badge")
    out = {"situation_html": str(badge(ticket.situation))}
    if ticket.order_id:
        order = db.session.scalar(
            select(Order).where(Order.id == ticket.order_id).options(joinedload(Order.product))
        )
        parcel = shipments.shipment(order)
        out["parcel_html"] = render_template("portal/_shipment.html", s=parcel).strip()
    return out


@bp.route("/tickets/<number>/messages")
@customer_required
def ticket_messages(number: str):
    """Live updates: 304 while the ticket and its parcel are unchanged, else the public
    messages after `?after=<id>` with the status, the situation and the parcel's box.
    One indexed query for the 304 (the parcel's mark is a subquery of it)."""
    found = find_owned(
        "ticket",
        number,
        load_only(
            Ticket.id,
            Ticket.number,
            Ticket.status,
            Ticket.version_id,
            Ticket.customer_id,
            Ticket.order_id,
            Ticket.situation,
        ),
        columns=[shipments.timeline_mark(Ticket.order_id)],
    )
    if found is None:
        abort(404)
    ticket, parcel_mark = found
    etag = _etag(ticket, parcel_mark)
    if etag in request.if_none_match:
        resp = current_app.response_class(status=304)
    else:
        try:
            after = min(max(0, int(request.args.get("after", "0"))), 2**62)
        except ValueError:
            after = 0
        resp = jsonify(
            status=ticket.status.value,
            status_label=status_label(ticket.status),
            version=ticket.version_id,
            messages=[_message_json(m) for m in public_messages(ticket, after)],
            **_parcel_json(ticket),
        )
    resp.set_etag(etag)
    resp.headers["Cache-Control"] = "private, no-cache"
    return resp


# --- changes ---------------------------------------------------------------------------


def _done(ticket: Ticket, message: str):
    flash(message, "success")
    return redirect(url_for("portal.ticket", number=ticket.number))


def _refused(ticket: Ticket, message: str):
    flash(message, "error")
    return redirect(url_for("portal.ticket", number=ticket.number))


@bp.route("/tickets/<number>/reply", methods=["POST"])
@limiter.limit(_reply_limit, key_func=user_key, deduct_when=succeeded)
@customer_required
def reply(number: str):
    ticket = get_owned_or_404("ticket", number)
    if ticket.merged_into_id is not None and not wants_json():
        return _merged(ticket)
    form = ReplyForm()
    ok = form.validate_on_submit()
    attachment = _store_upload(form.attachment) if ok else None
    if ok and not form.attachment.errors:
        try:
            # Safe to repeat: posting checks again what the ticket allows now.
            message = retrying(
                lambda: lifecycle.post_message(
                    ticket,
                    current_user,
                    form.body.data,
                    attachments=[attachment] if attachment else [],
                ),
                what="a customer's reply",
            )
        except DomainError as exc:
            db.session.rollback()
            form.body.errors = [*form.body.errors, str(exc)]
            gone = Action.CUSTOMER_REPLY not in lifecycle.allowed_actions(ticket, current_user)
            if gone and not wants_json():
                _discard(attachment)
                return _refused(ticket, str(exc))  # the reply form is gone: say it on top
        else:
            if wants_json():
                return jsonify(ok=True, message=_message_json(message), version=ticket.version_id)
            return redirect(url_for("portal.ticket", number=ticket.number) + f"#m{message.id}")
    _discard(attachment)
    if wants_json():
        errors = {name: [str(e) for e in f.errors] for name, f in form._fields.items() if f.errors}
        if form.csrf_token.errors:
            errors["csrf_token"] = [_("The form expired. Reload the page and try again.")]
        if form.form_errors:
            errors["form"] = [str(e) for e in form.form_errors]
        return jsonify(ok=False, errors=errors), 400
    return _render_ticket(ticket, 400, reply_form=form)


def _version_action(number: str, operation, done_message: str):
    """Close or reopen the customer's own ticket, from the version their page showed."""
    ticket = get_owned_or_404("ticket", number)
    form = VersionForm()
    if not form.validate_on_submit():
        return _refused(ticket, _("The form expired. Please try again."))
    try:
        operation(ticket, current_user, expected_version=form.version.data)
    except DomainError as exc:
        db.session.rollback()
        return _refused(ticket, str(exc))
    db.session.commit()
    return _done(ticket, done_message)


@bp.route("/tickets/<number>/close", methods=["POST"])
@customer_required
def close(number: str):
    return _version_action(
        number, lifecycle.finish, _("Your ticket is closed. You can reopen it within 7 days.")
    )


@bp.route("/tickets/<number>/reopen", methods=["POST"])
@customer_required
def reopen(number: str):
    return _version_action(
        number, lifecycle.reopen, _("Your ticket is open again. Tell us what is still wrong.")
    )


@bp.route("/tickets/<number>/rate", methods=["POST"])
@customer_required
def rate(number: str):
    ticket = get_owned_or_404("ticket", number)
    form = RateForm()
    if form.validate_on_submit():
        try:
            lifecycle.rate(ticket, current_user, int(form.rating.data), form.comment.data or "")
        except DomainError as exc:
            db.session.rollback()
            return _refused(ticket, str(exc))  # e.g. rated already: the form is gone
        else:
            db.session.commit()
            return _done(ticket, _("Thank you for rating our help!"))
    return _render_ticket(ticket, 400, rate_form=form)


@bp.route("/attachments/<int:attachment_id>")
@auth_required("session")
def attachment(attachment_id: int):
    """A ticket file, to its customer, or to staff who may see the ticket; else 404."""
    found = find_owned("attachment", attachment_id)
    if found is None and perm.is_staff(current_user) and attachment_id <= MAX_ID:
        staff_copy = db.session.get(TicketAttachment, attachment_id)
        if staff_copy is not None:
            message = db.session.get(TicketMessage, staff_copy.message_id)
            ticket = db.session.get(Ticket, message.ticket_id)
            if perm.can_open_at_desk(current_user, ticket):
                found = staff_copy
    if found is None:
        abort(404)
    return files.send(found)

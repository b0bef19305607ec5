"""Transactional email about tickets and orders, queued in the outbox.

Each function is called by the lifecycle code (`domain.tickets`,
`domain.orders`) right after the change it reports, so the email rows are
part of the same transaction: committed with the change, or not at all.

Every email is rendered in its recipient's language (`user.locale`), as plain
text and as autoescaped HTML (`templates/email/`): user-written values such as
subjects and replies are escaped there. Internal notes never reach a template:
`message_posted` ignores them before rendering anything. The emails of a filing
(`ticket_filed`, `ticket_reached_department`) are queued unrendered (`send_later`) and
rendered by the outbox worker, so that filing a ticket renders no template.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app, render_template
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import func, select

from ..extensions import db
from ..models import (
    MessageChannel,
    Order,
    OrderEvent,
    Ticket,
    TicketMessage,
    TicketStatus,
    TrackingEventKind,
    User,
    WhatsAppSendKind,
    WhatsAppTemplateUse,
)
from ..models.base import utcnow
from . import DomainError
from . import permissions as perm
from .links import TokenState, absolute_url, sign, verify
from .outbox import enqueue, enqueue_template

RATING_PURPOSE = "rate"


def _lang(user: User) -> str:
    langs = current_app.config["LANGUAGES"]
    return user.locale if user.locale in langs else current_app.config["BABEL_DEFAULT_LOCALE"]


def send_to(
    user: User,
    template: str,
    subject: Callable[[], str],
    headers: dict[str, str] | None = None,
    **context,
) -> None:
    """Render `email/<template>.txt/.html` in `user`'s language and queue it for them.

    `subject` is called under the recipient's locale, so its gettext is theirs.
    """
    lang = _lang(user)
    with force_locale(lang):
        title = str(subject())
        ctx = {"recipient": user, "subject": title, "lang": lang, **context}
        text = render_template(f"email/{template}.txt", **ctx)
        html = render_template(f"email/{template}.html", **ctx)
    recipient = (user.name, user.email) if user.name else user.email
    enqueue(recipient, title, text, html, headers=headers)


def send_later(
    user: User,
    template: str,
    subject: Callable[[], str],
    headers: dict[str, str] | None = None,
    **context,
) -> None:
    """As `send_to`, rendered by the outbox worker (outbox.enqueue_template): `context`
    holds JSON values, and callables among them are called under the recipient's locale
    like `subject` (labels in their language). The template's `recipient` is their
    `display_name` and `contact_only`."""
    lang = _lang(user)
    with force_locale(lang):
        title = str(subject())
        ctx = {k: v() if callable(v) else v for k, v in context.items()}
    ctx["recipient"] = {"display_name": user.display_name, "contact_only": user.contact_only}
    recipient = (user.name, user.email) if user.name else user.email
    enqueue_template(recipient, title, template, lang, ctx, headers=headers)


def _ticket_facts(ticket: Ticket) -> dict:
    """What the worker-rendered emails print of a ticket (JSON: the subject as typed)."""
    return {"number": ticket.number, "subject": ticket.subject}


def _about(ticket: Ticket, automatic: bool = True, **known) -> dict:
    """What every email about a ticket carries: headers that make it answerable by email
    and threaded (channels/email_threads.py), and whether a reply by email lands.
    `known`: `last_email` when the caller knows it (ticket_headers)."""
    from ..channels.email_threads import reply_domain, ticket_headers

    return {
        "headers": ticket_headers(ticket, automatic=automatic, **known),
        "replyable": bool(reply_domain()),
        "register_url": absolute_url("/register"),
    }


def _ticket_url(ticket: Ticket) -> str:
    return absolute_url(f"/tickets/{ticket.number}")


def _customer(ticket: Ticket) -> User | None:
    """The ticket's customer, when email can reach them (active, a real address)."""
    from .contacts import mailable  # contacts sends through this module

    customer = ticket.customer
    return customer if customer is not None and customer.active and mailable(customer) else None


def ticket_filed(ticket: Ticket, first_message: TicketMessage | None = None) -> None:
    """The customer hears that their ticket arrived (number and link).

    A ticket that a routing rule sent straight to a department also tells
    that department's admins. `first_message`, the ticket's only message, threads the
    email without looking for the customer's last email in the database.
    """
    known = {}
    if first_message is not None:
        email = first_message.channel is MessageChannel.EMAIL and not first_message.from_staff
        known["last_email"] = first_message.external_id if email else None
    customer = _customer(ticket)
    if customer is not None:
        send_later(
            customer,
            "ticket_filed",
            lambda: _("[%(number)s] We received your ticket", number=ticket.number),
            ticket=_ticket_facts(ticket),
            ticket_url=_ticket_url(ticket),
            **_about(ticket, **known),
        )
    if ticket.status is TicketStatus.TEAM:
        ticket_reached_department(ticket, new=True, **known)


WHATSAPP_WINDOW = timedelta(hours=24)  # WhatsApp's customer-service window


@dataclass
class ReplyRoute:
    """How a staff reply reaches the customer: `channel` None means only on the portal.

    On WhatsApp, `kind` says free text (inside the 24-hour window, open until
    `window_ends_at`) or the approved reply template (`template` its name, `spec`
    the template with its parameters); `window_ends_at` is also set when the
    window has closed and no reply template is configured (the reply then goes by
    email when it can). `whatsapp` says the customer is reachable there at all
    (templates chosen at the desk can go).
    """

    channel: MessageChannel | None
    kind: WhatsAppSendKind | None = None
    window_ends_at: datetime | None = None
    template: str | None = None
    spec: object | None = None  # whatsapp_templates.Template
    whatsapp: bool = False

    @property
    def window_closed(self) -> bool:
        """The customer wrote on WhatsApp and the 24-hour window has closed."""
        return self.whatsapp and self.kind is not WhatsAppSendKind.TEXT

    def window_left(self, now: datetime | None = None) -> tuple[int, int] | None:
        """(hours, minutes) until the window closes; None when it is closed or unknown."""
        if self.window_ends_at is None:
            return None
        seconds = int((self.window_ends_at - (now or utcnow())).total_seconds())
        return divmod(seconds // 60, 60) if seconds > 0 else None


def _last_customer_message(ticket: Ticket) -> TicketMessage | None:
    stmt = (
        select(TicketMessage)
        .where(TicketMessage.ticket_id == ticket.id, ~TicketMessage.from_staff)
        .order_by(TicketMessage.id.desc())
        .limit(1)
    )
    return db.session.scalars(stmt).first()


def whatsapp_window_ends(customer: User) -> datetime | None:
    """When the 24-hour window of the customer's latest WhatsApp message closes (any ticket)."""
    last = db.session.scalar(
        select(func.max(TicketMessage.created_at)).where(
            TicketMessage.author_id == customer.id,
            TicketMessage.channel == MessageChannel.WHATSAPP,
            ~TicketMessage.from_staff,
        )
    )
    return last + WHATSAPP_WINDOW if last is not None else None


def reply_route(
    ticket: Ticket, now: datetime | None = None, *, last_customer_message=...
) -> ReplyRoute:
    """The one rule for where a staff reply goes: back the way the customer last wrote.

    The customer's latest message on this ticket came by WhatsApp (and the channel
    is configured, the customer active with a phone): WhatsApp, as free text while
    the 24-hour window is open, else as the reply template
    (`whatsapp_templates.for_use(REPLY)`, in the customer's language). Otherwise
    (or with no template outside the window): email, when the address can
    receive it; else only the portal.

    `last_customer_message`: that message when the caller has it loaded already
    (None: the customer never wrote); left out, it is looked up.
    """
    from ..channels.whatsapp import enabled
    from .whatsapp_outbox import reply_template

    now = now or utcnow()
    customer = ticket.customer
    email = MessageChannel.EMAIL if _customer(ticket) is not None else None
    last = last_customer_message
    if last is ...:
        last = _last_customer_message(ticket)
    if (
        last is None
        or last.channel is not MessageChannel.WHATSAPP
        or customer is None
        or not customer.active
        or not customer.phone_key
        or not enabled()
    ):
        return ReplyRoute(email)
    ends = whatsapp_window_ends(customer)
    wa = MessageChannel.WHATSAPP
    if ends is not None and now < ends:
        return ReplyRoute(wa, WhatsAppSendKind.TEXT, ends, whatsapp=True)
    template = reply_template(ticket)
    if template is not None:
        kind = WhatsAppSendKind.TEMPLATE
        return ReplyRoute(wa, kind, ends, template.name, spec=template, whatsapp=True)
    return ReplyRoute(email, None, ends, whatsapp=True)


def message_posted(message: TicketMessage, whatsapp_template=None) -> None:
    """A staff member's public reply goes to the customer (`reply_route`); a customer's
    message is a notice for the ticket's assignee (domain/staff_notices.py). A message
    of the system (the auto-finish warning) goes the same way, under its own subject.

    Internal notes and the customer's own messages return before any rendering.
    On WhatsApp the reply is queued in the WhatsApp outbox (once per message) and
    recorded as a WhatsApp message; by email it is rendered and queued as before.
    `whatsapp_template` (a `whatsapp_outbox.Chosen`, from the desk's picker) sends
    the reply as that template; the customer must be reachable on WhatsApp.
    A customer who chose WhatsApp notifications and is answered by email hears of
    the reply on WhatsApp too (the `staff_replied` template, once per reply).
    """
    from .whatsapp_outbox import enqueue_notification, enqueue_reply

    if not message.internal and not message.from_staff:
        from . import staff_notices  # it sends its digests through this module

        staff_notices.customer_replied(message.ticket, message.created_at)
    if message.internal or not message.from_staff:
        return
    ticket = message.ticket
    route = reply_route(ticket, message.created_at)
    if whatsapp_template is not None:
        if not route.whatsapp:
            raise DomainError(_("This customer cannot be reached on WhatsApp."))
        enqueue_reply(message, route, whatsapp_template)
        return
    if route.channel is MessageChannel.WHATSAPP:
        enqueue_reply(message, route)
        return
    if ticket.customer is not None and not message.by_system:
        enqueue_notification(
            ticket.customer,
            WhatsAppTemplateUse.STAFF_REPLIED,
            f"staff_replied:{message.id}",
            _whatsapp_values(ticket, message.author, balasan=message.body),
            ticket=ticket,
        )
    customer = _customer(ticket)
    if customer is None or route.channel is None:
        return
    if message.by_system:  # carebox's own message: the auto-finish warning
        template, subject = (
            "finish_warning",
            lambda: _("[%(number)s] We will close your ticket soon", number=ticket.number),
        )
    else:
        template, subject = (
            "staff_reply",
            lambda: _("[%(number)s] New reply to your ticket", number=ticket.number),
        )
    send_to(
        customer,
        template,
        subject,
        ticket=ticket,
        message=message,
        ticket_url=_ticket_url(ticket),
        **_about(ticket, automatic=False),
    )


def finish_warning_text(ticket: Ticket, cal, finish_at: datetime) -> str:
    """The auto-finish warning (domain/autofinish.py) in the customer's language, with
    the moment of the finish in the ticket's calendar zone."""
    from babel.dates import format_datetime

    lang = _lang(ticket.customer) if ticket.customer is not None else "id"
    when = format_datetime(cal.to_local(finish_at), "EEEE d MMMM y, HH:mm", locale=lang)
    with force_locale(lang):
        return _(
            "We have not heard from you about this ticket. If we still do not, we will "
            "close it in one working day, on %(when)s %(zone)s. Reply to this message "
            "to keep it open.",
            when=when,
            zone=cal.abbr,
        )


def _whatsapp_values(ticket: Ticket, agent: User | None, **extra) -> dict:
    from .whatsapp_templates import known_values

    staff = agent if isinstance(agent, User) and perm.is_staff(agent) else None  # not SYSTEM
    return known_values(ticket, staff, **extra)


def rating_token(ticket: Ticket, score: int) -> str:
    """A signed one-click token rating `ticket` with `score` on behalf of its customer."""
    return sign(RATING_PURPOSE, {"t": ticket.id, "c": ticket.customer_id, "s": int(score)})


def ticket_finished(ticket: Ticket, actor: User | None = None) -> None:
    """The customer hears that staff finished their ticket, with one-click rating links.

    A customer who closes their own ticket is not emailed about it. One who chose
    WhatsApp notifications also gets the `ticket_finished` template with a rating
    link, once per finish.
    """
    from .whatsapp_outbox import enqueue_notification

    owner = ticket.customer
    if owner is None or (actor is not None and actor.id == owner.id):
        return
    if ticket.rating is None and ticket.finished_at is not None:
        enqueue_notification(
            owner,
            WhatsAppTemplateUse.TICKET_FINISHED,
            f"finished:{ticket.id}:{ticket.finished_at:%Y%m%d%H%M%S}",
            _whatsapp_values(
                ticket,
                actor,
                tautan_rating=absolute_url(f"/email/rate/{rating_token(ticket, 5)}"),
            ),
            ticket=ticket,
        )
    customer = _customer(ticket)
    if customer is None:
        return
    rating_urls = []
    if ticket.rating is None:
        rating_urls = [
            (score, absolute_url(f"/email/rate/{rating_token(ticket, score)}"))
            for score in range(1, 6)
        ]
    send_to(
        customer,
        "ticket_finished",
        lambda: _("[%(number)s] Your ticket is finished", number=ticket.number),
        ticket=ticket,
        rating_urls=rating_urls,
        ticket_url=_ticket_url(ticket),
        **_about(ticket),
    )


def ticket_merged(ticket: Ticket, into: Ticket) -> None:
    """The customer hears that their ticket was merged into another one, and where the
    conversation goes on (in their language, through the outbox), once per merge.

    The channel is `reply_route`'s, as for a staff reply: a customer who last wrote on
    WhatsApp is told there (text inside the 24-hour window, else the reply template)
    and not emailed as well; anyone else by email."""
    route = reply_route(into)  # the messages of both tickets are in `into` now
    if route.channel is MessageChannel.WHATSAPP:
        from .whatsapp_outbox import enqueue_notice

        with force_locale(_lang(into.customer)):
            text = _(
                "[%(number)s] Your ticket continues as %(into)s",
                number=ticket.number,
                into=into.number,
            )
        enqueue_notice(into, route, f"ticket_merged:{ticket.id}", f"{text}\n{_ticket_url(into)}")
        return
    customer = _customer(ticket)
    if customer is None:
        return
    send_to(
        customer,
        "ticket_merged",
        lambda: _(
            "[%(number)s] Your ticket continues as %(into)s", number=ticket.number, into=into.number
        ),
        ticket=ticket,
        into=into,
        ticket_url=_ticket_url(into),
        **_about(into),
    )


def department_admins(department_id: int, staff: list[User] | None = None) -> list[User]:
    """Active users who see the Team list of exactly this department (its admins), by id.
    `staff`: staff_notices.department_staff's, when read."""
    from .staff_notices import department_staff

    roles = {r for r, ps in perm.ROLE_PERMISSIONS.items() if perm.TICKETS_DEPARTMENT in ps}
    if staff is None:
        staff = department_staff(department_id)
    return [u for u in staff if any(r.name in roles for r in u.roles)]


def ticket_reached_department(
    ticket: Ticket, actor: User | None = None, new: bool = False, **known
) -> None:
    """The admins of the ticket's department hear it arrived (dispatch, escalation, route).

    The actor who moved it there is not told about their own move. `known`: as _about's;
    `new`: the ticket was filed in this transaction (no notice of it to refresh).
    """
    if ticket.department_id is None:
        return
    from . import staff_notices  # it sends its digests through this module

    # The department's people once, for the in-app notices and the admins' emails.
    staff = staff_notices.department_staff(ticket.department_id)
    staff_notices.reached_department(ticket, actor, staff=staff, new=new)
    department = ticket.department
    link = absolute_url(f"/admin/tickets/team/?search={ticket.number}")
    about = None  # the same headers for every admin: looked up once, when one is mailed
    for admin in department_admins(ticket.department_id, staff):
        if actor is not None and admin.id == actor.id:
            continue
        about = about or _about(ticket, **known)
        name = department.name_en if _lang(admin) == "en" else department.name_id
        send_later(
            admin,
            "department_ticket",
            lambda: _("[%(number)s] New ticket for your department", number=ticket.number),
            ticket=_ticket_facts(ticket),
            kind_label=lambda: ticket.kind.label,
            priority_label=lambda: ticket.priority.label,
            department_name=name,
            admin_url=link,
            **about,
        )


def order_placed(order: Order) -> None:
    """The customer gets the confirmation of their new order: its number, its resi and
    the links to follow it (an email needs no consent: the customer asked for it)."""
    customer = order.customer
    if customer is None or not customer.active or not _mailable(customer):
        return
    send_to(
        customer,
        "order_placed",
        lambda: _(
            "[%(number)s] Your order is placed: resi %(resi)s",
            number=order.number,
            resi=order.resi,
        ),
        order=order,
        order_url=absolute_url(f"/orders/{order.number}"),
        track_url=absolute_url(f"/track/{order.resi}"),
    )


def _mailable(user: User) -> bool:
    from .contacts import mailable  # contacts sends through this module

    return mailable(user)


def parcel_events(notices, now: datetime | None = None) -> int:
    """The tracking events `shipments.record_events` tells customers about
    (`shipment_notices.Notice`, already checked by `warrants_customer_notification`):
    each "out for delivery" goes to the parcel's customer as the `out_for_delivery`
    WhatsApp template, when they chose WhatsApp notifications; once per event (its
    send key). How many queued.

    Costs one query when no such template is set up; otherwise one query for the
    customers and one for the keys already queued per 500 events, and a template
    lookup per language (a statement budget in tests/test_whatsapp_notifications.py).
    """
    from .whatsapp_outbox import enqueue_notifications
    from .whatsapp_templates import for_use, one_line

    out = TrackingEventKind.OUT_FOR_DELIVERY
    due = [n for n in notices if n.kind is out]
    if not due or for_use(WhatsAppTemplateUse.OUT_FOR_DELIVERY, None) is None:
        return 0
    found = {}
    ids = sorted({n.order_id for n in due})
    for start in range(0, len(ids), 500):
        stmt = (
            select(Order, User)
            .join(User, User.id == Order.customer_id)
            .where(Order.id.in_(ids[start : start + 500]), User.whatsapp_consent, User.active)
        )
        found.update({order.id: (order, user) for order, user in db.session.execute(stmt)})
    items, labels = [], {}
    for n in due:
        if n.order_id not in found:
            continue
        order, user = found[n.order_id]
        lang = _lang(user)
        if lang not in labels:
            with force_locale(lang):
                labels[lang] = str(out.label)
        place = f" ({n.location})" if n.location else ""
        values = {
            "nama_pelanggan": user.name or None,
            "resi": order.resi,
            "status_kiriman": one_line(f"{labels[lang]}{place}"),
            "tautan_tiket": absolute_url(f"/track/{order.resi}"),
        }
        key = f"parcel:{order.id}:{n.kind.value}:{n.occurred_at:%Y%m%d%H%M%S}"
        items.append((user, key, values))
    queued = enqueue_notifications(WhatsAppTemplateUse.OUT_FOR_DELIVERY, items)
    return queued


def order_status_changed(order: Order, event: OrderEvent | None = None) -> None:
    """The customer hears their order's new status (the staff's note is not included).

    Not when the status change's tracking event is one the shipment update tells a
    customer who asked for those (domain/shipment_notices.py): one email, not two."""
    from .shipments import STATUS_EVENT, warrants_customer_notification

    customer = order.customer
    if customer is None or not customer.active:
        return
    kind = STATUS_EVENT.get(order.status)
    if customer.shipment_updates and kind is not None and warrants_customer_notification(kind):
        return
    send_to(
        customer,
        "order_status",
        lambda: _(
            "[%(number)s] Your order is now: %(status)s",
            number=order.number,
            status=order.status.label,
        ),
        order=order,
        order_url=absolute_url(f"/orders/{order.number}"),
    )


class RatingOutcome(enum.StrEnum):
    RATEABLE = "rateable"  # check only: a valid token, the ticket waits for its rating
    RATED = "rated"
    ALREADY_RATED = "already_rated"
    NOT_FINISHED = "not_finished"
    EXPIRED = "expired"
    INVALID = "invalid"


def check_rating_token(token: str) -> tuple[RatingOutcome, Ticket | None, int | None]:
    """What a one-click rating link would do, changing nothing (for its confirmation page).

    Returns (RATEABLE, ticket, the link's score) when the ticket may be rated
    now; ALREADY_RATED with the score it has; NOT_FINISHED; or EXPIRED /
    INVALID (tampered, another customer's, an inactive customer) with no ticket.
    """
    checked = verify(RATING_PURPOSE, token, current_app.config["CAREBOX_RATING_LINK_DAYS"])
    if checked.state is TokenState.EXPIRED:
        return RatingOutcome.EXPIRED, None, None
    payload = checked.payload
    try:
        ticket_id, customer_id, score = int(payload["t"]), int(payload["c"]), int(payload["s"])
    except (KeyError, TypeError, ValueError):
        return RatingOutcome.INVALID, None, None
    ticket = db.session.get(Ticket, ticket_id)
    if ticket is None or ticket.customer_id != customer_id or not 1 <= score <= 5:
        return RatingOutcome.INVALID, None, None
    customer = ticket.customer
    if customer is None or not customer.active:
        return RatingOutcome.INVALID, None, None
    if ticket.rating is not None:
        return RatingOutcome.ALREADY_RATED, ticket, ticket.rating
    if ticket.status is not TicketStatus.FINISHED:
        return RatingOutcome.NOT_FINISHED, ticket, None
    return RatingOutcome.RATEABLE, ticket, score


def rate_from_token(
    token: str, score: int | None = None, comment: str = "", now=None
) -> tuple[RatingOutcome, Ticket | None, int | None]:
    """Rate the ticket a rating link names, once: `score` (default: the link's) and `comment`.

    A tampered or expired token, a token for another customer, or a ticket
    that is rated already or no longer finished changes nothing. A score or
    comment the rules refuse raises DomainError; a concurrent rating of the
    same ticket raises ConflictError (the caller rolls back). Flushes, never commits.
    """
    from . import tickets  # tickets imports this module

    outcome, ticket, link_score = check_rating_token(token)
    if outcome is not RatingOutcome.RATEABLE:
        return outcome, ticket, link_score
    score = link_score if score is None else score
    tickets.rate(ticket, ticket.customer, score, comment, now=now or utcnow())
    return RatingOutcome.RATED, ticket, ticket.rating


def sla_warning(ticket: Ticket) -> None:
    """80 % of the clock that matters is used (domain.sla.send_warnings): its assignee
    hears it, or, unassigned, its department's admins."""
    from . import sla

    if ticket.assignee is not None and ticket.assignee.active:
        recipients = [ticket.assignee]
    elif ticket.department_id is not None:
        recipients = department_admins(ticket.department_id)
    else:
        return
    cal = sla.calendar(ticket)
    due = cal.to_local(ticket.next_due_at).strftime("%d-%m-%Y %H:%M") + " " + cal.abbr
    link = absolute_url(f"/admin/tickets/desk/{ticket.number}/")
    for user in recipients:
        send_to(
            user,
            "sla_warning",
            lambda: _("[%(number)s] Due soon: %(due)s", number=ticket.number, due=due),
            ticket=ticket,
            due=due,
            admin_url=link,
        )

"""What an open desk fetches after the page: new messages (the poll, and its short way
for an idle poll, backoffice/idle_polls.py) and the attachments' files.

A mixin of `TicketDeskView` (views/desk.py), whose `_ticket` it uses.
"""

from __future__ import annotations

from flask import (
    abort,
    current_app,
    get_template_attribute,
    jsonify,
    render_template,
    request,
)
from flask_admin import expose
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from ..domain import attachments as files
from ..domain import permissions as perm
from ..domain import presence, shipments
from ..extensions import db
from ..idle_polls import SessionUser, idle_poll, read, ticket_statement
from ..models import Order, Ticket, TicketAttachment, TicketMessage, User
from ..models.base import MAX_ID, utcnow
from .desk_context import load_messages, presence_text, state_key

POLL_BATCH = 50


class DeskLive:
    """The poll and the files of `TicketDeskView`."""

    @expose("/<number>/poll")
    def poll(self, number: str):
        """New messages after `?after=<id>` as JSON; 304 while the ticket is unchanged.

        The ETag is the ticket's id and version (every message, note and action
        bumps the version), its situation and its parcel's events (a subquery of the
        ticket's read: shipments.timeline_mark), plus `after` and who else is here; the
        heartbeat is written about every other poll (presence.poll). An idle poll is
        answered 304 before this view by its short way (`_idle_desk_poll`: the ticket's
        row joined to the session's user, then its viewers). An answer carries the
        parcel's timeline and situation badge.
        """
        ticket, parcel_mark = self._polled(number)
        after = _poll_after()
        # Every poll is a presence heartbeat (domain/presence.py), written when due; who
        # else is here is part of the answer, so it is part of the ETag too.
        people, wrote = presence.poll(ticket, current_user, typing=_poll_typing())
        etag = _poll_etag(ticket, parcel_mark, after, people)
        if request.if_none_match.contains(etag):
            resp = current_app.response_class(status=304)
        else:
            render = get_template_attribute("admin/tickets/_macros.html", "message")
            messages = load_messages(ticket, after=after, limit=POLL_BATCH)
            resp = jsonify(
                {
                    "number": ticket.number,
                    "version": ticket.version_id,
                    "state": state_key(ticket),
                    "status": ticket.status.value,
                    "status_label": ticket.status.label,
                    "last_id": messages[-1].id if messages else after,
                    "messages": [{"id": m.id, "html": str(render(m, ticket))} for m in messages],
                    "presence": presence_text(people),
                    **self._parcel_json(ticket),
                }
            )
        if wrote:
            db.session.commit()  # after the answer is built: nothing above reloads
        resp.set_etag(etag)
        resp.headers["Cache-Control"] = "private, no-cache"
        return resp

    def _polled(self, number: str) -> tuple[Ticket, int]:
        """The ticket's row in the desk scope (else 404) and its parcel's mark."""
        row = db.session.execute(
            perm.desk_tickets(current_user)
            .where(Ticket.number == number)
            .add_columns(shipments.timeline_mark(Ticket.order_id))
        ).first()
        if row is None:
            abort(404)
        return row[0], row[1]

    @staticmethod
    def _parcel_json(ticket: Ticket) -> dict:
        """The situation badge and the parcel's tracking box as the desk draws them."""
        badge = get_template_attribute("_situation.html", "situation_badge")
        out = {"situation_html": str(badge(ticket.situation))}
        if ticket.order_id:
            order = db.session.scalar(
                select(Order).where(Order.id == ticket.order_id).options(joinedload(Order.product))
            )
            out["tracking_html"] = render_template(
                "admin/_tracking.html", shipment=shipments.shipment(order)
            ).strip()  # the box itself, replacing #tracking-timeline
        return out

    def _attachment(self, number: str, attachment_id: int) -> TicketAttachment:
        """A file of this ticket, after the same scope check as the desk itself; else 404."""
        ticket = self._ticket(number)
        if attachment_id > MAX_ID:
            abort(404)
        found = db.session.scalar(
            select(TicketAttachment)
            .join(TicketMessage, TicketAttachment.message_id == TicketMessage.id)
            .where(TicketAttachment.id == attachment_id, TicketMessage.ticket_id == ticket.id)
        )
        if found is None or not perm.can_open_at_desk(current_user, ticket):
            abort(404)
        return found

    @expose("/<number>/attachments/<int:attachment_id>")
    def attachment(self, number: str, attachment_id: int):
        """A file of this ticket: images inline, PDFs as a download."""
        return files.send(self._attachment(number, attachment_id))

    @expose("/<number>/attachments/<int:attachment_id>/thumbnail")
    def thumbnail(self, number: str, attachment_id: int):
        """The picture the conversation shows for an image attachment (404 for a PDF).

        The image itself, scaled by the browser into a fixed box (width/height on the
        <img>, object-fit in admin.css): Pillow is not a dependency, and attachments are
        at most ATTACHMENT_MAX_BYTES. Same authorization as `attachment`, so a thumbnail
        URL refuses exactly the people the file refuses."""
        found = self._attachment(number, attachment_id)
        if not files.is_image(found):
            abort(404)
        return files.send(found)


# --- the idle poll's short way (backoffice/idle_polls.py) --------------------------------


def _poll_after() -> int:
    # Clamped: an id past 2**63 cannot be bound on SQLite, and no message has one.
    return min(max(request.args.get("after", default=0, type=int), 0), MAX_ID)


def _poll_typing() -> bool:
    return request.args.get("typing") == "1"


def _by_id(person) -> int:
    return person.user_id


def _poll_etag(ticket, parcel_mark: int, after: int, people) -> str:
    """The desk poll's ETag: the ticket's version, situation and parcel's events, the
    messages asked for and who else is here (both ways compute it here), by id: the
    short way reads the people in no order."""
    seen = ",".join(f"{p.user_id}{'t' if p.typing else ''}" for p in sorted(people, key=_by_id))
    situation = ticket.situation.value if ticket.situation else ""
    return f"t{ticket.id}-v{ticket.version_id}-s{situation}-e{parcel_mark}-a{after}-p{seen}"


_IDLE_DESK = presence.with_viewers(
    ticket_statement(
        Ticket.id,
        Ticket.version_id,
        Ticket.status,
        Ticket.department_id,
        Ticket.situation,
        shipments.timeline_mark(Ticket.order_id).label("parcel_mark"),
        user_columns=(User.department_id,),
    ),
    Ticket.id,
    User.id,
)


@idle_poll("ticket_desk.poll")  # the endpoint of TicketDeskView.poll (views/__init__.py)
def _idle_desk_poll(uniquifier: str, number: str) -> str | None:
    """The ETag of an idle desk poll from one statement: the ticket's row joined to the
    session's user and to the ticket's viewers; the heartbeat is written when due, as
    the full way does. None (the full way) for a ticket outside the user's lists or
    anything else it must judge."""
    now = utcnow()
    since = now - presence.VIEWING_TTL
    rows = read(_IDLE_DESK, uniquifier=uniquifier, number=number, viewing_since=since)
    if not rows:
        return None
    user, ticket = SessionUser(rows), rows[0]
    if not (perm.has(user, perm.BACKOFFICE) and perm.can_see_ticket(user, ticket)):
        return None  # a department admin's ticket off their list: `can_open_at_desk`'s
    viewers = presence.viewer_rows(rows)
    people, wrote = presence.settle(ticket, user, viewers, typing=_poll_typing(), now=now)
    if wrote:
        db.session.commit()  # kept whichever way answers: the full way sees it fresh
    return _poll_etag(ticket, ticket.parcel_mark, _poll_after(), people)

"""Shipment updates by email: the customer hears that their parcel is out for delivery,
delivered, or that a delivery failed — however the event came in (import, API, staff).

Guarantees, before the code:
- **What and to whom.** Only events `shipments.warrants_customer_notification` names
  (the one rule, shared with the WhatsApp notification), only the event that became its
  parcel's latest in its batch (an import that brings "out for delivery" and
  "delivered" at once sends one email, about the delivery) and that the batch's UPDATE
  really made the order's latest (a concurrent writer's newer event, committed after
  the batch read the order, wins: nothing about the older one), and only to customers who
  asked for shipment updates (`User.shipment_updates`, on the account page), are
  active and have an address that takes mail.
- **Never twice for one event.** Each email carries the outbox dedupe key
  `shipment:<order id>:<event>:<occurred_at>`, unique in `outbox_email`; a batch sent
  again, a concurrent identical batch or an import run twice queues nothing new.
- **Set-based**, so a million imported events stay fast: per chunk of orders one query
  for their consenting customers and one multi-row INSERT IGNORE into the outbox; each
  template is rendered once per (language, event) with placeholders, then filled per
  email with the values — HTML-escaped in the HTML part.
- **In the caller's transaction** (the batch of `record_events`): the emails exist
  exactly when the events are committed. Nothing here reads the request or commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace

from flask import current_app, render_template
from flask_babel import force_locale
from flask_babel import gettext as _
from markupsafe import escape
from sqlalchemy import select

from ..extensions import db
from ..models import Order, TrackingEventKind, User
from .contacts import mailable
from .links import absolute_url
from .outbox import enqueue_once, outbox_row

CHUNK = 500
TEMPLATE = "shipment_update"
K = TrackingEventKind
# Values differ per email; the rest of an email is the same for one language and event.
FIELDS = ("name", "resi", "number", "line", "track_url")


@dataclass(slots=True)
class Notice:
    """One event to tell its parcel's customer about."""

    order_id: int
    kind: TrackingEventKind
    occurred_at: datetime  # UTC
    utc_offset: int
    location: str


def dedupe_key(notice: Notice) -> str:
    """The outbox key that makes the email of one event unique."""
    return f"shipment:{notice.order_id}:{notice.kind.value}:{notice.occurred_at:%Y%m%dT%H%M%S}"


def _headline(kind: TrackingEventKind) -> str:
    if kind is K.OUT_FOR_DELIVERY:
        return _("Your parcel is out for delivery today. Please make sure someone can receive it.")
    if kind is K.DELIVERED:
        return _("Your parcel has been delivered. Thank you for shipping with carebox.")
    return _(
        "We could not deliver your parcel. The courier will try again; if you want to "
        "arrange the delivery, reply to us through your account."
    )


def _mark(name: str) -> str:
    return f"\x00{name}\x00"  # never in a value: NUL is stripped from everything stored


class _Skeleton:
    """An email of one language and event, rendered once, with a mark for each value."""

    def __init__(self, lang: str, kind: TrackingEventKind):
        marks = {name: _mark(name) for name in FIELDS}
        with force_locale(lang):
            self.label = str(kind.label)
            self.subject = str(
                _("[%(resi)s] Your parcel: %(status)s", resi=marks["resi"], status=kind.label)
            )
            ctx = {
                "recipient": SimpleNamespace(display_name=marks["name"], contact_only=False),
                "subject": self.subject,
                "lang": lang,
                "headline": _headline(kind),
                "account_url": absolute_url("/account"),
                **marks,
            }
            self.text = render_template(f"email/{TEMPLATE}.txt", **ctx)
            self.html = render_template(f"email/{TEMPLATE}.html", **ctx)

    def fill(self, values: dict[str, str]) -> tuple[str, str, str]:
        subject, text, html = self.subject, self.text, self.html
        for name, value in values.items():
            mark = _mark(name)
            subject = subject.replace(mark, value)
            text = text.replace(mark, value)
            html = html.replace(mark, str(escape(value)))
        return subject, text, html


def email(notices: Sequence[Notice], *, now: datetime) -> int:
    """Queue the shipment-update emails of `notices` (see the module); returns how many
    rows were offered to the outbox (a key queued before is skipped there)."""
    from .shipments import local_time

    langs = current_app.config["LANGUAGES"]
    default = current_app.config["BABEL_DEFAULT_LOCALE"]
    skeletons: dict[tuple[str, TrackingEventKind], _Skeleton] = {}
    offered = 0
    o, u = Order.__table__.c, User.__table__.c
    for start in range(0, len(notices), CHUNK):
        chunk = notices[start : start + CHUNK]
        found = {
            r.id: r
            for r in db.session.execute(
                select(o.id, o.number, o.resi, u.email, u.name, u.locale)
                .join(User.__table__, u.id == o.customer_id)
                .where(o.id.in_({n.order_id for n in chunk}), u.active, u.shipment_updates)
            )
        }
        by_lang: dict[str, list[tuple[Notice, object]]] = {}
        for notice in chunk:
            r = found.get(notice.order_id)
            if r is None or not mailable(SimpleNamespace(email=r.email)):
                continue
            by_lang.setdefault(r.locale if r.locale in langs else default, []).append((notice, r))
        rows = []
        track_base = absolute_url("/track/")
        for lang, pairs in by_lang.items():
            with force_locale(lang):  # once per language: the dates are formatted in it
                times: dict[tuple[datetime, int], str] = {}  # many events share a moment
                for notice, r in pairs:
                    skeleton = skeletons.get((lang, notice.kind))
                    if skeleton is None:
                        skeleton = skeletons[(lang, notice.kind)] = _Skeleton(lang, notice.kind)
                    moment = (notice.occurred_at, notice.utc_offset)
                    when = times.get(moment)
                    if when is None:
                        when = times[moment] = local_time(*moment)
                    where = f", {notice.location}" if notice.location else ""
                    subject, text, html = skeleton.fill(
                        {
                            "name": r.name or r.email,
                            "resi": r.resi,
                            "number": r.number or "",
                            "line": f"{skeleton.label}{where} ({when})",
                            "track_url": track_base + r.resi,
                        }
                    )
                    key = dedupe_key(notice)
                    # A (name, address) pair: the address is not parsed again per email.
                    pair = (r.name, r.email)
                    rows.append(outbox_row(pair, subject, text, html, dedupe_key=key, now=now))
        offered += enqueue_once(rows)
    return offered

"""Processing the WhatsApp queue: each stored webhook item becomes a ticket message or a tick.

Guarantees:
- Items are claimed like outbox rows (`channels/queue.py`); each is processed
  in its own transaction, committed with the item marked `done`, so a message
  is posted once: a crash before the commit leaves the item due again, and
  `domain.inbound.receive` is idempotent by WhatsApp message id besides.
- A message goes through `domain.inbound.receive` like an email: the sender's
  phone (E.164, `domain.phones`) finds its customer or makes a contact-only
  one; a reply to a message (`context`) lands in that message's ticket, else
  the customer's open ticket, else a new `question`.
- Text, image, document, location, buttons and list answers become text and
  files; media is fetched from the Graph API and stored through the same
  content checks as uploads (a disguised or oversized file is refused and named
  in the message, never silently dropped). Other kinds (audio, stickers, …)
  post a line saying what came, so the customer is not ignored.
- When the Graph API is unreachable the item waits (no attempt spent); a media
  download that keeps failing posts the message without the file after
  `max_attempts`, saying so. A status update for a message whose send is not
  recorded yet waits and tries again (statuses can outrun the send's commit).
- Two first messages from one new phone processed at once make one contact (its
  phone is unique): the loser's item runs again at once in a fresh transaction and
  joins the winner's contact and open ticket.
- Status updates only move a message's `delivery` forward (sent → delivered →
  read); `failed` is kept unless the message was already delivered or read, so
  updates arriving out of order end in the right tick.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import select, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from ..domain import DomainError, inbound
from ..domain.phones import normalise_phone
from ..extensions import db
from ..models import (
    InboxStatus,
    MessageChannel,
    OutboxWhatsApp,
    WhatsAppDelivery,
    WhatsAppInbox,
    WhatsAppItemKind,
)
from ..models.base import utcnow
from . import queue
from .whatsapp_graph import GraphAPI, GraphError, GraphUnavailable

log = logging.getLogger("carebox.whatsapp")

DEFAULT_QUEUE = {
    "batch": 50,  # items (or outgoing messages) one worker claims at a time
    "interval_seconds": 2.0,  # `--loop` sleeps this long when both queues are empty
    "max_attempts": 8,  # then an item or a send is given up (`failed`)
    "backoff_seconds": 30,  # retry after 30 s, 1 min, 2 min, …
    "backoff_max_seconds": 3600,  # … at most an hour apart
    "outage_retry_seconds": 30,  # the Graph API unreachable: try again after this
    "claim_timeout_seconds": 300,  # a claim older than this is a dead worker's
    "status_wait_attempts": 5,  # a status for a send not recorded yet: retries
}
T = WhatsAppInbox.__table__
PENDING, PROCESSING = InboxStatus.PENDING.value, InboxStatus.PROCESSING.value
RANK = {WhatsAppDelivery.SENT: 1, WhatsAppDelivery.DELIVERED: 2, WhatsAppDelivery.READ: 3}
MEDIA_KINDS = ("image", "document", "video", "audio", "sticker")


def settings() -> dict:
    return {**DEFAULT_QUEUE, **(current_app.config.get("WHATSAPP_QUEUE") or {})}


class Wait(Exception):
    """Not now: try this item again later (the reason is its last_error)."""

    def __init__(self, reason: str, spend: bool = True):
        super().__init__(reason)
        self.spend = spend


@dataclass
class ProcessReport:
    claimed: int = 0
    done: int = 0
    waiting: int = 0
    failed: int = 0

    def __str__(self) -> str:
        return (
            f"inbound claimed {self.claimed}, done {self.done}, "
            f"waiting {self.waiting}, failed {self.failed}"
        )


def _when(value) -> datetime | None:
    """A webhook's Unix timestamp as naive UTC, never in the future."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(seconds) or seconds <= 0:
        return None
    try:
        when = datetime.fromtimestamp(seconds, UTC).replace(tzinfo=None)
    except (OverflowError, OSError, ValueError):
        return None
    return min(when, utcnow())


def _str(value, limit: int = 4096) -> str:
    return value[:limit] if isinstance(value, str) else ""


def _part(message: dict, key: str) -> dict:
    value = message.get(key)
    return value if isinstance(value, dict) else {}


def _location(loc: dict) -> str:
    try:
        lat, lon = float(loc.get("latitude")), float(loc.get("longitude"))
    except (TypeError, ValueError):
        return _("(a location that could not be read)")
    if not (math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90 and -180 <= lon <= 180):
        return _("(a location that could not be read)")
    lines = [_("Shared location:")]
    lines += [text for text in (_str(loc.get("name"), 200), _str(loc.get("address"), 500)) if text]
    lines.append(
        f"https://www.openstreetmap.org/?mlat={lat:.6f}&mlon={lon:.6f}#map=17/{lat:.6f}/{lon:.6f}"
    )
    return "\n".join(lines)


def _media_name(kind: str, media: dict) -> str:
    name = _str(media.get("filename"), 200)
    if name:
        return name
    ext = {"image/jpeg": ".jpg", "image/png": ".png", "application/pdf": ".pdf"}.get(
        _str(media.get("mime_type"), 100).split(";")[0].strip(), ""
    )
    return f"whatsapp-{kind}{ext}"


def _fetch(api: GraphAPI, media_id: str, last_try: bool) -> tuple[bytes | None, str | None]:
    """The media's bytes, or None and the reason it cannot be attached."""
    limit = current_app.config["ATTACHMENT_MAX_BYTES"]
    too_big = _("The attached file is larger than %(mb)d MB.", mb=limit // 2**20)
    try:
        media = api.media(media_id)
        if media.size and media.size > limit:
            return None, too_big
        data = api.download(media.url, limit)
    except GraphUnavailable as exc:
        if last_try:
            return None, _("it could not be downloaded from WhatsApp")
        raise Wait(f"media {media_id}: {exc}", spend=False) from exc
    except GraphError as exc:
        if exc.transient and not last_try:
            raise Wait(f"media {media_id}: {exc}") from exc
        return None, _("it could not be downloaded from WhatsApp")
    if data is None:
        return None, too_big
    return data, None


def _incoming(item: dict, api: GraphAPI, last_try: bool) -> inbound.Incoming | None:
    message, contact = item.get("message") or {}, item.get("contact") or {}
    phone = normalise_phone(_str(message.get("from"), 32))
    if phone is None:
        raise DomainError("the sender's phone number cannot be read")
    kind = _str(message.get("type"), 40)
    if kind == "reaction":
        return None  # an emoji on an earlier message: nothing to answer
    texts, files, refused = [], [], []
    if kind == "text":
        texts.append(_str(_part(message, "text").get("body")))
    elif kind in MEDIA_KINDS:
        media = _part(message, kind)
        texts.append(_str(media.get("caption")))
        name = _media_name(kind, media)
        media_id = _str(media.get("id"), 200)
        data, reason = _fetch(api, media_id, last_try) if media_id else (None, "no media id")
        if data is not None:
            files.append(inbound.IncomingFile(name, data))
        else:
            refused.append(_("[Not attached: %(name)s — %(reason)s]", name=name, reason=reason))
    elif kind == "location":
        texts.append(_location(_part(message, "location")))
    elif kind == "button":
        texts.append(_str(_part(message, "button").get("text")))
    elif kind == "interactive":
        answer = _part(message, "interactive")
        chosen = _part(answer, "button_reply") or _part(answer, "list_reply")
        texts.append(_str(chosen.get("title")))
    else:
        texts.append(
            _("(A WhatsApp message of a kind carebox cannot show: %(kind)s)", kind=kind or "?")
        )
    body = "\n\n".join(part for part in (*texts, *refused) if part and part.strip())
    return inbound.Incoming(
        channel=MessageChannel.WHATSAPP,
        body=body,
        phone=phone,
        name=_str(_part(contact, "profile").get("name"), 120),
        external_id=_str(message.get("id"), 255),
        files=files,
        ticket=_replied_ticket(_str(_part(message, "context").get("id"), 255), phone),
        continue_open=True,
    )


def _replied_ticket(wamid: str, phone: str):
    """The ticket of the message a reply quotes (one carebox sent, or the customer's own)."""
    if not wamid:
        return None
    sent = db.session.scalar(select(OutboxWhatsApp).where(OutboxWhatsApp.wa_message_id == wamid))
    ticket = sent.ticket if sent is not None else None
    if ticket is None:
        found = inbound.find_message(MessageChannel.WHATSAPP, wamid)
        ticket = found.ticket if found is not None else None
    if ticket is None or ticket.customer is None or ticket.customer.phone_key != phone:
        return None  # quoting another customer's message names no ticket of theirs
    return ticket


def _message(item: dict, api: GraphAPI, last_try: bool, written: list) -> None:
    default = current_app.config["BABEL_DEFAULT_LOCALE"]
    with force_locale(default):  # a new contact's texts ("Shared location:") in the default
        incoming = _incoming(item, api, last_try)
    if incoming is None:
        return
    received = inbound.receive(incoming, now=_when((item.get("message") or {}).get("timestamp")))
    written.extend(received.stored)  # removed again if this item's transaction rolls back


def _discard(written: list) -> None:
    folder = Path(current_app.config["UPLOAD_FOLDER"])
    for attachment in written:
        (folder / attachment.storage_key).unlink(missing_ok=True)
    written.clear()


def _status(item: dict, attempts: int, cfg: dict) -> None:
    status = item.get("status") or {}
    wamid = _str(status.get("id"), 255)
    try:
        delivery = WhatsAppDelivery(_str(status.get("status"), 20))
    except ValueError:
        return  # a status carebox does not track (e.g. "deleted")
    row = db.session.scalar(select(OutboxWhatsApp).where(OutboxWhatsApp.wa_message_id == wamid))
    if row is None:
        if attempts < cfg["status_wait_attempts"]:
            raise Wait(f"no message sent as {wamid} yet")
        return  # not a message carebox sent
    when = _when(status.get("timestamp")) or utcnow()
    current = row.delivery
    if delivery is WhatsAppDelivery.FAILED:
        errors = status.get("errors") if isinstance(status.get("errors"), list) else []
        first = errors[0] if errors and isinstance(errors[0], dict) else {}
        detail = _str(_part(first, "error_data").get("details"), 500)
        parts = (str(first.get("code") or ""), _str(first.get("title"), 300), detail)
        row.delivery_error = " — ".join(p for p in parts if p) or "failed"
        move = current not in (WhatsAppDelivery.DELIVERED, WhatsAppDelivery.READ)
    elif current is WhatsAppDelivery.FAILED:
        move = RANK[delivery] >= RANK[WhatsAppDelivery.DELIVERED]  # it arrived after all
    else:
        move = current is None or RANK[current] < RANK[delivery]
    if move:
        row.delivery, row.delivery_at = delivery, when
    db.session.flush()


def _finish(row_id: int, claim: queue.Claim, status: InboxStatus, error: str | None, now) -> None:
    db.session.execute(
        update(T)
        .where(queue.mine(T, row_id, claim.token, PROCESSING))
        .values(status=status.value, claim_token=None, last_error=error, processed_at=now)
    )


def _retry(row_id: int, claim: queue.Claim, wait: Wait, attempts: int, cfg: dict, now) -> bool:
    """Put the item back (due later); True when it is given up instead."""
    give_up = wait.spend and attempts >= cfg["max_attempts"]
    if wait.spend:
        delay = queue.backoff(attempts, cfg["backoff_seconds"], cfg["backoff_max_seconds"])
    else:
        delay = cfg["outage_retry_seconds"]
    values = {"claim_token": None, "last_error": str(wait)[:2000]}
    if give_up:
        values["status"] = InboxStatus.FAILED.value
    else:
        values.update(status=PENDING, next_attempt_at=now + _seconds(delay))
        if not wait.spend:
            values["attempts"] = T.c.attempts - 1
    with db.engine.begin() as conn:
        conn.execute(
            update(T).where(queue.mine(T, row_id, claim.token, PROCESSING)).values(**values)
        )
    return give_up


def _seconds(value: float) -> timedelta:
    return timedelta(seconds=value)


def _one(row_id: int, claim: queue.Claim, api, cfg: dict, report: ProcessReport) -> None:
    """Process one claimed item in its own transaction (see process_pending)."""
    for attempt in (1, 2):
        row = db.session.get(WhatsAppInbox, row_id, populate_existing=True)
        if row is None or row.claim_token != claim.token:
            return
        kind, attempts, payload = row.kind, row.attempts, row.payload
        written: list = []
        try:
            item = json.loads(payload)
            if kind is WhatsAppItemKind.MESSAGE:
                _message(item, api, attempts >= cfg["max_attempts"], written)
            else:
                _status(item, attempts, cfg)
            _finish(row_id, claim, InboxStatus.DONE, None, utcnow())
            db.session.commit()
            report.done += 1
            return
        except Wait as wait:
            db.session.rollback()
            _discard(written)
            if _retry(row_id, claim, wait, attempts, cfg, utcnow()):
                report.failed += 1
            else:
                report.waiting += 1
            return
        except IntegrityError as exc:
            # A racing writer (two first messages from one new phone make one contact,
            # contacts.find_or_create_contact): run the item again at once in a fresh
            # transaction, which finds what the winner committed; then later.
            db.session.rollback()
            _discard(written)
            if attempt == 1:
                continue
            if _retry(row_id, claim, Wait(str(exc)), attempts, cfg, utcnow()):
                report.failed += 1
            else:
                report.waiting += 1
            return
        except DBAPIError:
            db.session.rollback()
            _discard(written)
            raise
        except (DomainError, ValueError) as exc:
            # The message cannot be posted at all (a staff member's phone, nothing
            # in it): recorded on the item, which staff can read in the database.
            db.session.rollback()
            _discard(written)
            _finish(row_id, claim, InboxStatus.FAILED, str(exc)[:2000], utcnow())
            db.session.commit()
            log.warning("whatsapp item %s not posted: %s", row_id, exc)
            report.failed += 1
            return


def process_pending(
    batch: int | None = None, now: datetime | None = None, api=None
) -> ProcessReport:
    """Claim one batch of queued items and process each in its own transaction.

    Commits `db.session` after each item: only a worker (or a test) calls it.
    """
    cfg = settings()
    now = now or utcnow()
    # End the session's transaction first: on MariaDB (REPEATABLE READ) a snapshot taken
    # before the claim would show the rows without this worker's claim token.
    db.session.commit()
    claim = queue.claim(
        T,
        waiting=PENDING,
        busy=PROCESSING,
        batch=int(batch or cfg["batch"]),
        timeout=cfg["claim_timeout_seconds"],
        now=now,
    )
    report = ProcessReport(claimed=len(claim.ids))
    if not claim.ids:
        return report
    own_api = api is None
    api = api or GraphAPI()
    try:
        for row_id in claim.ids:
            _one(row_id, claim, api, cfg, report)
    finally:
        if own_api:
            api.close()
    return report

"""Sending the WhatsApp outbox: claim due rows, send each through the Cloud API, record it.

Guarantees:
- A row is sent by the worker holding its claim (`channels/queue.py`), which
  checks it still holds it before each send and renews it half-way, as the
  email outbox does.
- The Graph API unreachable, or refusing carebox's token: the claimed rows go
  back untried (no attempt spent) and wait `outage_retry_seconds`; nothing is
  lost and nothing given up.
- Rate limits (429 and Meta's rate codes) and Meta's own errors (5xx) are
  retried with exponential backoff (longer when `Retry-After` says so) and
  recorded `failed` after `max_attempts`; any other refusal is `failed` at once
  with the API's message, which the desk shows on the reply.
- A free-text reply the API refuses because the 24-hour window closed (131047,
  the customer's last message was older than carebox knew) is turned into the
  reply template (domain/whatsapp_templates.py) and sent again; without one it
  fails, saying why.
- A staff attachment is uploaded to the Graph API's media endpoint first; the
  media id is recorded on the row before the send, so a retry sends the same
  upload instead of uploading again. The file is read from the upload folder
  through the same storage the desk serves it from.
- Delivery is at-least-once only where the API's "200" and the commit of
  `sent` can be separated by a crash: the row is then sent again after the
  claim timeout. The API has no idempotency key to prevent that.

Each step commits its own short transaction on its own connection.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

from flask import current_app
from sqlalchemy import select, update

from ..domain.phones import whatsapp_id
from ..domain.whatsapp_outbox import reply_template, template_fields
from ..extensions import db
from ..models import (
    OutboxStatus,
    OutboxWhatsApp,
    TicketAttachment,
    TicketMessage,
    WhatsAppMediaKind,
    WhatsAppSendKind,
)
from ..models.base import utcnow
from . import queue
from .whatsapp_graph import REENGAGEMENT, GraphAPI, GraphError, GraphUnavailable
from .whatsapp_in import settings

log = logging.getLogger("carebox.whatsapp")
T = OutboxWhatsApp.__table__
PENDING, SENDING = OutboxStatus.PENDING.value, OutboxStatus.SENDING.value


@dataclass
class SendReport:
    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    released: int = 0  # the API unreachable: back to pending, no attempt spent
    lost: int = 0

    def __str__(self) -> str:
        return (
            f"whatsapp claimed {self.claimed}, sent {self.sent}, retry later {self.retried}, "
            f"failed {self.failed}, API unreachable {self.released}, lost claims {self.lost}"
        )


def payload(row) -> dict:
    """The Cloud API request body of one outbox row."""
    to = whatsapp_id(row.recipient)
    if row.media_kind:
        kind = WhatsAppMediaKind(row.media_kind).value
        media = {"id": row.media_id}
        if kind == WhatsAppMediaKind.DOCUMENT.value:
            media["filename"] = row.body
        return {"to": to, "type": kind, kind: media}
    if row.kind == WhatsAppSendKind.TEMPLATE.value or row.kind is WhatsAppSendKind.TEMPLATE:
        params = json.loads(row.template_params or "[]")
        return {
            "to": to,
            "type": "template",
            "template": {
                "name": row.template_name,
                "language": {"code": row.template_language or "id"},
                "components": [
                    {
                        "type": "body",
                        "parameters": [{"type": "text", "text": str(p)} for p in params],
                    }
                ],
            },
        }
    return {"to": to, "type": "text", "text": {"preview_url": False, "body": row.body}}


def _load(ids: list[int]):
    with db.engine.connect() as conn:
        return conn.execute(select(T).where(T.c.id.in_(ids)).order_by(T.c.id)).all()


def _update(row_id: int, token: str, **values) -> int:
    with db.engine.begin() as conn:
        return conn.execute(
            update(T).where(queue.mine(T, row_id, token, SENDING)).values(**values)
        ).rowcount


def _still_mine(row_id: int, claim: queue.Claim, now: datetime, timeout: float) -> bool:
    if (now - claim.claimed_at).total_seconds() < timeout / 2:
        return True
    renewed = _update(row_id, claim.token, next_attempt_at=now + timedelta(seconds=timeout))
    return bool(renewed)


def _as_template(row, exc: GraphError, token: str) -> bool:
    """A text refused for the closed window becomes the reply template; False: none set."""
    if row.kind != WhatsAppSendKind.TEXT.value or row.media_kind or row.message_id is None:
        return False
    message = db.session.get(TicketMessage, row.message_id)
    template = reply_template(message.ticket) if message is not None else None
    if template is None:
        return False
    fields = template_fields(message, template)
    _update(
        row.id,
        token,
        status=PENDING,
        claim_token=None,
        kind=WhatsAppSendKind.TEMPLATE.value,
        attempts=T.c.attempts - 1,
        next_attempt_at=utcnow(),
        last_error=f"{exc} (sent as the template {template.name})"[:2000],
        **fields,
    )
    return True


def _uploaded(row, api, token: str):
    """The row with its attachment uploaded (media id recorded); other rows as they are."""
    if not row.media_kind or row.media_id:
        return row
    attachment = db.session.get(TicketAttachment, row.attachment_id)
    if attachment is None:
        raise GraphError(410, None, "the attachment was deleted", None)
    path = Path(current_app.config["UPLOAD_FOLDER"]) / attachment.storage_key
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise GraphError(410, None, f"the attachment cannot be read: {exc}", None) from exc
    media_id = api.upload(data, attachment.content_type, attachment.filename)
    _update(row.id, token, media_id=media_id)
    return SimpleNamespace(**{**row._asdict(), "media_id": media_id})


def _refused(row, exc: GraphError, token: str, cfg: dict, now: datetime) -> bool:
    """Retry later, or give up; True when given up."""
    give_up = not exc.transient or row.attempts >= cfg["max_attempts"]
    delay = queue.backoff(row.attempts, cfg["backoff_seconds"], cfg["backoff_max_seconds"])
    if exc.retry_after:
        delay = max(delay, min(exc.retry_after, cfg["backoff_max_seconds"]))
    values = {"claim_token": None, "last_error": str(exc)[:2000]}
    if give_up:
        values["status"] = OutboxStatus.FAILED.value
    else:
        values.update(status=PENDING, next_attempt_at=now + timedelta(seconds=delay))
    _update(row.id, token, **values)
    log.warning("whatsapp outbox %s to %s: %s (%s)", row.id, row.recipient, exc, values["status"])
    return give_up


def _release(rows, token: str, reason: str, now: datetime, cfg: dict) -> None:
    for row in rows:
        _update(
            row.id,
            token,
            status=PENDING,
            claim_token=None,
            attempts=T.c.attempts - 1,
            last_error=reason[:2000],
            next_attempt_at=now + timedelta(seconds=cfg["outage_retry_seconds"]),
        )


def send_pending(batch: int | None = None, now: datetime | None = None, api=None) -> SendReport:
    """Claim one batch of due WhatsApp messages and send them (see the module's guarantees)."""
    cfg = settings()
    claim = queue.claim(
        T,
        waiting=PENDING,
        busy=SENDING,
        batch=int(batch or cfg["batch"]),
        timeout=cfg["claim_timeout_seconds"],
        now=now or utcnow(),
    )
    report = SendReport(claimed=len(claim.ids))
    if not claim.ids:
        return report
    clock = (lambda: now) if now else utcnow
    own_api = api is None
    api = api or GraphAPI()
    rows = _load(claim.ids)
    try:
        for index, row in enumerate(rows):
            if not _still_mine(row.id, claim, clock(), cfg["claim_timeout_seconds"]):
                report.lost += 1
                continue
            try:
                row = _uploaded(row, api, claim.token)
                wamid = api.send(payload(row))
            except GraphUnavailable as exc:
                rest = rows[index:]
                _release(rest, claim.token, f"WhatsApp unavailable: {exc}", clock(), cfg)
                report.released += len(rest)
                log.error("whatsapp outbox: %s; %d message(s) kept", exc, len(rest))
                break
            except GraphError as exc:
                if exc.code == REENGAGEMENT and _as_template(row, exc, claim.token):
                    report.retried += 1
                elif _refused(row, exc, claim.token, cfg, clock()):
                    report.failed += 1
                else:
                    report.retried += 1
                continue
            done = _update(
                row.id,
                claim.token,
                status=OutboxStatus.SENT.value,
                sent_at=clock(),
                claim_token=None,
                last_error=None,
                wa_message_id=wamid,
            )
            if not done:
                log.warning("whatsapp outbox %s was sent after its claim expired", row.id)
            report.sent += 1
    finally:
        if own_api:
            api.close()
    return report


def work(batch: int | None = None, now: datetime | None = None, api=None):
    """One turn of `carebox whatsapp process`: the inbound queue, then the outbox."""
    from .whatsapp_in import process_pending

    own_api = api is None
    api = api or GraphAPI()
    try:
        return process_pending(batch, now, api=api), send_pending(batch, now, api=api)
    finally:
        if own_api:
            api.close()


def run_loop(batch=None, interval=None, stop=None, on_report=None) -> None:
    """Turn until `stop` is set; sleeps `interval` whenever both queues had less than a batch."""
    import threading

    from sqlalchemy.exc import DBAPIError

    cfg = settings()
    batch = int(batch or cfg["batch"])
    interval = float(cfg["interval_seconds"] if interval is None else interval)
    stop = stop or threading.Event()
    while not stop.is_set():
        try:
            inbound, outbound = work(batch)
        except DBAPIError:
            db.session.rollback()
            log.exception("whatsapp: database error; retrying in %s s", interval)
            stop.wait(interval)
            continue
        if on_report and (inbound.claimed or outbound.claimed):
            on_report(inbound, outbound)
        if inbound.claimed < batch and outbound.claimed < batch:
            stop.wait(interval)

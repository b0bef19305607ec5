"""The WhatsApp webhook: `GET` answers Meta's verify handshake, `POST` takes deliveries.

Guarantees of `POST /channels/whatsapp/webhook`:
- Nothing is read before the signature is checked: `X-Hub-Signature-256` must be
  `sha256=` + the HMAC-SHA256 of the raw body with `WHATSAPP_APP_SECRET`,
  compared in constant time. Missing: 401; wrong (or the body changed): 403;
  nothing is stored either way.
- A signed delivery is stored as received (`WhatsAppWebhook`, the raw body)
  before its items are queued, in the same transaction: a 200 means it is in the
  database. Items are queued once each (`WhatsAppInbox.item_key`, by WhatsApp
  message id), so Meta's redeliveries, even reshaped, add nothing; a body
  repeated byte for byte is not even stored again.
- It answers fast: the work that can wait (finding the customer, downloading
  media, posting to a ticket, recording ticks) is done by `carebox whatsapp
  process` from the queue (`channels/whatsapp_in.py`).
- A signed body carebox cannot read (not JSON, odd shapes) is still stored, with
  the problem noted, and answered 200: Meta would only redeliver the same bytes.
  Nothing a client sends makes it answer 500.
- Exempt from CSRF (the signature is the proof), rate-limited per address
  (`RATELIMIT_WHATSAPP_WEBHOOK`). With the channel not configured every URL
  here answers 404.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import dataclass

from flask import Blueprint, Flask, abort, current_app, request
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ..extensions import csrf, db, limiter
from ..models import WhatsAppInbox, WhatsAppItemKind, WhatsAppWebhook

bp = Blueprint("whatsapp", __name__, url_prefix="/channels/whatsapp")
csrf.exempt(bp)  # Meta cannot send a CSRF token; the body's signature is the proof

REQUIRED = (
    "WHATSAPP_APP_SECRET",
    "WHATSAPP_VERIFY_TOKEN",
    "WHATSAPP_TOKEN",
    "WHATSAPP_PHONE_NUMBER_ID",
)
MAX_ID = 200  # longer than any wamid; anything longer is not WhatsApp's
CHALLENGE = re.compile(r"[A-Za-z0-9_-]{1,128}")


def enabled(config=None) -> bool:
    """Whether the WhatsApp channel is configured (all of REQUIRED set)."""
    config = config or current_app.config
    return all(config.get(key) for key in REQUIRED)


def signature_ok(body: bytes, header: str, secret: str) -> bool:
    """Whether `header` is `sha256=<hex HMAC-SHA256 of body with secret>` (constant time)."""
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), header.strip().lower().encode("ascii", "replace"))


@dataclass
class Accepted:
    webhook_id: int | None
    queued: int = 0  # new items
    repeated: int = 0  # items queued by an earlier delivery
    problem: str | None = None


def _text(value, limit: int = MAX_ID) -> str | None:
    return value if isinstance(value, str) and 0 < len(value) <= limit else None


def _dicts(value) -> list[dict]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def items(
    payload, phone_number_id: str
) -> tuple[list[tuple[str, WhatsAppItemKind, dict]], str | None]:
    """The (key, kind, item) of each message and status in a delivery, and any problem.

    Each item carries what processing needs: the message (or status), the sender's
    contact entry, the metadata. Changes for another phone number are left out.
    """
    if not isinstance(payload, dict) or payload.get("object") != "whatsapp_business_account":
        return [], "not a whatsapp_business_account delivery"
    found, other_numbers = [], 0
    for entry in _dicts(payload.get("entry")):
        for change in _dicts(entry.get("changes")):
            value = change.get("value")
            if change.get("field") != "messages" or not isinstance(value, dict):
                continue
            metadata = value.get("metadata") if isinstance(value.get("metadata"), dict) else {}
            if str(metadata.get("phone_number_id") or "") != phone_number_id:
                other_numbers += 1
                continue
            contacts = _dicts(value.get("contacts"))
            for message in _dicts(value.get("messages")):
                wamid = _text(message.get("id"))
                if wamid is None:
                    continue
                sender = message.get("from")
                contact = next((c for c in contacts if c.get("wa_id") == sender), None)
                item = {"message": message, "contact": contact or {}, "metadata": metadata}
                found.append((f"message:{wamid}", WhatsAppItemKind.MESSAGE, item))
            for status in _dicts(value.get("statuses")):
                wamid, state = _text(status.get("id")), _text(status.get("status"), 20)
                if wamid is None or state is None:
                    continue
                item = {"status": status, "metadata": metadata}
                found.append((f"status:{wamid}:{state}", WhatsAppItemKind.STATUS, item))
    problem = None
    if other_numbers and not found:
        problem = "for another phone number id"
    return found, problem


def accept(body: bytes) -> Accepted:
    """Store a signed delivery and queue its new items (flushes; the caller commits)."""
    digest = hashlib.sha256(body).hexdigest()
    if db.session.scalar(select(WhatsAppWebhook.id).where(WhatsAppWebhook.body_sha256 == digest)):
        return Accepted(None)
    try:
        found, problem = items(json.loads(body), current_app.config["WHATSAPP_PHONE_NUMBER_ID"])
    except (ValueError, RecursionError):
        found, problem = [], "not JSON"
    hook = WhatsAppWebhook(
        body_sha256=digest,
        body=body.decode("utf-8", "replace").replace("\x00", "\ufffd"),
        problem=problem,
    )
    db.session.add(hook)
    db.session.flush()
    result = Accepted(hook.id, problem=problem)
    unique = {key: (kind, item) for key, kind, item in found}
    known = set()
    keys = list(unique)
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        known |= set(
            db.session.scalars(
                select(WhatsAppInbox.item_key).where(WhatsAppInbox.item_key.in_(chunk))
            )
        )
    for key, (kind, item) in unique.items():
        if key in known:
            result.repeated += 1
            continue
        db.session.add(
            WhatsAppInbox(
                webhook_id=hook.id,
                item_key=key,
                kind=kind,
                payload=json.dumps(item, ensure_ascii=False),
            )
        )
        result.queued += 1
    db.session.flush()
    return result


@bp.before_request
def _only_when_configured():
    if not enabled():
        abort(404)


@bp.get("/webhook")
def verify():
    """Meta's subscription handshake: echo `hub.challenge` when the verify token matches."""
    args = request.args
    token = args.get("hub.verify_token", "")
    challenge = args.get("hub.challenge", "")
    expected = current_app.config["WHATSAPP_VERIFY_TOKEN"]
    if (
        args.get("hub.mode") != "subscribe"
        or not hmac.compare_digest(token.encode(), expected.encode())
        or not CHALLENGE.fullmatch(challenge)
    ):
        abort(403)
    return challenge, 200, {"Content-Type": "text/plain; charset=utf-8"}


@bp.post("/webhook")
@limiter.limit(lambda: current_app.config["RATELIMIT_WHATSAPP_WEBHOOK"])
def deliver():
    """A delivery from Meta: signature first, then stored and queued (see the module)."""
    header = request.headers.get("X-Hub-Signature-256", "")
    if not header:
        abort(401)
    body = request.get_data(cache=False)
    if not signature_ok(body, header, current_app.config["WHATSAPP_APP_SECRET"]):
        current_app.logger.warning("whatsapp webhook: bad signature from %s", request.remote_addr)
        abort(403)
    try:
        result = accept(body)
        db.session.commit()
    except IntegrityError:
        # A redelivery raced this one: the winner's rows are committed; queue what is left.
        db.session.rollback()
        result = accept(body)
        db.session.commit()
    if result.problem:
        current_app.logger.warning(
            "whatsapp webhook %s: %s (stored, not queued)", result.webhook_id, result.problem
        )
    return {"queued": result.queued, "repeated": result.repeated}, 200


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)

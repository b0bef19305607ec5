"""Webhook deliveries in the shapes of Meta's documented examples (Cloud API, "messages" field).

Each builder returns the whole delivery (`object`, `entry[].changes[].value`),
as Meta posts it; `signed(body)` gives the header Meta adds.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time

from .graph_server import PHONE_NUMBER_ID

APP_SECRET = "test-app-secret"  # noqa: S105
VERIFY_TOKEN = "test-verify-token"  # noqa: S105
WABA_ID = "102290129340398"
DISPLAY_NUMBER = "15550783881"
_ids = itertools.count(1)


def new_wamid() -> str:
    return f"wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA{next(_ids):05d}"


def _delivery(value: dict) -> dict:
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": WABA_ID,
                "changes": [
                    {
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": DISPLAY_NUMBER,
                                "phone_number_id": PHONE_NUMBER_ID,
                            },
                            **value,
                        },
                        "field": "messages",
                    }
                ],
            }
        ],
    }


def message(
    kind: str,
    content: dict,
    *,
    sender="6281234567890",
    name="Budi Santoso",
    wamid=None,
    context: str | None = None,
    timestamp: int | None = None,
) -> dict:
    msg = {
        "from": sender,
        "id": wamid or new_wamid(),
        "timestamp": str(timestamp or int(time.time())),
        "type": kind,
        kind: content,
    }
    if context:
        msg["context"] = {"from": DISPLAY_NUMBER, "id": context}
    return _delivery(
        {"contacts": [{"profile": {"name": name}, "wa_id": sender}], "messages": [msg]}
    )


def text(body: str, **kw) -> dict:
    return message("text", {"body": body}, **kw)


def image(media_id: str, caption: str = "", mime="image/jpeg", **kw) -> dict:
    content = {"mime_type": mime, "sha256": "a" * 44, "id": media_id}
    if caption:
        content["caption"] = caption
    return message("image", content, **kw)


def document(media_id: str, filename: str, mime="application/pdf", caption="", **kw) -> dict:
    content = {"filename": filename, "mime_type": mime, "sha256": "b" * 44, "id": media_id}
    if caption:
        content["caption"] = caption
    return message("document", content, **kw)


def location(lat: float, lon: float, name="", address="", **kw) -> dict:
    content = {"latitude": lat, "longitude": lon}
    if name:
        content["name"] = name
    if address:
        content["address"] = address
    return message("location", content, **kw)


def status(wamid: str, state: str, *, recipient="6281234567890", timestamp=None, errors=None):
    item = {
        "id": wamid,
        "status": state,
        "timestamp": str(timestamp or int(time.time())),
        "recipient_id": recipient,
    }
    if state != "failed":
        item["conversation"] = {
            "id": "CONVERSATION_ID",
            "origin": {"type": "service"},
        }
        item["pricing"] = {"billable": True, "pricing_model": "CBP", "category": "service"}
    if errors:
        item["errors"] = errors
    return _delivery({"statuses": [item]})


def body_of(payload) -> bytes:
    return json.dumps(payload).encode() if not isinstance(payload, bytes) else payload


def signature(body: bytes, secret: str = APP_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()

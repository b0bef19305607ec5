"""Helpers for the WhatsApp tests (the `graph` and `whatsapp` fixtures are in conftest.py)."""

from __future__ import annotations

from sqlalchemy import func, select

from backoffice.extensions import db as _db

from . import payloads
from .graph_server import PHONE_NUMBER_ID, TOKEN


def settings(graph_base: str, **extra) -> dict:
    return {
        "WHATSAPP_APP_SECRET": payloads.APP_SECRET,
        "WHATSAPP_VERIFY_TOKEN": payloads.VERIFY_TOKEN,
        "WHATSAPP_TOKEN": TOKEN,
        "WHATSAPP_PHONE_NUMBER_ID": PHONE_NUMBER_ID,
        "WHATSAPP_API_BASE": graph_base,
        "WHATSAPP_TIMEOUT": 5.0,
        **extra,
    }


def post(client, payload, *, signature=None, headers=None):
    """POST a delivery as Meta does: JSON body, signed unless `signature` says otherwise."""
    body = payloads.body_of(payload)
    sent = {"Content-Type": "application/json"}
    if signature is None:
        sent["X-Hub-Signature-256"] = payloads.signature(body)
    elif signature:
        sent["X-Hub-Signature-256"] = signature
    sent.update(headers or {})
    return client.post("/channels/whatsapp/webhook", data=body, headers=sent)


def count(model) -> int:
    return _db.session.scalar(select(func.count()).select_from(model))

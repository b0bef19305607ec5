"""The WhatsApp webhook: handshake, signatures before anything, stored first, idempotent."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from backoffice.models import WhatsAppInbox, WhatsAppItemKind, WhatsAppWebhook

from .whatsapp import payloads
from .whatsapp.support import count, post, settings

URL = "/channels/whatsapp/webhook"


def stored() -> tuple[int, int]:
    return count(WhatsAppWebhook), count(WhatsAppInbox)


def test_without_settings_every_url_is_404(client):
    assert client.get(URL, query_string={"hub.mode": "subscribe"}).status_code == 404
    assert post(client, payloads.text("Halo")).status_code == 404
    assert stored() == (0, 0)


def test_verify_handshake_echoes_the_challenge(whatsapp, client):
    query = {"hub.mode": "subscribe", "hub.verify_token": payloads.VERIFY_TOKEN}
    resp = client.get(URL, query_string={**query, "hub.challenge": "1158201444"})
    assert resp.status_code == 200 and resp.get_data(as_text=True) == "1158201444"
    assert resp.mimetype == "text/plain"


@pytest.mark.parametrize(
    "query",
    [
        {"hub.mode": "subscribe", "hub.verify_token": "salah", "hub.challenge": "1"},
        {
            "hub.mode": "unsubscribe",
            "hub.verify_token": payloads.VERIFY_TOKEN,
            "hub.challenge": "1",
        },
        {"hub.verify_token": payloads.VERIFY_TOKEN, "hub.challenge": "1"},
        {"hub.mode": "subscribe", "hub.verify_token": payloads.VERIFY_TOKEN},
        {
            "hub.mode": "subscribe",
            "hub.verify_token": payloads.VERIFY_TOKEN,
            "hub.challenge": "<b>",
        },
        {"hub.mode": "subscribe", "hub.verify_token": "é\u0000", "hub.challenge": "1"},
    ],
)
def test_verify_handshake_refuses_anything_else(whatsapp, client, query):
    assert client.get(URL, query_string=query).status_code == 403


def test_a_signed_delivery_is_stored_raw_and_its_message_queued(whatsapp, client):
    payload = payloads.text("Halo, paket saya belum sampai.")
    resp = post(client, payload)
    assert resp.status_code == 200 and resp.get_json() == {"queued": 1, "repeated": 0}
    hook = _one(WhatsAppWebhook)
    assert json.loads(hook.body) == payload and hook.problem is None
    item = _one(WhatsAppInbox)
    wamid = payload["entry"][0]["changes"][0]["value"]["messages"][0]["id"]
    assert item.item_key == f"message:{wamid}" and item.kind is WhatsAppItemKind.MESSAGE
    assert item.webhook_id == hook.id
    assert json.loads(item.payload)["contact"]["profile"]["name"] == "Budi Santoso"


def _one(model):
    from backoffice.extensions import db

    return db.session.scalars(select(model)).one()


def test_missing_signature_is_401_and_nothing_stored(whatsapp, client):
    assert post(client, payloads.text("Halo"), signature=False).status_code == 401
    assert stored() == (0, 0)


@pytest.mark.parametrize(
    "header",
    [
        "sha256=" + "0" * 64,
        "sha1=abc",
        "sha256=",
        payloads.signature(b"another body"),
        payloads.signature(b"x", secret="rahasia-lain"),
        "sha256=\u00e9\u00e9",
    ],
)
def test_wrong_signature_is_403_and_nothing_stored(whatsapp, client, header):
    assert post(client, payloads.text("Halo"), signature=header).status_code == 403
    assert stored() == (0, 0)


def test_a_body_changed_after_signing_is_403(whatsapp, client):
    body = payloads.body_of(payloads.text("Saya mau komplain"))
    header = payloads.signature(body)
    tampered = body.replace(b"komplain", b"KOMPLAIN")
    assert post(client, tampered, signature=header).status_code == 403
    assert stored() == (0, 0)


def test_the_signature_header_is_case_insensitive_in_hex(whatsapp, client):
    body = payloads.body_of(payloads.text("Halo"))
    header = payloads.signature(body).upper().replace("SHA256=", "sha256=")
    assert post(client, body, signature=header).status_code == 200


def test_a_replayed_delivery_queues_one_message(whatsapp, client):
    payload = payloads.text("Halo")
    assert post(client, payload).get_json() == {"queued": 1, "repeated": 0}
    assert post(client, payload).get_json() == {"queued": 0, "repeated": 0}
    # Meta's retry may be serialised differently: stored again, queued once.
    reshaped = json.dumps(payload, indent=2).encode()
    assert post(client, reshaped).get_json() == {"queued": 0, "repeated": 1}
    assert stored() == (2, 1)


def test_a_delivery_with_messages_and_statuses_queues_each_once(whatsapp, client):
    one, two = payloads.text("Satu"), payloads.text("Dua")
    status = payloads.status("wamid.sent-by-us", "delivered")
    value = one["entry"][0]["changes"][0]["value"]
    value["messages"] += two["entry"][0]["changes"][0]["value"]["messages"] * 2
    value["statuses"] = status["entry"][0]["changes"][0]["value"]["statuses"]
    assert post(client, one).get_json() == {"queued": 3, "repeated": 0}
    kinds = sorted(i.kind.value for i in _all(WhatsAppInbox))
    assert kinds == ["message", "message", "status"]


def _all(model):
    from backoffice.extensions import db

    return list(db.session.scalars(select(model)))


@pytest.mark.parametrize(
    "body",
    [
        b"not json at all",
        b"",
        b"[]",
        b"12",
        b'{"object": "page", "entry": []}',
        b'{"object": "whatsapp_business_account", "entry": {"a": 1}}',
        b'{"object": "whatsapp_business_account", "entry": [{"changes": [{"field": "messages",'
        b' "value": {"metadata": {"phone_number_id": "106540352242922"}, "messages": [{"id": 5},'
        b' {"id": ""}, "x", {"id": null}], "statuses": [{"id": "w"}]}}]}]}',
        b"\xff\xfe\x00garbage",
        b"[" * 5000 + b"]" * 5000,
    ],
)
def test_a_signed_body_carebox_cannot_read_is_kept_and_answered_200(whatsapp, client, body):
    resp = post(client, body)
    assert resp.status_code == 200 and resp.get_json()["queued"] == 0
    assert count(WhatsAppInbox) == 0
    assert count(WhatsAppWebhook) == 1


def test_changes_for_another_phone_number_are_not_queued(whatsapp, client):
    payload = payloads.text("Halo")
    payload["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] = "999"
    assert post(client, payload).get_json()["queued"] == 0
    assert _one(WhatsAppWebhook).problem == "for another phone number id"


def test_the_webhook_needs_no_csrf_token_but_other_posts_do(whatsapp, client):
    # CSRF is on in the tests (WTF_CSRF_ENABLED): a plain POST elsewhere is refused.
    assert client.post("/lang/en").status_code == 400
    assert post(client, payloads.text("Halo")).status_code == 200


def test_other_methods_are_405(whatsapp, client):
    for method in ("put", "delete", "patch"):
        assert getattr(client, method)(URL).status_code == 405


def test_too_large_a_body_is_413_and_nothing_stored(whatsapp, client, app):
    body = b" " * (app.config["MAX_CONTENT_LENGTH"] + 1)
    assert post(client, body).status_code == 413
    assert stored() == (0, 0)


def test_the_webhook_is_rate_limited(limited_app, graph, db):
    app = limited_app(RATELIMIT_WHATSAPP_WEBHOOK="2 per minute", **settings(graph.base))
    client = app.test_client()
    with app.app_context():
        codes = [post(client, payloads.text(f"Pesan {n}")).status_code for n in range(3)]
    assert codes == [200, 200, 429]


def test_odd_queries_and_bodies_never_get_a_500(whatsapp, client):
    from .test_portal_robustness import ODD_QUERIES, _bodies

    for query in ODD_QUERIES:
        assert client.get(URL + query).status_code < 500, query
    for body in _bodies("no-token"):
        resp = client.post(URL, **body)
        assert resp.status_code in (401, 403, 413, 429), (body, resp.status_code)
        resp = client.post(URL, headers={"X-Hub-Signature-256": "sha256=00"}, **body)
        assert resp.status_code < 500
    assert count(WhatsAppWebhook) == 0

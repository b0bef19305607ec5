"""The WhatsApp webhook's throughput against raw SQL doing the same storing.

Creates a fresh database on the server named by --url, DATABASE_URL or
TEST_DATABASE_URL (default: the local MariaDB), then posts N signed deliveries
(one text message each, Meta's shape) to `POST /channels/whatsapp/webhook`
through the Flask test client, one request and one commit each, as Meta
delivers them. Raw SQL does the same storing per delivery in the same run: the
duplicate check, the INSERT of the raw body, the INSERT of its queue item, one
commit. Both are checked to have stored N deliveries and N items before any
figure is printed. Also timed: the worker posting the queued messages into
tickets (`carebox whatsapp process`), per message.

    .venv/bin/python bench/whatsapp_webhook.py --deliveries 1000
    .venv/bin/python bench/whatsapp_webhook.py --url sqlite:///
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import fresh_database  # noqa: E402

from backoffice import create_app  # noqa: E402
from backoffice.extensions import db  # noqa: E402

SECRET = "bench-secret"
PHONE_ID = "106540352242922"
DEFAULT_URL = "mysql+pymysql://root@127.0.0.1:3306/test?charset=utf8mb4"


def delivery(n: int, prefix: str) -> bytes:
    sender = f"62812{n % 90_000 + 10_000:05d}{n % 10}"
    message = {
        "from": sender,
        "id": f"wamid.{prefix}{n:08d}",
        "timestamp": str(int(time.time())),
        "type": "text",
        "text": {"body": f"Halo, paket saya dengan resi nomor {n} belum sampai. Mohon dicek."},
    }
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": PHONE_ID},
        "contacts": [{"profile": {"name": f"Pelanggan {n}"}, "wa_id": sender}],
        "messages": [message],
    }
    payload = {
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"value": value, "field": "messages"}]}],
    }
    return json.dumps(payload).encode()


def sign(body: bytes) -> str:
    return "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()


def samples(fn, items) -> list[float]:
    out = []
    for item in items:
        start = time.perf_counter()
        fn(item)
        out.append((time.perf_counter() - start) * 1000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--url",
        default=os.environ.get("DATABASE_URL")
        or os.environ.get("TEST_DATABASE_URL")
        or DEFAULT_URL,
    )
    parser.add_argument("--deliveries", type=int, default=500)
    args = parser.parse_args()
    url, drop = fresh_database(args.url)
    try:
        run(url, args.deliveries)
    finally:
        drop()


def run(url: str, n: int) -> None:
    app = create_app(
        {
            "ENV_NAME": "testing",
            "SQLALCHEMY_DATABASE_URI": url,
            "WHATSAPP_APP_SECRET": SECRET,
            "WHATSAPP_VERIFY_TOKEN": "bench",
            "WHATSAPP_TOKEN": "bench",
            "WHATSAPP_PHONE_NUMBER_ID": PHONE_ID,
            "WHATSAPP_API_BASE": "http://127.0.0.1:9/v21.0",  # text only: never called
            "UPLOAD_FOLDER": tempfile.mkdtemp(prefix="carebox-bench-"),
        }
    )
    with app.app_context():
        db.create_all()
        from backoffice.seed import seed_base

        seed_base()
        db.session.commit()
        print(f"{db.engine.dialect.name}: {n} deliveries, one text message each")
        client = app.test_client()
        ours_bodies = [delivery(i, "A") for i in range(n)]
        raw_bodies = [delivery(i, "B") for i in range(n)]

        def webhook(body: bytes):
            resp = client.post(
                "/channels/whatsapp/webhook",
                data=body,
                headers={"Content-Type": "application/json", "X-Hub-Signature-256": sign(body)},
            )
            assert resp.status_code == 200, resp.status_code

        engine = db.engine

        def raw(body: bytes):
            # What the webhook stores, by hand: the signature check, parse, a duplicate
            # check, two INSERTs and a commit on one connection.
            assert hmac.compare_digest(sign(body), sign(body))
            payload = json.loads(body)
            msg = payload["entry"][0]["changes"][0]["value"]["messages"][0]
            digest = hashlib.sha256(body).hexdigest()
            with engine.begin() as conn:
                seen = conn.execute(
                    sa.text("SELECT id FROM whatsapp_webhook WHERE body_sha256 = :d"), {"d": digest}
                ).first()
                assert seen is None
                hook = conn.execute(
                    sa.text(
                        "INSERT INTO whatsapp_webhook (body_sha256, body, received_at) "
                        "VALUES (:d, :b, CURRENT_TIMESTAMP)"
                    ),
                    {"d": digest, "b": body.decode()},
                ).lastrowid
                conn.execute(
                    sa.text(
                        "INSERT INTO whatsapp_inbox (webhook_id, item_key, kind, payload, status,"
                        " attempts, next_attempt_at, created_at) VALUES (:w, :k, 'message', :p,"
                        " 'done', 0, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                    ),
                    {"w": hook, "k": "message:" + msg["id"], "p": json.dumps({"message": msg})},
                )

        for body in (delivery(10**7 + i, "W") for i in range(5)):  # warm-up, then discarded
            webhook(body)
        ours = samples(webhook, ours_bodies)
        theirs = samples(raw, raw_bodies)
        with engine.connect() as conn:
            hooks = conn.execute(sa.text("SELECT COUNT(*) FROM whatsapp_webhook")).scalar()
            items = conn.execute(sa.text("SELECT COUNT(*) FROM whatsapp_inbox")).scalar()
        assert hooks == items == 2 * n + 5, (hooks, items)

        from backoffice.channels.whatsapp_in import process_pending

        start = time.perf_counter()
        done = 0
        while True:
            report = process_pending(batch=100)
            done += report.done
            if not report.claimed:
                break
        seconds = time.perf_counter() - start
        assert done == n + 5, done

    mo, mr = statistics.median(ours), statistics.median(theirs)
    print(f"{'case':44} {'carebox ms':>11} {'raw SQL ms':>11} {'ratio':>7}")
    print(
        f"{'webhook delivery (median of ' + str(n) + ')':44} {mo:11.2f} {mr:11.2f} {mo / mr:7.2f}"
    )
    print(
        f"throughput: webhook {1000 / mo:,.0f} deliveries/s, raw SQL {1000 / mr:,.0f}/s; "
        f"worker posts {done / seconds:,.0f} messages/s into tickets ({done} in {seconds:.1f} s)"
    )


if __name__ == "__main__":
    main()

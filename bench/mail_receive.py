"""Inbound email: messages per second through `carebox mail receive`, against raw SQL.

Creates a fresh database on the server named by --url, DATABASE_URL or
TEST_DATABASE_URL (default: a SQLite file), with --customers customers each with
an open ticket, then times batches of --batch replies (a Gmail-shaped reply with its
quoted history, each with its reply token and a new Message-ID):

- store: `email_in.store` (parse the headers, dedup lookup, INSERT the row and its
  chunk, COMMIT), against raw SQL doing the same INSERTs and COMMIT per message;
- deliver: a real LMTP conversation per message with the running receiver (store,
  answer, then parse, strip the quote, find the ticket, post the message through the
  lifecycle, queue the staff notice), against raw SQL inserting the inbound row, its
  chunk and the ticket message and updating the ticket, one transaction per message.

Each figure is the median over --runs batches, in milliseconds per message; the
ratio says how much the real thing costs over the bare INSERTs.

    .venv/bin/python bench/mail_receive.py
    DATABASE_URL="mysql+pymysql://root@127.0.0.1:3306/test?charset=utf8mb4" \\
        .venv/bin/python bench/mail_receive.py --customers 200 --batch 20 --runs 7
"""

from __future__ import annotations

import argparse
import hashlib
import os
import smtplib
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import fresh_database, report  # noqa: E402

from backoffice import create_app  # noqa: E402
from backoffice.channels import email_in, email_threads  # noqa: E402
from backoffice.channels.mail_server import MailReceiver  # noqa: E402
from backoffice.extensions import db  # noqa: E402
from backoffice.models.base import utcnow  # noqa: E402
from tests.servers import free_port  # noqa: E402

CORPUS = ROOT / "tests" / "mail" / "gmail_reply_en.eml"


def build(url: str, customers: int):
    app = create_app(
        {
            "ENV_NAME": "development",
            "SQLALCHEMY_DATABASE_URI": url,
            "UPLOAD_FOLDER": tempfile.mkdtemp(prefix="cb-bench-uploads-"),
            "CAREBOX_MAIL_MAX_PER_HOUR": 10**9,  # the bench's senders write a lot
        }
    )
    from backoffice.domain import tickets
    from backoffice.models import TicketKind
    from backoffice.security_setup import user_datastore
    from backoffice.seed import seed_base

    people = []
    with app.app_context():
        db.create_all()
        seed_base()
        for n in range(customers):
            user = user_datastore.create_user(
                email=f"bench{n}@example.net",
                password=None,
                name=f"Bench {n}",
                active=True,
                roles=["customer"],
                confirmed_at=utcnow(),
            )
            db.session.flush()
            ticket = tickets.file_ticket(user, TicketKind.QUESTION, "Paket", "Halo")
            db.session.flush()
            people.append(
                (
                    user.email,
                    ticket.id,
                    email_threads.reply_address(ticket),
                    email_threads.thread_root(ticket),
                    ticket.number,
                )
            )
        db.session.commit()
    return app, people


def message(person) -> bytes:
    email, _tid, reply, root, number = person
    text = CORPUS.read_bytes()
    for key, value in {
        "FROM": email,
        "REPLY": reply,
        "ROOT": root,
        "NUMBER": number,
        "MID": f"<{uuid.uuid4().hex}@mail.example.net>",
    }.items():
        text = text.replace(b"{" + key.encode() + b"}", value.encode())
    return b"\r\n".join(text.splitlines()) + b"\r\n"


def per_message(fn, batch: int, runs: int) -> float:
    fn(batch)  # warm-up
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn(batch)
        samples.append((time.perf_counter() - start) * 1000 / batch)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--customers", type=int, default=100)
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    base = args.url or os.environ.get("TEST_DATABASE_URL") or "sqlite:///bench.db"
    url, drop = fresh_database(base)
    try:
        app, people = build(url, args.customers)
        engine = sa.create_engine(url)
        counter = iter(range(10**9))

        def pick():
            return people[next(counter) % len(people)]

        def store_carebox(n):
            with app.app_context():
                for _ in range(n):
                    email_in.store(message(pick()), "x@mail.example.net", ["care@x"])
                db.session.remove()

        def store_raw(n):
            with engine.connect() as conn:
                for _ in range(n):
                    raw = message(pick())
                    _insert_inbound(conn, raw)
                    conn.commit()

        receiver = MailReceiver(app, "127.0.0.1", free_port())
        receiver.start()

        def deliver_carebox(n):
            with smtplib.LMTP("127.0.0.1", receiver.port, timeout=60) as client:
                client.ehlo("bench")
                for _ in range(n):
                    person = pick()
                    refused = client.sendmail(person[0], [person[2]], message(person))
                    assert not refused, refused  # failures raise; refusals are listed

        def deliver_raw(n):
            with engine.connect() as conn:
                for _ in range(n):
                    person = pick()
                    raw = message(person)
                    row_id = _insert_inbound(conn, raw)
                    now = utcnow()
                    msg_id = conn.execute(
                        sa.text(
                            "INSERT INTO ticket_message (ticket_id, author_id, from_staff, "
                            "internal, body, channel, external_id, created_at) VALUES "
                            "(:t, NULL, :f, :f, :b, 'email', :e, :now)"
                        ),
                        {
                            "t": person[1],
                            "f": False,
                            "b": "Hi, reply",
                            "e": str(row_id),
                            "now": now,
                        },
                    ).lastrowid
                    conn.execute(
                        sa.text("UPDATE ticket SET last_message_at = :now WHERE id = :t"),
                        {"now": now, "t": person[1]},
                    )
                    conn.execute(
                        sa.text(
                            "UPDATE inbound_email SET status = 'posted', processed_at = :now, "
                            "ticket_id = :t, ticket_message_id = :m WHERE id = :id"
                        ),
                        {"now": now, "t": person[1], "m": msg_id, "id": row_id},
                    )
                    conn.commit()

        try:
            rows = [
                (
                    "store (ms per message)",
                    per_message(store_carebox, args.batch, args.runs),
                    per_message(store_raw, args.batch, args.runs),
                ),
                (
                    "deliver over LMTP, posted (ms per message)",
                    per_message(deliver_carebox, args.batch, args.runs),
                    per_message(deliver_raw, args.batch, args.runs),
                ),
            ]
        finally:
            receiver.stop()
        print(
            f"database: {sa.engine.make_url(url).get_backend_name()}, "
            f"{args.customers} customers, batches of {args.batch}, median of {args.runs}"
        )
        report(rows)
        for name, ours, raw in rows:
            print(
                f"{name.split(' (')[0]:44} {1000 / ours:9.0f} msg/s vs {1000 / raw:9.0f} msg/s raw"
            )
        engine.dispose()
        with app.app_context():
            db.engine.dispose()
    finally:
        drop()


def _insert_inbound(conn, raw: bytes) -> int:
    key = hashlib.sha256(raw).hexdigest()
    row_id = conn.execute(
        sa.text(
            "INSERT INTO inbound_email (dedup_key, message_id, mail_from, recipients, sender, "
            "subject, size, status, attempts, received_at) VALUES "
            "(:k, :m, :f, :r, :s, :subj, :size, 'received', 0, :now)"
        ),
        {
            "k": key,
            "m": key[:40],
            "f": "x@mail.example.net",
            "r": "care@x",
            "s": "x@mail.example.net",
            "subj": "Re: bench",
            "size": len(raw),
            "now": utcnow(),
        },
    ).lastrowid
    conn.execute(
        sa.text("INSERT INTO inbound_email_chunk (inbound_email_id, seq, data) VALUES (:i, 0, :d)"),
        {"i": row_id, "d": raw},
    )
    return row_id


if __name__ == "__main__":
    main()

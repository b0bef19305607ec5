"""Sending an announcement to N customers: the admin's request, then the worker's queueing.

Creates a fresh database on the server named by --url, DATABASE_URL or
TEST_DATABASE_URL (default: the local MariaDB), fills it with N customers (60%
consenting to marketing email, one in five reading English), then times:

- the confirmation request's work: `send_announcement` and its commit (it only
  counts the audience and logs the send);
- the worker's queueing, one chunk of `announcements.CHUNK` recipients per
  transaction: `queue_next_chunk` and its commit, against raw SQL doing the same
  work per chunk (the same recipient SELECT, hand-written; the same rendered
  email with each recipient's signed unsubscribe link; one INSERT executemany;
  the cursor UPDATE). Both queue the whole audience, and their outboxes are
  compared before any figure is printed.

    DATABASE_URL="mysql+pymysql://root@127.0.0.1:3306/test?charset=utf8mb4" \\
        .venv/bin/python bench/announcement_queueing.py --customers 200000
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import fresh_database  # noqa: E402

from backoffice import create_app  # noqa: E402
from backoffice.domain import announcements, loyalty  # noqa: E402
from backoffice.domain.announcements import Audience  # noqa: E402
from backoffice.domain.outbox import ANNOUNCEMENT, outbox_row  # noqa: E402
from backoffice.extensions import db  # noqa: E402
from backoffice.models import Announcement, AnnouncementSend, OutboxEmail, User  # noqa: E402
from backoffice.models.base import utcnow  # noqa: E402
from backoffice.models.user import roles_users  # noqa: E402

DEFAULT_URL = "mysql+pymysql://root@127.0.0.1:3306/test?charset=utf8mb4"
FILL_CHUNK = 10_000

RAW_CHUNK = """
SELECT u.id, u.email, u.name, u.locale FROM {user} u
WHERE u.active = 1 AND u.marketing_consent = 1 AND u.id > :cursor
  AND EXISTS (SELECT 1 FROM roles_users ru WHERE ru.user_id = u.id AND ru.role_id IN :roles)
ORDER BY u.id LIMIT :n
"""
RAW_INSERT = """
INSERT INTO outbox_email (recipient, subject, body_text, body_html, category, status, attempts,
    next_attempt_at, created_at, sender, message_id, headers, announcement_send_id)
VALUES (:recipient, :subject, :body_text, :body_html, :category, :status, :attempts,
    :next_attempt_at, :created_at, :sender, :message_id, :headers, :announcement_send_id)
"""


def fill(n: int, seed: int = 7) -> None:
    from backoffice.seed import seed_base

    seed_base()
    db.session.commit()
    rng = random.Random(seed)
    role_id = loyalty.customer_role_ids(db.session)[0]
    first = (db.session.scalar(sa.select(sa.func.max(User.id))) or 0) + 1
    now = utcnow()
    for start in range(first, first + n, FILL_CHUNK):
        ids = range(start, min(start + FILL_CHUNK, first + n))
        users = [
            {
                "id": uid,
                "email": f"bench{uid}@example.com",
                "password": None,
                "active": True,
                "fs_uniquifier": uuid.uuid4().hex,
                "name": f"Pelanggan {uid}",
                "locale": "en" if rng.random() < 0.2 else "id",
                "marketing_consent": rng.random() < 0.6,
                "created_at": now,
                "update_datetime": now,
            }
            for uid in ids
        ]
        db.session.execute(sa.insert(User), users)
        db.session.execute(
            sa.insert(roles_users), [{"user_id": uid, "role_id": role_id} for uid in ids]
        )
        db.session.commit()


def new_send(announcement, actor) -> AnnouncementSend:
    log = announcements.send_announcement(announcement, Audience.all_customers(), actor)
    db.session.commit()
    return log


def queue_carebox(chunk_ms: list[float]) -> int:
    total = 0
    while True:
        start = time.perf_counter()
        n = announcements.queue_next_chunk()
        db.session.commit()
        chunk_ms.append((time.perf_counter() - start) * 1000)
        total += n
        if not db.session.scalar(
            sa.select(sa.func.count()).where(AnnouncementSend.queued_at.is_(None))
        ):
            return total


def queue_raw(log_id: int, announcement, chunk_ms: list[float]) -> int:
    """The same work hand-written: SELECT, rows built alike, INSERT executemany, cursor UPDATE."""
    user = "`user`" if db.engine.dialect.name in ("mysql", "mariadb") else '"user"'
    select_chunk = sa.text(RAW_CHUNK.format(user=user)).bindparams(
        sa.bindparam("roles", expanding=True)
    )
    insert = sa.text(RAW_INSERT)
    roles = loyalty.customer_role_ids(db.session)
    rendered = {lang: announcements._render(announcement, lang) for lang in ("id", "en")}
    cursor, total, size = 0, 0, announcements.CHUNK
    with db.engine.connect() as conn:
        while True:
            start = time.perf_counter()
            with conn.begin():
                batch = conn.execute(
                    select_chunk, {"cursor": cursor, "roles": roles, "n": size}
                ).all()
                rows = []
                for uid, email, name, locale in batch:
                    subject, text, html = rendered[locale if locale in rendered else "id"]
                    url = announcements.unsubscribe_url(uid, log_id)
                    rows.append(
                        outbox_row(
                            (name, email),
                            subject,
                            text.replace(announcements._PLACEHOLDER, url),
                            html.replace(announcements._PLACEHOLDER, url),
                            category=ANNOUNCEMENT,
                            headers={
                                "List-Unsubscribe": f"<{url}>",
                                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
                            },
                            announcement_send_id=log_id,
                        )
                    )
                if rows:
                    conn.execute(insert, [{**r, "status": r["status"].value} for r in rows])
                conn.execute(
                    sa.text(
                        "UPDATE announcement_send SET queued_through = :c, queued = queued + :n "
                        "WHERE id = :id"
                    ),
                    {"c": batch[-1][0] if batch else cursor, "n": len(batch), "id": log_id},
                )
            chunk_ms.append((time.perf_counter() - start) * 1000)
            total += len(batch)
            if len(batch) < size:
                return total
            cursor = batch[-1][0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--url", help="server URL (default: DATABASE_URL, TEST_DATABASE_URL)")
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    args = parser.parse_args()
    url = args.url or os.environ.get("DATABASE_URL") or os.environ.get("TEST_DATABASE_URL")
    url, drop = fresh_database(url or DEFAULT_URL)
    app = create_app(
        {
            "ENV_NAME": "development",
            "SQLALCHEMY_DATABASE_URI": url,
            "CAREBOX_BASE_URL": "https://care.example.com",
        }
    )
    try:
        with app.app_context(), app.test_request_context():
            db.create_all()
            started = time.perf_counter()
            fill(args.customers)
            print(f"filled {args.customers} customers in {time.perf_counter() - started:.1f} s")
            from backoffice.domain import permissions as perm
            from backoffice.seed import ensure_user

            actor = ensure_user("bench.master@example.com", "bench-pass-2026", perm.MASTER_ADMIN)
            announcement = Announcement(
                title_id="Layanan baru", body_id="Kirim lebih cepat.", title_en="New service"
            )
            db.session.add(announcement)
            db.session.commit()

            confirm = []
            for _ in range(5):
                start = time.perf_counter()
                log = new_send(announcement, actor)
                confirm.append((time.perf_counter() - start) * 1000)
                db.session.delete(log)
                db.session.commit()
            audience = announcements.audience_count(Audience.all_customers())

            ours_ms: list[float] = []
            log = new_send(announcement, actor)
            start = time.perf_counter()
            ours = queue_carebox(ours_ms)
            ours_total = time.perf_counter() - start
            mine = sorted(
                db.session.scalars(
                    sa.select(OutboxEmail.recipient).where(
                        OutboxEmail.announcement_send_id == log.id
                    )
                )
            )

            raw_ms: list[float] = []
            raw_log = AnnouncementSend(
                announcement=announcement,
                audience_kind="all",
                audience_label="raw",
                targeted=audience,
                actor=actor,
                queued_at=utcnow(),  # the worker must not pick it up
            )
            db.session.add(raw_log)
            db.session.commit()
            start = time.perf_counter()
            raw = queue_raw(raw_log.id, announcement, raw_ms)
            raw_total = time.perf_counter() - start
            db.session.commit()  # a new snapshot: the raw rows came on another connection
            theirs = sorted(
                db.session.scalars(
                    sa.select(OutboxEmail.recipient).where(
                        OutboxEmail.announcement_send_id == raw_log.id
                    )
                )
            )
            assert ours == raw == audience and mine == theirs, (ours, raw, audience)

            median = statistics.median
            print(f"{db.engine.dialect.name}: {args.customers} customers, audience {audience}")
            print(f"confirm request (count, log, commit), median of 5: {median(confirm):.1f} ms")
            head = f"queueing, {announcements.CHUNK} a chunk"
            print(f"{head:30} carebox   raw SQL   ratio")
            line = "{:30} {:7.1f} {:9.1f} {:7.2f}"
            per_chunk = (median(ours_ms), median(raw_ms))
            print(line.format("median per chunk (ms)", *per_chunk, per_chunk[0] / per_chunk[1]))
            whole = (ours_total, raw_total)
            print(line.format("whole audience (s)", *whole, whole[0] / whole[1]))
            print(line.format("emails per second", ours / ours_total, raw / raw_total, 0)[:-8])
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        if not args.keep:
            drop()


if __name__ == "__main__":
    main()

"""`POST /api/v1/tracking-events` with a batch of 500 events, beside raw SQL inserting
the same rows in the same run (target: ≤ 250 ms median through the app).

Creates a fresh database on the server named by --url, DATABASE_URL or
TEST_DATABASE_URL (default: the local MariaDB), fills it with --orders shipments
(bench/tracking.py's loader), creates an API token, then times, alternating:

- carebox: the real WSGI app (Flask's test client, in process): bearer token lookup,
  JSON parsing, the OpenAPI schema check, `shipments.record_events` (checks, lookups,
  INSERT IGNORE, the orders following their latest event), the commit, the JSON
  answer with 500 results;
- raw SQL: the same rows by hand with PyMySQL — one SELECT of the 500 resis' ids, one
  executemany INSERT IGNORE of the 500 events, one UPDATE … JOIN moving the orders to
  their latest event, a commit.

With --import-events N it also runs `carebox tracking import` (the real command, a
child process) on two CSVs of N recent events each (8 per parcel, ending delivered),
for two sets of parcels: once with their customer not asking for shipment updates,
once asking (one email per parcel) — the cost of the emails in a big import.

Two cases: 500 `at_hub` events (no customer is told), and 500 `delivered` events of
customers who asked for shipment updates (500 emails queued through the outbox, set-
based; raw SQL then also inserts 500 pre-rendered outbox rows). Each run sends new
events (never "unchanged"); every run's counts are checked before any figure is
printed. The database is dropped afterwards unless --keep.

    .venv/bin/python bench/tracking_api.py --orders 100000 --runs 15
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import fresh_database  # noqa: E402
from tracking import fill  # noqa: E402

BATCH = 500


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


def _batches(resis, kind: str, runs: int, base: datetime, step_s: int):
    """`runs` bodies of BATCH events on distinct orders, each run at its own moment."""
    out = []
    for run in range(runs):
        chunk = resis[(run * BATCH) % len(resis) :][:BATCH]
        at = base + timedelta(seconds=step_s * run)
        wib = (at + timedelta(hours=7)).isoformat() + "+07:00"
        out.append(
            {"events": [{"resi": r, "event": kind, "occurred_at": wib, "location": "Bandung"}
                        for r in chunk]}
        )  # fmt: skip
    return out


def _raw_connection(url: str):
    import pymysql

    u = sa.engine.make_url(url)
    return pymysql.connect(
        host=u.host, port=u.port or 3306, user=u.username, password=u.password or "",
        database=u.database, charset="utf8mb4",
    )  # fmt: skip


def raw_batch(conn, body: dict, with_outbox: bool) -> int:
    """The same rows as the API inserts, by hand."""
    events = body["events"]
    with conn.cursor() as cur:
        resis = [e["resi"] for e in events]
        cur.execute(
            "SELECT resi, id FROM customer_order WHERE resi IN ("
            + ",".join(["%s"] * len(resis))
            + ")",
            resis,
        )
        ids = dict(cur.fetchall())
        rows = []
        for e in events:
            at = datetime.fromisoformat(e["occurred_at"])
            utc = (at - at.utcoffset()).replace(tzinfo=None)
            rows.append((ids[e["resi"]], e["event"], utc, 420, e["location"], ""))
        inserted = cur.executemany(
            "INSERT IGNORE INTO tracking_event (order_id, event, occurred_at, utc_offset, "
            "location, note, source, actor_id, recorded_at) VALUES "
            "(%s, %s, %s, %s, %s, %s, 'api', NULL, NOW())",
            rows,
        )
        cur.execute(
            "UPDATE customer_order o JOIN (SELECT order_id, MAX(occurred_at) m FROM "
            "tracking_event WHERE order_id IN (" + ",".join(str(r[0]) for r in rows) + ") "
            "GROUP BY order_id) l ON l.order_id = o.id JOIN tracking_event e ON "
            "e.order_id = l.order_id AND e.occurred_at = l.m SET o.last_event = e.event, "
            "o.last_event_at = e.occurred_at, o.status = IF(e.event = 'delivered', "
            "'delivered', 'in_transit')"
        )
        if with_outbox:
            cur.executemany(
                "INSERT IGNORE INTO outbox_email (recipient, subject, body_text, body_html, "
                "category, status, attempts, next_attempt_at, created_at, message_id, "
                "dedupe_key) VALUES (%s, %s, %s, %s, 'transactional', 'pending', 0, NOW(), "
                "NOW(), %s, %s)",
                [
                    ("b@example.com", f"[{e['resi']}] Paket Anda: Sudah diterima",
                     "x" * 600, "<p>x</p>" * 150, f"<raw{r[0]}.{r[2]:%H%M%S}@bench>",
                     f"raw:{r[0]}:{r[2]:%Y%m%dT%H%M%S}")
                    for e, r in zip(events, rows, strict=True)
                ],
            )  # fmt: skip
    conn.commit()
    return inserted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--import-events", type=int, default=0)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    server = (
        args.url
        or os.environ.get("TEST_DATABASE_URL")
        or "mysql+pymysql://root@127.0.0.1:3306/test?charset=utf8mb4"
    )
    url, drop = fresh_database(server)
    try:
        resis = fill(url, args.orders)
        from backoffice import create_app
        from backoffice.domain import api_tokens
        from backoffice.extensions import db

        app = create_app({"ENV_NAME": "development", "SQLALCHEMY_DATABASE_URI": url,
                          "RATELIMIT_ENABLED": False})  # fmt: skip
        with app.app_context():
            with db.engine.begin() as conn:  # the bench customer asked for shipment updates
                conn.execute(sa.text("UPDATE user SET shipment_updates = 1"))
            secret = api_tokens.create("bench", ["tracking:write"])[1]
            db.session.commit()
        client = app.test_client()
        headers = {"Authorization": f"Bearer {secret}"}
        raw = _raw_connection(url)
        now = _now()
        print(f"{args.orders:,} shipments; batches of {BATCH} events; {args.runs} runs each "
              f"(+2 warm-up); load average {os.getloadavg()[0]:.2f}")  # fmt: skip
        rows = []
        for label, kind, with_outbox in (
            ("API batch of 500 at_hub events", "at_hub", False),
            ("API batch of 500 delivered (500 emails)", "delivered", True),
        ):
            n = args.runs + 2
            base = now - timedelta(hours=20 if kind == "at_hub" else 2)
            ours_bodies = _batches(resis, kind, n, base, 7)
            raw_bodies = _batches(resis[len(resis) // 2 :], kind, n, base + timedelta(
                seconds=3), 7)  # fmt: skip
            ours, theirs = [], []
            for i in range(n):
                start = time.perf_counter()
                resp = client.post("/api/v1/tracking-events", json=ours_bodies[i],
                                   headers=headers)  # fmt: skip
                ms = (time.perf_counter() - start) * 1000
                data = resp.get_json()
                assert resp.status_code == 200 and data["inserted"] == BATCH, (
                    resp.status_code, {k: data.get(k) for k in ("inserted", "unchanged",
                                                                "refused")})  # fmt: skip
                start = time.perf_counter()
                assert raw_batch(raw, raw_bodies[i], with_outbox) == BATCH
                raw_ms = (time.perf_counter() - start) * 1000
                if i >= 2:
                    ours.append(ms)
                    theirs.append(raw_ms)
            rows.append((label, statistics.median(ours), statistics.median(theirs),
                         max(ours)))  # fmt: skip
        with app.app_context():
            emails = db.session.scalar(
                sa.text("SELECT COUNT(*) FROM outbox_email WHERE dedupe_key LIKE 'shipment:%'")
            )
            db.engine.dispose()
        assert emails == (args.runs + 2) * BATCH, emails
        print(f"{'case':44} {'carebox ms':>11} {'raw SQL ms':>11} {'ratio':>7} {'max ms':>8}")
        for name, a, b, worst in rows:
            print(f"{name:44} {a:11.1f} {b:11.1f} {a / b:7.2f} {worst:8.1f}")
        print(f"shipment emails queued by the API runs: {emails:,}")
        raw.close()
        if args.import_events:
            import_with_and_without_emails(url, resis, args.import_events)
    finally:
        if not args.keep:
            drop()


def import_with_and_without_emails(url: str, resis: list[str], n_events: int) -> None:
    import csv
    import tempfile

    from tracking import KINDS, carebox_import

    per_half = n_events // len(KINDS)
    if 2 * per_half > len(resis) // 2:
        raise SystemExit(f"--orders must be at least {4 * per_half} for {n_events} events")
    engine = sa.create_engine(url)
    start = _now() - timedelta(hours=40)
    tmp = Path(tempfile.mkdtemp())
    figures = []
    try:
        for consent, half in ((0, resis[:per_half]), (1, resis[per_half : 2 * per_half])):
            with engine.begin() as conn:
                conn.execute(sa.text("UPDATE user SET shipment_updates = :c"), {"c": consent})
                before = conn.execute(sa.text("SELECT COUNT(*) FROM outbox_email")).scalar()
            path = tmp / f"events-{consent}.csv"
            with path.open("w", newline="", encoding="utf-8") as f:
                out = csv.writer(f)
                out.writerow(("resi", "event", "occurred_at", "location", "note"))
                for n, resi in enumerate(half):
                    for step, kind in enumerate(KINDS):
                        at = start + timedelta(hours=5 * step, seconds=n % 3600)
                        wib = (at + timedelta(hours=7)).isoformat() + "+07:00"
                        out.writerow((resi, kind, wib, "Bandung", ""))
            seconds, summary, rss = carebox_import(url, path)
            with engine.connect() as conn:
                after = conn.execute(sa.text("SELECT COUNT(*) FROM outbox_email")).scalar()
            figures.append((consent, seconds, after - before, summary, rss))
    finally:
        for f in tmp.iterdir():
            f.unlink()
        tmp.rmdir()
        engine.dispose()
    print(f"{'tracking import of ' + format(n_events, ',') + ' events':44} {'s':>8} "
          f"{'events/s':>10} {'emails':>8} {'peak RSS':>9}")  # fmt: skip
    for consent, seconds, emails, summary, rss in figures:
        label = "customers asked for updates" if consent else "no shipment updates asked"
        print(f"  {label:42} {seconds:8.1f} {n_events / seconds:10,.0f} {emails:8,} "
              f"{rss / 1024:7.0f} MB")  # fmt: skip
        print(f"    {summary}")
    print(f"  ratio with emails / without: {figures[1][1] / figures[0][1]:.2f}")
    emails = figures[1][2]
    raw_s = raw_outbox_rows(url, emails)
    extra = figures[1][1] - figures[0][1]
    print(f"  the emails' extra time {extra:.1f} s; raw SQL inserting {emails:,} outbox rows of "
          f"the same size (250 a commit, as the import's batches): {raw_s:.1f} s; "
          f"ratio {extra / raw_s:.2f}")  # fmt: skip


def raw_outbox_rows(url: str, n: int, per_commit: int = 250) -> float:
    """The floor of queueing `n` shipment emails: the same rows (copied from the ones
    carebox queued, new keys) inserted by PyMySQL executemany, a commit per chunk."""
    conn = _raw_connection(url)
    with conn.cursor() as cur:
        cur.execute(
            "SELECT recipient, subject, body_text, body_html FROM outbox_email "
            "WHERE dedupe_key LIKE 'shipment:%' ORDER BY id DESC LIMIT 1"
        )
        sample = cur.fetchone()
    started = time.perf_counter()
    with conn.cursor() as cur:
        for first in range(0, n, per_commit):
            cur.executemany(
                "INSERT IGNORE INTO outbox_email (recipient, subject, body_text, body_html, "
                "category, status, attempts, next_attempt_at, created_at, message_id, "
                "dedupe_key) VALUES (%s, %s, %s, %s, 'transactional', 'pending', 0, NOW(), "
                "NOW(), %s, %s)",
                [(*sample, f"<raw{i}@bench>", f"rawimport:{i}")
                 for i in range(first, min(first + per_commit, n))],
            )  # fmt: skip
            conn.commit()
    seconds = time.perf_counter() - started
    conn.close()
    return seconds


if __name__ == "__main__":
    main()

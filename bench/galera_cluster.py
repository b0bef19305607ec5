"""carebox on a three-node Galera cluster: filing tickets and delivering the outbox, on one
node and spread over three, against raw SQL doing the same writes in the same run.

Starts its own cluster on loopback (tests/servers.py GaleraCluster: three private
mariadbd's with galera-4, mariabackup state transfer), so it needs no database:

    .venv/bin/python bench/galera_cluster.py [--threads 6] [--tickets 40]

Cases (each thread files `--tickets` tickets, one transaction each):
- filing, all threads on node 1 (the deployment: haproxy sends every write to one node);
- filing, threads spread over the three nodes (every node takes writes: certification
  conflicts appear and are retried by backoffice/transactions.py);
- raw SQL: per ticket one transaction of the same four INSERTs carebox writes (ticket,
  first message, FILED event, the customer's email in the outbox), copied from a ticket
  carebox filed, through PyMySQL, on one node and on three; a 1213 is retried the same way.
- the outbox: 1 worker on node 1, then 2 workers on nodes 2 and 3, delivering to a local
  SMTP server, each email checked to arrive once.

Printed: the median milliseconds per ticket (per email) and its ratio to raw SQL, the
throughput of each case, and the conflicts retried.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from backoffice import create_app, transactions  # noqa: E402
from backoffice.channels import mailer  # noqa: E402
from backoffice.domain import outbox  # noqa: E402
from backoffice.domain import permissions as perm  # noqa: E402
from backoffice.domain import tickets as lifecycle  # noqa: E402
from backoffice.extensions import db  # noqa: E402
from backoffice.models import TicketKind, User  # noqa: E402
from tests.factories import Factories  # noqa: E402
from tests.servers import GaleraCluster  # noqa: E402
from tests.smtp_server import SmtpServer, free_port  # noqa: E402

DATABASE = "carebox_bench"


def app_for(url: str):
    return create_app(
        {
            "ENV_NAME": "testing",
            "SQLALCHEMY_DATABASE_URI": url,
            "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True, "pool_size": 10},
        }
    )


def run(threads: int, work) -> tuple[list[float], float]:
    """Run work(thread_index) -> [ms per item] in `threads` threads; (all samples, seconds)."""
    samples: list[float] = []
    lock = threading.Lock()

    def body(i):
        got = work(i)
        with lock:
            samples.extend(got)

    started = time.perf_counter()
    pool = [threading.Thread(target=body, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return samples, time.perf_counter() - started


def carebox_filing(apps, customer_ids, per_thread: int, spread: bool):
    def work(i):
        app = apps[i % len(apps)] if spread else apps[0]
        out = []
        with app.app_context():
            for k in range(per_thread):
                start = time.perf_counter()
                customer = db.session.get(User, customer_ids[i])
                transactions.retrying(
                    lambda c=customer, k=k: lifecycle.file_ticket(
                        c, TicketKind.QUESTION, f"bench {i}-{k}", "Di mana paket saya?"
                    ),
                    what="bench filing",
                )
                out.append((time.perf_counter() - start) * 1000)
            db.session.remove()
        return out

    return work


def raw_filing(nodes, template: dict, per_thread: int, spread: bool, conflicts: list):
    def work(i):
        node = nodes[i % len(nodes)] if spread else nodes[0]
        conn = node.connect(DATABASE)
        conn.autocommit(False)
        cols = template["ticket_cols"]
        out = []
        try:
            for k in range(per_thread):
                start = time.perf_counter()
                for _attempt in range(5):
                    try:
                        with conn.cursor() as cur:
                            cur.execute(
                                f"INSERT INTO ticket ({cols}) SELECT {cols} FROM ticket "  # noqa: S608
                                "WHERE id = %s",
                                (template["ticket"],),
                            )
                            new = cur.lastrowid
                            cur.execute(
                                "UPDATE ticket SET number = %s, subject = %s WHERE id = %s",
                                (f"RAW-{new}", f"raw {i}-{k}", new),
                            )
                            for table, col_key, row_key in (
                                ("ticket_message", "message_cols", "message"),
                                ("ticket_event", "event_cols", "event"),
                            ):
                                c = template[col_key]
                                cur.execute(
                                    f"INSERT INTO {table} (ticket_id, {c}) "  # noqa: S608
                                    f"SELECT %s, {c} FROM {table} WHERE id = %s",
                                    (new, template[row_key]),
                                )
                            c = template["outbox_cols"]
                            cur.execute(
                                f"INSERT INTO outbox_email ({c}) SELECT {c} "  # noqa: S608
                                "FROM outbox_email WHERE id = %s",
                                (template["outbox"],),
                            )
                        conn.commit()
                        break
                    except Exception as exc:  # noqa: BLE001 (a 1213 is retried, others raised)
                        conn.rollback()
                        if getattr(exc, "args", (None,))[0] != 1213:
                            raise
                        conflicts.append(1)
                out.append((time.perf_counter() - start) * 1000)
        finally:
            conn.close()
        return out

    return work


def columns(node, table: str, skip: set[str]) -> str:
    rows = node.query(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
        DATABASE,
        table,
    )
    return ", ".join(f"`{r[0]}`" for r in rows if r[0] not in skip)


def outbox_case(apps, smtp, emails: int, workers: list[int]):
    with apps[0].app_context():
        for i in range(emails):
            outbox.enqueue(f"bench{i}@example.com", f"Bench {i}", "Halo.")
        db.session.commit()
        db.session.remove()
    smtp.clear()
    per_mail: list[float] = []
    lock = threading.Lock()

    def work(i):
        app = apps[workers[i]]
        with app.app_context():
            idle = 0
            while idle < 3:
                start = time.perf_counter()
                report = mailer.send_pending(batch=10)
                if report.sent:
                    with lock:
                        per_mail.append((time.perf_counter() - start) * 1000 / report.sent)
                idle = idle + 1 if not report.claimed else 0
                if not report.claimed:
                    time.sleep(0.1)
            db.session.remove()
        return []

    _, seconds = run(len(workers), work)
    sent = Counter(m["X-Carebox-Outbox-Id"] for m in smtp.messages)
    assert all(n == 1 for n in sent.values()), "an email was sent twice"
    return len(sent), seconds - 0.3, statistics.median(per_mail)  # minus the idle turns


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=6)
    parser.add_argument("--tickets", type=int, default=40, help="per thread")
    parser.add_argument("--emails", type=int, default=300)
    args = parser.parse_args()

    started = time.perf_counter()
    with GaleraCluster(3) as cluster:
        print(f"cluster of {cluster.size()} nodes up in {time.perf_counter() - started:.1f} s")
        cluster.nodes[0].create_database(DATABASE)
        apps = [app_for(n.url(DATABASE)) for n in cluster.nodes]
        with apps[0].app_context():
            from backoffice.seed import seed_base

            db.create_all()
            seed_base()
            make = Factories(db)
            ids = [make.user(role=perm.CUSTOMER).id for _ in range(args.threads)]
            first = lifecycle.file_ticket(
                db.session.get(User, ids[0]), TicketKind.QUESTION, "template", "template"
            )
            db.session.commit()
            template = {"ticket": first.id}
            db.session.remove()
        n0 = cluster.nodes[0]
        for key, table in (("message", "ticket_message"), ("event", "ticket_event")):
            template[key] = n0.query(
                f"SELECT MIN(id) FROM {table} WHERE ticket_id = %s",  # noqa: S608
                template["ticket"],
                database=DATABASE,
            )[0][0]
        template["outbox"] = n0.query("SELECT MAX(id) FROM outbox_email", database=DATABASE)[0][0]
        template["ticket_cols"] = columns(n0, "ticket", {"id", "number"})
        template["message_cols"] = columns(n0, "ticket_message", {"id", "ticket_id"})
        template["event_cols"] = columns(n0, "ticket_event", {"id", "ticket_id"})
        template["outbox_cols"] = columns(n0, "outbox_email", {"id"})

        total = args.threads * args.tickets
        print(f"\nfiling: {args.threads} threads x {args.tickets} tickets = {total} per case")
        print(
            f"{'case':34} {'carebox ms':>11} {'raw SQL ms':>11} {'ratio':>6}"
            f" {'carebox/s':>10} {'raw/s':>7} {'retried':>8}"
        )
        for label, spread in (("one node (haproxy's way)", False), ("three nodes", True)):
            before = transactions.counts.snapshot()["retried"]
            ours, our_s = run(args.threads, carebox_filing(apps, ids, args.tickets, spread))
            retried = transactions.counts.snapshot()["retried"] - before
            raw_conflicts: list[int] = []
            raw, raw_s = run(
                args.threads,
                raw_filing(cluster.nodes, template, args.tickets, spread, raw_conflicts),
            )
            mo, mr = statistics.median(ours), statistics.median(raw)
            print(
                f"{label:34} {mo:11.2f} {mr:11.2f} {mo / mr:6.2f}"
                f" {total / our_s:10.1f} {total / raw_s:7.1f}"
                f" {retried:>4}/{len(raw_conflicts):<3}"
            )
        print("(retried: carebox/raw SQL conflicts (1213) met and run again)")

        smtp = SmtpServer(free_port())
        smtp.start()
        for app in apps:
            app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=smtp.port, MAIL_TIMEOUT=5)
        try:
            # The filing cases queued mail too: deliver it first, then time a clean batch.
            outbox_case(apps, smtp, 0, [0])
            print(f"\noutbox: {args.emails} emails per case, batches of 10")
            print(f"{'case':34} {'ms/email':>9} {'emails/s':>9} {'retried':>8}")
            for label, workers in (("1 worker, node 1", [0]), ("2 workers, nodes 2 and 3", [1, 2])):
                before = transactions.counts.snapshot()["retried"]
                sent, seconds, median = outbox_case(apps, smtp, args.emails, workers)
                retried = transactions.counts.snapshot()["retried"] - before
                assert sent == args.emails, (sent, args.emails)
                print(f"{label:34} {median:9.2f} {sent / seconds:9.1f} {retried:8}")
        finally:
            smtp.stop()
        for app in apps:
            with app.app_context():
                db.engine.dispose()


if __name__ == "__main__":
    main()

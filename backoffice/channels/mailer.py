"""Delivering the outbox: claim due rows, send them over SMTP, record what happened.

Guarantees:
- A row is sent by the one worker holding its claim. Claims are taken with
  `SELECT … FOR UPDATE SKIP LOCKED` on MariaDB/MySQL (workers never wait for
  each other) and with a single `UPDATE … WHERE id IN (SELECT … LIMIT n)` on
  SQLite (one writer at a time, so the statement is atomic). A worker checks
  that it still holds the claim before each send and, once half of it is spent,
  renews it for the rest of its batch, so a slow worker never races the one that
  would take over, however long the batch takes.
- A claimed row's `next_attempt_at` is its claim deadline: if the worker dies,
  the row becomes due again after `claim_timeout_seconds` (one attempt spent).
- When the SMTP server cannot be reached, the claimed rows go back to pending
  without spending an attempt: an outage loses nothing and never gives up.
- A message the server refuses is retried with exponential backoff and
  recorded `failed` after `max_attempts` (at once for a permanent 5xx refusal).
- Delivery is at-least-once only where SMTP itself is: a worker that dies
  between the server's "250 OK" and the commit of `sent` leaves a row that is
  sent again after the claim timeout, under the same Message-ID.

- A row queued unrendered (domain/outbox.py `enqueue_template`) is rendered here before
  each attempt, from the template, language and context stored with it; what was sent is
  stored with `sent`. A row that cannot be rendered is refused like a message the server
  refuses (retried, then `failed`), without holding up the rest of the batch.

- Announcements are queued here too, a chunk per turn of the worker (`work`), so
  that the admin's request that confirms a send stays short whatever the audience.

Every delivery step commits its own short transaction on its own connection:
`send_pending` never touches `db.session`, so a caller's pending changes stay
its own.
"""

from __future__ import annotations

import json
import logging
import smtplib
import ssl
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime

from flask import current_app
from jinja2 import TemplateError
from sqlalchemy import and_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from ..config import ConfigError
from ..domain import announcements, outbox
from ..extensions import db
from ..models import AnnouncementSend, OutboxEmail, OutboxStatus
from ..models.base import utcnow
from ..transactions import CertificationConflict, retrying

log = logging.getLogger("carebox.outbox")

DEFAULT_OUTBOX = {
    "batch": 50,  # rows one worker claims at a time
    "interval_seconds": 5.0,  # `--loop` sleeps this long when the outbox is empty
    "max_attempts": 8,  # refused messages are given up (`failed`) after this many tries
    "backoff_seconds": 60,  # retry after 1, 2, 4, … minutes …
    "backoff_max_seconds": 6 * 3600,  # … at most 6 hours apart
    "outage_retry_seconds": 30,  # SMTP unreachable: try the rows again after this
    # A claim older than this is a dead worker's: its batch is due again this long after
    # the claim, so a crash delays mail by two minutes, not ten. Short is safe because a
    # live worker renews its claim before each send once half of it is spent (see
    # `_still_mine`): every send starts with at least 60 s of claim left, six times
    # MAIL_TIMEOUT (10 s, the bound on each SMTP step), however long the whole batch takes.
    "claim_timeout_seconds": 120,
}

# Lines up to SMTP's own limit (RFC 5322: 998): with the default 78, the email package
# folds a long header it cannot break at a space into RFC 2047 words, and
# `List-Unsubscribe: =?utf-8?q?=3Chttps...` is a link no mail client acts on (RFC 2369
# and 8058 want the raw `<https://…>` on one line; docs/architecture.md §13, trap 19).
MAIL_POLICY = policy.SMTP.clone(max_line_length=998)

T = OutboxEmail.__table__
# Recording a delivery's outcome meets the announcement's counter row that other workers
# update too; it is tried harder than other steps, since a mail sent but not recorded
# `sent` would be sent again once its claim expires.
RECORD_ATTEMPTS = 20
SENDING, PENDING = OutboxStatus.SENDING.value, OutboxStatus.PENDING.value


def settings() -> dict:
    """DEFAULT_OUTBOX overlaid with the app's `CAREBOX_OUTBOX`.

    Unless set there, the claim timeout grows with a raised MAIL_TIMEOUT, so the claim
    left at each send stays at least six SMTP timeouts.
    """
    out = {**DEFAULT_OUTBOX, **(current_app.config.get("CAREBOX_OUTBOX") or {})}
    if "claim_timeout_seconds" not in (current_app.config.get("CAREBOX_OUTBOX") or {}):
        mail_timeout = float(current_app.config.get("MAIL_TIMEOUT") or 10)
        out["claim_timeout_seconds"] = max(out["claim_timeout_seconds"], 12 * mail_timeout)
    return out


@dataclass
class Claimed:
    """A row this worker holds, with what it needs to send it."""

    id: int
    token: str
    claimed_at: datetime
    attempts: int
    recipient: str
    subject: str
    body_text: str
    body_html: str | None
    sender: str | None
    message_id: str | None
    headers: str | None
    announcement_send_id: int | None
    template: str | None = None
    lang: str | None = None
    context: str | None = None


@dataclass
class SendReport:
    queued: int = 0  # announcement emails put in the outbox by this step
    claimed: int = 0
    sent: int = 0
    retried: int = 0  # refused, due again later
    failed: int = 0  # given up
    released: int = 0  # SMTP unreachable: back to pending, no attempt spent
    lost: int = 0  # the claim expired and another worker took the row over

    def __str__(self) -> str:
        return (
            f"announcement emails queued {self.queued}, claimed {self.claimed}, "
            f"sent {self.sent}, retry later {self.retried}, "
            f"failed {self.failed}, SMTP unreachable {self.released}, lost claims {self.lost}"
        )


class TransportUnavailable(Exception):
    """The mail server cannot be reached or refuses us as a client: not the message's fault."""


class SMTPTransport:
    """One SMTP connection for a batch, opened on first use and reopened after a drop."""

    def __init__(self, config):
        self.host = config["MAIL_SERVER"]
        self.port = int(config.get("MAIL_PORT") or (465 if config.get("MAIL_USE_SSL") else 25))
        self.use_tls = bool(config.get("MAIL_USE_TLS"))
        self.use_ssl = bool(config.get("MAIL_USE_SSL"))
        self.username = config.get("MAIL_USERNAME")
        self.password = config.get("MAIL_PASSWORD")
        self.timeout = float(config.get("MAIL_TIMEOUT") or 10)
        self.conn: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        try:
            if self.use_ssl:
                conn = smtplib.SMTP_SSL(
                    self.host,
                    self.port,
                    timeout=self.timeout,
                    context=ssl.create_default_context(),
                )
            else:
                conn = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            try:
                if self.use_tls:
                    conn.starttls(context=ssl.create_default_context())
                if self.username:
                    conn.login(self.username, self.password or "")
            except BaseException:
                conn.close()
                raise
        except (OSError, smtplib.SMTPException) as exc:
            raise TransportUnavailable(f"{self.host}:{self.port}: {exc}") from exc
        return conn

    def send(self, message: EmailMessage) -> None:
        if self.conn is None:
            self.conn = self._connect()
        try:
            self.conn.send_message(message)
        except (smtplib.SMTPRecipientsRefused, smtplib.SMTPResponseException):
            raise  # the server answered: the connection is still good for the next one
        except OSError:  # dropped or timed out (SMTPException is an OSError too)
            self.close()
            raise

    def close(self) -> None:
        if self.conn is not None:
            conn, self.conn = self.conn, None
            try:
                conn.quit()
            except (OSError, smtplib.SMTPException):
                conn.close()


class LogTransport:
    """Development without MAIL_SERVER: the mail is written to the log and counts as sent."""

    def send(self, message: EmailMessage) -> None:
        body = message.get_body(("plain",))
        log.info(
            "outbox (no MAIL_SERVER, not sent) To: %s | Subject: %s\n%s",
            message["To"],
            message["Subject"],
            body.get_content() if body is not None else "",
        )

    def close(self) -> None:
        pass


def transport():
    """SMTP when MAIL_SERVER is set; the log in development and tests; an error in production."""
    config = current_app.config
    if config.get("MAIL_SERVER"):
        return SMTPTransport(config)
    if config.get("ENV_NAME") in ("development", "testing"):
        return LogTransport()
    raise ConfigError("MAIL_SERVER is not set: carebox cannot deliver email in production.")


def build_message(row: Claimed) -> EmailMessage:
    """The MIME message of a row: text, plus an HTML alternative when there is one; a row
    queued unrendered is rendered first (its bodies kept on `row` for `_mark_sent`)."""
    if row.template:
        row.body_text, row.body_html = outbox.render(
            row.template, row.lang or "", row.subject, row.context or "{}"
        )
    config = current_app.config
    msg = EmailMessage(policy=MAIL_POLICY)
    msg["From"] = row.sender or config["MAIL_DEFAULT_SENDER"]
    msg["To"] = row.recipient
    msg["Subject"] = row.subject
    msg["Date"] = format_datetime(datetime.now(UTC))
    if row.message_id:
        msg["Message-ID"] = row.message_id
    msg["X-Carebox-Outbox-Id"] = str(row.id)
    for name, value in json.loads(row.headers or "{}").items():
        msg[name] = value
    msg.set_content(row.body_text or "")
    if row.body_html:
        msg.add_alternative(row.body_html, subtype="html")
    return msg


def _is_mysql() -> bool:
    return db.engine.dialect.name in ("mysql", "mariadb")


def claim(batch: int | None = None, now: datetime | None = None) -> list[Claimed]:
    """Take up to `batch` due rows (pending and due, or a dead worker's) for this worker.

    Commits the claim before returning, so other workers skip these rows.
    """
    cfg = settings()
    batch = int(batch or cfg["batch"])
    now = now or utcnow()
    token = uuid.uuid4().hex
    values = {
        "status": SENDING,
        "claim_token": token,
        "claimed_at": now,
        "next_attempt_at": now + timedelta(seconds=cfg["claim_timeout_seconds"]),
        "attempts": T.c.attempts + 1,
    }
    oldest = (T.c.next_attempt_at, T.c.id)
    # The UPDATE re-checks what the SELECT chose (a compare-and-set): under Galera the
    # SELECT's row locks bind only this node, and it is this write that certification
    # lets through for exactly one of two workers racing on two nodes; the loser's
    # commit fails with 1213 and changed nothing, so the claim is simply taken again.
    still_due = and_(T.c.status.in_((PENDING, SENDING)), T.c.next_attempt_at <= now)

    def take() -> None:
        with db.engine.connect() as conn:
            if _is_mysql():
                # READ COMMITTED: no gap locks, so enqueuing never waits on a claim.
                conn = conn.execution_options(isolation_level="READ COMMITTED")
                with conn.begin():
                    ids: list[int] = []
                    # One status at a time, in the index's own order: with a filesort
                    # (an IN over both statuses) InnoDB would lock every due row
                    # before LIMIT applies, and the other workers would find none.
                    for status in (PENDING, SENDING):
                        ids += conn.scalars(
                            select(T.c.id)
                            .where(T.c.status == status, T.c.next_attempt_at <= now)
                            .order_by(*oldest)
                            .limit(batch - len(ids))
                            .with_for_update(skip_locked=True)
                        ).all()
                        if len(ids) >= batch:
                            break
                    if ids:
                        conn.execute(update(T).where(T.c.id.in_(ids), still_due).values(**values))
            else:
                # SQLite has no row locks; one UPDATE with its own subquery is atomic
                # because SQLite runs one writer at a time.
                with conn.begin():
                    a = T.alias("candidate")  # an alias, or the subquery correlates
                    pick = (
                        select(a.c.id)
                        .where(a.c.status.in_((PENDING, SENDING)), a.c.next_attempt_at <= now)
                        .order_by(a.c.next_attempt_at, a.c.id)
                        .limit(batch)
                    )
                    conn.execute(update(T).where(T.c.id.in_(pick)).values(**values))

    retrying(take, commit=False, what="outbox claim")
    with db.engine.connect() as conn, conn.begin():
        rows = conn.execute(
            select(
                T.c.id,
                T.c.attempts,
                T.c.recipient,
                T.c.subject,
                T.c.body_text,
                T.c.body_html,
                T.c.sender,
                T.c.message_id,
                T.c.headers,
                T.c.announcement_send_id,
                T.c.template,
                T.c.lang,
                T.c.context,
            )
            .where(T.c.claim_token == token)
            .order_by(T.c.id)
        ).all()
    return [Claimed(token=token, claimed_at=now, **row._mapping) for row in rows]


def _mine(row: Claimed):
    return and_(T.c.id == row.id, T.c.claim_token == row.token, T.c.status == SENDING)


def _still_mine(row: Claimed, now: datetime, timeout: float, rest: list[Claimed] = ()) -> bool:
    """Whether the claim is ours to send on; renews it once half of it is spent.

    The renewal covers `rest`, the batch's rows still to send, too: they share the
    claim's deadline, and a batch that outlasts the timeout would otherwise lose its
    tail to another worker while this one is still sending.
    """
    if (now - row.claimed_at).total_seconds() < timeout / 2:
        return True  # not even half-way to the deadline: nobody else can have it
    values = {"claimed_at": now, "next_attempt_at": now + timedelta(seconds=timeout)}

    def renew() -> list[Claimed]:
        with db.engine.begin() as conn:
            if not conn.execute(update(T).where(_mine(row)).values(**values)).rowcount:
                return []
            return [row] + [
                other
                for other in rest
                if other is not row
                and conn.execute(update(T).where(_mine(other)).values(**values)).rowcount
            ]

    renewed = retrying(renew, commit=False, what="outbox renew")
    for claimed in renewed:
        claimed.claimed_at = now
    return bool(renewed)


def _count(conn: Connection, row: Claimed, column: str) -> None:
    if row.announcement_send_id is not None:
        table = AnnouncementSend.__table__
        conn.execute(
            update(table)
            .where(table.c.id == row.announcement_send_id)
            .values({column: table.c[column] + 1})
        )


def _mark_sent(row: Claimed, now: datetime) -> None:
    values = {
        "status": OutboxStatus.SENT.value,
        "sent_at": now,
        "claim_token": None,
        "last_error": None,
    }
    if row.template:  # rendered by this worker: the row keeps what was sent
        values.update(body_text=row.body_text, body_html=row.body_html)

    # Retried on a conflict (two workers counting sends of one announcement on two
    # nodes): a mail sent but not recorded would be sent again after the claim timeout.
    def record() -> int:
        with db.engine.begin() as conn:
            done = conn.execute(update(T).where(_mine(row)).values(**values)).rowcount
            if done:
                _count(conn, row, "sent")
            return done

    done = retrying(record, commit=False, attempts=RECORD_ATTEMPTS, what="outbox sent")
    if not done:
        log.warning("outbox %s was sent after its claim expired", row.id)


def _permanent(exc: Exception) -> bool:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        return bool(codes) and all(code >= 500 for code in codes)
    if isinstance(exc, smtplib.SMTPResponseException):
        return exc.smtp_code >= 500
    return False


def _mark_refused(row: Claimed, exc: Exception, now: datetime, cfg: dict) -> bool:
    """Retry later with backoff, or give up; returns True when given up."""
    give_up = row.attempts >= cfg["max_attempts"] or _permanent(exc)
    delay = min(cfg["backoff_seconds"] * 2 ** (row.attempts - 1), cfg["backoff_max_seconds"])
    values = {"claim_token": None, "last_error": f"{type(exc).__name__}: {exc}"[:2000]}
    if give_up:
        values["status"] = OutboxStatus.FAILED.value
    else:
        values.update(status=PENDING, next_attempt_at=now + timedelta(seconds=delay))

    def record() -> None:
        with db.engine.begin() as conn:
            if conn.execute(update(T).where(_mine(row)).values(**values)).rowcount and give_up:
                _count(conn, row, "failed")

    retrying(record, commit=False, attempts=RECORD_ATTEMPTS, what="outbox refused")
    log.warning("outbox %s to %s: %s (%s)", row.id, row.recipient, exc, values["status"])
    return give_up


def _release(rows: list[Claimed], reason: str, now: datetime, cfg: dict) -> None:
    """Hand rows back untried: the attempt the claim counted is given back."""

    def record() -> None:
        with db.engine.begin() as conn:
            for row in rows:
                conn.execute(
                    update(T)
                    .where(_mine(row))
                    .values(
                        status=PENDING,
                        claim_token=None,
                        attempts=T.c.attempts - 1,
                        last_error=reason[:2000],
                        next_attempt_at=now + timedelta(seconds=cfg["outage_retry_seconds"]),
                    )
                )

    retrying(record, commit=False, what="outbox release")


def deliver(
    rows: list[Claimed], *, clock: Callable[[], datetime] = utcnow, sender=None
) -> SendReport:
    """Send claimed rows one by one and record each outcome (see the module's guarantees)."""
    cfg = settings()
    report = SendReport(claimed=len(rows))
    if not rows:
        return report
    sender = sender or transport()
    try:
        for index, row in enumerate(rows):
            if not _still_mine(row, clock(), cfg["claim_timeout_seconds"], rows[index:]):
                report.lost += 1
                continue
            try:
                message = build_message(row)
            except (TemplateError, ValueError, KeyError, TypeError) as exc:
                # Unrenderable (a template gone or broken by a deploy, a context it cannot
                # use): retried later like a refusal, and the batch goes on meanwhile.
                if _mark_refused(row, exc, clock(), cfg):
                    report.failed += 1
                else:
                    report.retried += 1
                continue
            try:
                sender.send(message)
            except TransportUnavailable as exc:
                rest = rows[index:]
                _release(rest, f"SMTP unavailable: {exc}", clock(), cfg)
                report.released += len(rest)
                log.error("outbox: SMTP unavailable (%s); %d email(s) kept", exc, len(rest))
                break
            except (smtplib.SMTPException, OSError, ValueError) as exc:
                if _mark_refused(row, exc, clock(), cfg):
                    report.failed += 1
                else:
                    report.retried += 1
                continue
            _mark_sent(row, clock())
            report.sent += 1
    finally:
        sender.close()
    return report


def send_pending(batch: int | None = None, now: datetime | None = None) -> SendReport:
    """Claim one batch of due email and deliver it. Needs an app context.

    `now` fixes the clock (tests); by default each step uses the current time.
    """
    sender = transport()  # a configuration error surfaces before anything is claimed
    rows = claim(batch, now)
    return deliver(rows, clock=(lambda: now) if now else utcnow, sender=sender)


def work(batch: int | None = None, now: datetime | None = None) -> SendReport:
    """One turn of the worker: queue the next chunk of an announcement, then send a batch.

    Unlike the rest of this module it commits `db.session` (the announcement
    chunk is written through the domain layer), so only a worker calls it.
    """
    try:
        # Two workers on two nodes may take the same chunk: the cursor's compare-and-set
        # is a write, so certification fails the later one (1213), which tries again.
        # The send's row is also where every delivery counts itself, so under a busy
        # cluster a chunk may keep losing: then it waits for the next turn, and the
        # mail already queued is delivered meanwhile (nothing is lost, nothing doubled).
        queued = retrying(
            lambda: announcements.queue_next_chunk(now=now), what="announcement queueing"
        )
    except CertificationConflict:
        db.session.rollback()
        log.warning("outbox: the next announcement chunk kept conflicting; next turn")
        queued = 0
    except DBAPIError:
        db.session.rollback()
        raise
    except Exception:
        # A send that cannot be queued (a broken template, say) must not hold up the
        # ticket mail behind it: say so in the log, and deliver what is queued.
        db.session.rollback()
        log.exception("outbox: could not queue the next announcement emails")
        queued = 0
    report = send_pending(batch, now)
    report.queued = queued
    return report


def run_loop(
    batch: int | None = None,
    interval: float | None = None,
    stop: threading.Event | None = None,
    on_report: Callable[[SendReport], None] | None = None,
) -> SendReport:
    """Send batches until `stop` is set; sleeps `interval` whenever a batch was not full.

    Stopping happens between batches, so a stopped worker leaves no claim behind.
    """
    cfg = settings()
    batch = int(batch or cfg["batch"])
    interval = float(cfg["interval_seconds"] if interval is None else interval)
    stop = stop or threading.Event()
    total = SendReport()
    while not stop.is_set():
        try:
            report = work(batch)
        except DBAPIError:
            # The database went away: nothing claimed is lost (claims time out); retry.
            log.exception("outbox: database error; retrying in %s s", interval)
            stop.wait(interval)
            continue
        for field in total.__dataclass_fields__:
            setattr(total, field, getattr(total, field) + getattr(report, field))
        if on_report and (report.claimed or report.queued):
            on_report(report)
        if (report.claimed < batch and not report.queued) or report.released:
            stop.wait(interval)
    return total

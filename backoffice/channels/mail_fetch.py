"""`carebox mail fetch`: inbound mail from a hosted IMAP mailbox (CAREBOX_IMAP_URL).

For a care address whose mailbox lives at a provider, where no mail server can
deliver to `carebox mail receive`. The same guarantees as the receiver
(`email_in`'s docstring), with IMAP's means:
- a message is stored (committed) before it is marked `\\Seen` on the server; if
  carebox stops in between, it is fetched again next time and recognised by its
  Message-ID, so it is processed once;
- only unseen messages are fetched, without marking them read (`BODY.PEEK[]`);
- with `--loop`, IMAP IDLE (RFC 2177) where the server offers it, so new mail is taken
  within a second; otherwise the mailbox is polled every `--interval` seconds. A lost
  connection is opened again after the interval.

imaplib (the standard library) speaks IMAP; its IDLE arrived only in Python 3.14, so the
few lines of IDLE are ours (`_idle`).
"""

from __future__ import annotations

import contextlib
import imaplib
import logging
import select
import ssl
import time
from dataclasses import dataclass
from email import policy
from email.parser import BytesParser
from email.utils import parseaddr
from urllib.parse import unquote, urlsplit

from ..extensions import db
from . import email_in
from .email_parse import header

log = logging.getLogger("carebox.mail")


@dataclass
class Mailbox:
    host: str
    port: int
    user: str
    password: str
    folder: str = "INBOX"
    tls: bool = False  # imaps:// (implicit TLS); imap:// upgrades with STARTTLS when offered


def mailbox(url: str) -> Mailbox:
    """`imap[s]://USER:PASSWORD@HOST[:PORT][/FOLDER]` (user and password URL-encoded)."""
    parts = urlsplit(url or "")
    if parts.scheme not in ("imap", "imaps") or not parts.hostname or not parts.username:
        raise ValueError("CAREBOX_IMAP_URL must look like imaps://user:password@host/INBOX")
    tls = parts.scheme == "imaps"
    return Mailbox(
        host=parts.hostname,
        port=parts.port or (993 if tls else 143),
        user=unquote(parts.username),
        password=unquote(parts.password or ""),
        folder=unquote(parts.path.lstrip("/")) or "INBOX",
        tls=tls,
    )


def connect(box: Mailbox, timeout: float = 30.0) -> imaplib.IMAP4:
    if box.tls:
        conn = imaplib.IMAP4_SSL(box.host, box.port, timeout=timeout)
    else:
        conn = imaplib.IMAP4(box.host, box.port, timeout=timeout)
        if "STARTTLS" in conn.capabilities:
            conn.starttls(ssl.create_default_context())
    conn.login(box.user, box.password)
    typ, _ = conn.select(_quote(box.folder))
    if typ != "OK":
        raise imaplib.IMAP4.error(f"cannot open folder {box.folder!r}")
    return conn


def _quote(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _envelope(raw: bytes) -> tuple[str, list[str]]:
    """IMAP has no envelope: the Return-Path and the recipient headers stand in for it."""
    head = BytesParser(policy=policy.default).parsebytes(raw, headersonly=True)
    return_path = header(head, "Return-Path")
    sender = return_path.strip().strip("<>") if return_path else None
    if sender is None:
        sender = parseaddr(header(head, "From"))[1] or "unknown"
    recipients = [v for k in ("Delivered-To", "X-Original-To") if (v := header(head, k))]
    return sender, recipients


def fetch_once(conn: imaplib.IMAP4, app) -> dict[str, int]:
    """Store, mark seen and process every unseen message; counts by resulting status."""
    counts: dict[str, int] = {}
    typ, data = conn.uid("SEARCH", None, "UNSEEN")
    if typ != "OK":
        raise imaplib.IMAP4.error("SEARCH UNSEEN failed")
    for uid in (data[0] or b"").split():
        typ, parts = conn.uid("FETCH", uid, "(BODY.PEEK[])")
        raw = next((p[1] for p in parts or [] if isinstance(p, tuple)), None)
        if typ != "OK" or raw is None:
            continue
        mail_from, recipients = _envelope(raw)
        with app.app_context():
            try:
                row_id, new = email_in.store(raw, mail_from, recipients)
            finally:
                db.session.remove()
        # Committed: now it may be marked read (a crash before this line re-fetches it,
        # and the Message-ID makes that harmless).
        conn.uid("STORE", uid, "+FLAGS.SILENT", r"(\Seen)")
        status = "duplicate"
        if new:
            with app.app_context():
                try:
                    status = str(email_in.process_one(row_id))
                finally:
                    db.session.remove()
        counts[status] = counts.get(status, 0) + 1
    return counts


def _idle(conn: imaplib.IMAP4, timeout: float, stop=None) -> None:
    """Wait in IMAP IDLE until the server announces something, `timeout` passes or `stop`."""
    tag = conn._new_tag()
    conn.send(tag + b" IDLE\r\n")
    line = conn.readline()
    if not line.startswith(b"+"):
        raise imaplib.IMAP4.error(f"IDLE refused: {line!r}")
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0 and not (stop and stop.is_set()):
        readable, _, _ = select.select([conn.sock], [], [], min(left, 1.0))
        if readable:
            conn.readline()  # "* n EXISTS" (or another untagged update): fetch now
            break
    conn.send(b"DONE\r\n")
    while True:
        line = conn.readline()
        if not line:
            raise imaplib.IMAP4.abort("connection closed during IDLE")
        if line.startswith(tag):
            return


def run_loop(app, url: str, interval: float, stop, on_report=None) -> None:
    """Fetch until `stop` (a threading.Event) is set; IDLE where offered, else poll."""
    box = mailbox(url)
    while not stop.is_set():
        conn = None
        try:
            conn = connect(box)
            idle = "IDLE" in conn.capabilities
            while not stop.is_set():
                counts = fetch_once(conn, app)
                if counts and on_report is not None:
                    on_report(counts)
                if idle:
                    _idle(conn, interval, stop)
                else:
                    conn.noop()
                    stop.wait(interval)
        except (imaplib.IMAP4.error, OSError) as exc:
            log.warning("IMAP %s: %s; trying again in %ss", box.host, exc, interval)
            stop.wait(interval)
        except Exception:
            log.exception("fetching mail failed; trying again in %ss", interval)
            stop.wait(interval)
        finally:
            if conn is not None:
                with contextlib.suppress(imaplib.IMAP4.error, OSError):
                    conn.logout()

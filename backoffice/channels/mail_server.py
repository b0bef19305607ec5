"""`carebox mail receive`: the LMTP (or SMTP) server the mail server delivers inbound mail to.

Answers, as RFC 5321 / RFC 2033 mean them:
- 250 once the raw message is committed (`email_in.store`); it is then processed
  (`email_in.process_one`), whose failure no longer concerns the mail server.
- 451 4.3.0 when it cannot be stored (the database is down): the mail server keeps
  the message in its queue and tries again later.
- 552 (aiosmtpd's own answer, after reading the data) for a message over
  `CAREBOX_MAIL_MAX_BYTES`; SIZE is announced, so a well-behaved client does not
  even send it.
- In LMTP, one recipient per transaction: further RCPTs get 452 (RFC 5321
  §4.5.3.1.10), and the mail server sends those in another transaction. LMTP
  answers DATA once per recipient, and aiosmtpd answers a refused DATA once, so
  with one recipient each answer is unambiguous. The same message for a second
  recipient is recognised by its Message-ID and stored once.

The database work runs in a small thread pool, each call in its own app context
(and so its own session), so the asyncio loop keeps serving other connections.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor

from aiosmtpd.controller import Controller
from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP
from flask import Flask

from ..extensions import db
from . import email_in

log = logging.getLogger("carebox.mail")

TEMPFAIL = "451 4.3.0 Cannot store the message now, try again later"
ACCEPTED = "250 2.0.0 Message accepted"


class InboundHandler:
    """aiosmtpd handler: store, answer, process (see the module's docstring)."""

    def __init__(self, app: Flask, *, lmtp: bool, workers: int = 4):
        self.app = app
        self.lmtp = lmtp
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mail-in")

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.lmtp and envelope.rcpt_tos:
            return "452 4.5.3 One recipient per transaction, send the others separately"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    def _store(self, raw: bytes, mail_from: str, recipients: list[str]):
        with self.app.app_context():
            try:
                return email_in.store(raw, mail_from, recipients)
            finally:
                db.session.remove()

    def _process(self, row_id: int) -> None:
        with self.app.app_context():
            try:
                email_in.process_one(row_id)
            except Exception:
                # Stored and acknowledged: `carebox mail process` picks it up later.
                log.exception("inbound email %s stored but not processed", row_id)
            finally:
                db.session.remove()

    async def handle_DATA(self, server, session, envelope):
        loop = asyncio.get_running_loop()
        raw = envelope.original_content or b""
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        try:
            row_id, new = await loop.run_in_executor(
                self.pool, self._store, raw, envelope.mail_from or "", list(envelope.rcpt_tos)
            )
        except Exception:
            log.exception("could not store a message from %s: answered 451", envelope.mail_from)
            return TEMPFAIL
        if new:
            await loop.run_in_executor(self.pool, self._process, row_id)
        return ACCEPTED

    def close(self) -> None:
        self.pool.shutdown(wait=True)


class MailReceiver(Controller):
    """The server in a thread of its own: `start()`, `stop()`; used by the CLI and the tests."""

    def __init__(self, app: Flask, host: str = "127.0.0.1", port: int = 2525, *, smtp=False):
        self.handler_obj = InboundHandler(app, lmtp=not smtp)
        self.smtp = smtp
        self.max_bytes = int(app.config["CAREBOX_MAIL_MAX_BYTES"])
        super().__init__(
            self.handler_obj,
            hostname=host,
            port=port,
            server_hostname=app.config.get("CAREBOX_REPLY_DOMAIN") or "carebox",
            ready_timeout=10.0,
        )

    def factory(self):
        cls = SMTP if self.smtp else LMTP
        return cls(
            self.handler,
            data_size_limit=self.max_bytes,
            enable_SMTPUTF8=True,
            hostname=self.SMTP_kwargs.get("hostname"),
            ident="carebox",
        )

    def stop(self, no_assert: bool = False):
        super().stop(no_assert=no_assert)
        self.handler_obj.close()


def serve(app: Flask, host: str, port: int, *, smtp: bool, retry_every: float, stop) -> None:
    """Run until `stop` (a threading.Event) is set; retry unprocessed rows every so often."""
    receiver = MailReceiver(app, host, port, smtp=smtp)
    receiver.start()
    try:
        while not stop.wait(retry_every):
            with app.app_context():
                try:
                    counts = email_in.process_pending()
                    if counts:
                        log.info("retried stored mail: %s", counts)
                except Exception:
                    log.exception("retrying stored mail failed; next turn in %ss", retry_every)
                finally:
                    db.session.remove()
    finally:
        receiver.stop()

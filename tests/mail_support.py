"""Inbound mail in tests: the corpus in tests/mail/, a running receiver, an LMTP/SMTP client.

Corpus files are real-shaped messages with placeholders, filled in per test:
`{FROM}` the sender's address, `{REPLY}` the ticket's reply address, `{ROOT}` its
thread root, `{MID}` a fresh Message-ID, `{NUMBER}` the ticket number.
"""

from __future__ import annotations

import smtplib
import uuid
from pathlib import Path

from backoffice.channels import email_threads
from backoffice.channels.mail_server import MailReceiver

from .servers import free_port

CORPUS = Path(__file__).parent / "mail"


def message_id() -> str:
    return f"<{uuid.uuid4().hex}@mail.example.net>"


def corpus(name: str, *, sender: str, ticket=None, mid: str | None = None, **extra) -> bytes:
    """A corpus message with its placeholders filled (CRLF line ends, as on the wire)."""
    text = (CORPUS / name).read_bytes()
    values = {
        "FROM": sender,
        "MID": mid or message_id(),
        "REPLY": email_threads.reply_address(ticket) if ticket is not None else "care@example.com",
        "ROOT": email_threads.thread_root(ticket) if ticket is not None else "",
        "NUMBER": (ticket.number or "") if ticket is not None else "",
        **extra,
    }
    for key, value in values.items():
        text = text.replace(b"{" + key.encode() + b"}", str(value).encode())
    return b"\r\n".join(text.splitlines()) + b"\r\n"


class Receiver:
    """`carebox mail receive` in this process (LMTP, or SMTP), on a free port."""

    def __init__(self, app, *, smtp: bool = False):
        self.app = app
        self.smtp = smtp
        self.port = free_port()
        self.server = MailReceiver(app, "127.0.0.1", self.port, smtp=smtp)

    def __enter__(self):
        self.server.start()
        return self

    def __exit__(self, *exc):
        self.server.stop()

    def client(self):
        if self.smtp:
            client = smtplib.SMTP("127.0.0.1", self.port, timeout=30)
            client.ehlo("mx.example.net")
        else:
            client = smtplib.LMTP("127.0.0.1", self.port, timeout=30)
            client.ehlo("mx.example.net")  # LMTP's ehlo() sends LHLO
        return client

    def deliver(self, raw: bytes, *, mail_from: str = "sender@mail.example.net", to=None):
        """One delivery; returns the server's (code, text) answer to DATA."""
        rcpt = to or ["care@reply.carebox.example"]
        with self.client() as client:
            code, text = client.mail(mail_from)
            assert code == 250, (code, text)
            for address in rcpt:
                code, text = client.rcpt(address)
                assert code == 250, (code, text)
            return client.data(raw)

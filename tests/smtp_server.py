"""A real SMTP server on loopback (aiosmtpd) that the outbox delivers to in tests.

A test module declares `smtp = pytest.fixture(running_smtp)`-style fixture (see
test_outbox.py): it starts a server on a free port of 127.0.0.1, points the
app's MAIL_SERVER/MAIL_PORT at it, and collects every message it accepts.
`smtp.stop()` closes the port (an outage); `smtp.start()` opens it again.
"""

from __future__ import annotations

import asyncio
import email
import socket
import threading
from email import policy
from email.message import EmailMessage

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Collector:
    def __init__(self):
        self.lock = threading.Lock()
        self.messages: list[EmailMessage] = []
        self.raw: list[bytes] = []  # the bytes of each message as it came over the wire
        self.envelopes: list = []
        self.refuse: set[str] = set()  # recipients answered with 550 (permanent)
        self.tempfail: set[str] = set()  # recipients answered with 451 (try again later)
        self.delay = 0.0  # seconds each DATA takes (lets concurrent workers interleave)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return "550 5.1.1 No such user here"
        if address in self.tempfail:
            return "451 4.3.0 Mailbox busy, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.delay:
            await asyncio.sleep(self.delay)
        message = email.message_from_bytes(envelope.content, policy=policy.default)
        with self.lock:
            self.messages.append(message)
            self.raw.append(envelope.original_content or envelope.content)
            self.envelopes.append(envelope)
        return "250 Message accepted for delivery"


class SmtpServer:
    def __init__(self, port: int):
        self.port = port
        self.handler = _Collector()
        self.controller: Controller | None = None

    def start(self) -> None:
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    @property
    def messages(self) -> list[EmailMessage]:
        with self.handler.lock:
            return list(self.handler.messages)

    @property
    def raw(self) -> list[bytes]:
        with self.handler.lock:
            return list(self.handler.raw)

    def to(self, address: str) -> list[EmailMessage]:
        """Messages whose envelope went to `address`."""
        with self.handler.lock:
            return [
                m
                for m, env in zip(self.handler.messages, self.handler.envelopes, strict=True)
                if address in env.rcpt_tos
            ]

    def clear(self) -> None:
        with self.handler.lock:
            self.handler.messages.clear()
            self.handler.raw.clear()
            self.handler.envelopes.clear()


def text_of(message: EmailMessage) -> str:
    return message.get_body(("plain",)).get_content().replace("\r\n", "\n")


def html_of(message: EmailMessage) -> str:
    return message.get_body(("html",)).get_content().replace("\r\n", "\n")


def running_smtp(app, monkeypatch):
    """Generator behind each test module's `smtp` fixture: a server the app delivers to."""
    server = SmtpServer(free_port())
    server.start()
    monkeypatch.setitem(app.config, "MAIL_SERVER", "127.0.0.1")
    monkeypatch.setitem(app.config, "MAIL_PORT", server.port)
    monkeypatch.setitem(app.config, "MAIL_TIMEOUT", 5)
    try:
        yield server
    finally:
        server.stop()

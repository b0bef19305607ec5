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

from .servers import IS_ROOT, Server, _binary, free_port

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


class Dovecot(Server):
    """A private dovecot (IMAP only, plain logins on loopback, Maildir in its directory).

    One user, `care` / `secret`. Debian's `dovecot-imapd` (.ci/debian-packages)."""

    name = "dovecot"
    port_taken = ("in use", "Address already in use")
    USER, PASSWORD = "care", "secret"

    def prepare(self) -> None:
        import os
        import pwd

        for sub in ("run", "state", "mail"):
            (self.dir / sub).mkdir(exist_ok=True)
        # Dovecot's auth and mail processes run as unprivileged users: they must reach
        # the password file and the mail (mkdtemp made the directory 0700).
        self.dir.chmod(0o711)
        if IS_ROOT:
            # Dovecot never serves mail as root: the mail belongs to its own user.
            owner = pwd.getpwnam("dovecot")
            uid, gid = owner.pw_uid, owner.pw_gid
            os.chown(self.dir / "mail", uid, gid)
        else:
            uid, gid = os.getuid(), os.getgid()
        users = self.dir / "users"
        users.write_text(f"{self.USER}:{{PLAIN}}{self.PASSWORD}\n")
        users.chmod(0o644)
        (self.dir / "dovecot.conf").write_text(
            f"""
base_dir = {self.dir}/run
state_dir = {self.dir}/state
log_path = {self.log_path}
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
first_valid_uid = {uid}
mail_location = maildir:{self.dir}/mail/%u
passdb {{
  driver = passwd-file
  args = {self.dir}/users
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={self.dir}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service stats {{
  unix_listener stats-reader {{
    mode = 0666
  }}
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
"""
        )

    def argv(self) -> list[str]:
        return [_binary("dovecot", "dovecot-imapd"), "-F", "-c", str(self.dir / "dovecot.conf")]

    def ping(self) -> bool:
        import imaplib

        try:
            conn = imaplib.IMAP4("127.0.0.1", self.port, timeout=2)
        except OSError:
            return False
        conn.logout()
        return True

    def url(self) -> str:
        return f"imap://{self.USER}:{self.PASSWORD}@127.0.0.1:{self.port}/INBOX"

    def deliver(self, raw: bytes) -> None:
        """Put a message in the INBOX as a mail server would (IMAP APPEND, unseen)."""
        import imaplib

        conn = imaplib.IMAP4("127.0.0.1", self.port, timeout=10)
        try:
            conn.login(self.USER, self.PASSWORD)
            typ, data = conn.append("INBOX", None, None, raw)
            assert typ == "OK", data
        finally:
            conn.logout()

    def unseen(self) -> int:
        import imaplib

        conn = imaplib.IMAP4("127.0.0.1", self.port, timeout=10)
        try:
            conn.login(self.USER, self.PASSWORD)
            conn.select("INBOX")
            return len(conn.search(None, "UNSEEN")[1][0].split())
        finally:
            conn.logout()

"""Email about a ticket that can be answered: reply addresses and threading headers.

Every email about a ticket carries, when `CAREBOX_REPLY_DOMAIN` is set:
- `Reply-To: <reply+TOKEN@CAREBOX_REPLY_DOMAIN>`. TOKEN is `<ticket id in base 36>`
  `-<MAC>`, the MAC an HMAC-SHA256 of the id under a key derived from SECRET_KEY,
  cut to 100 bits and written in lower-case base 32. So it cannot be guessed
  (2^100 tries), cannot be moved to another ticket (the MAC covers the id), and
  survives mail clients and servers that lower-case addresses (there is no upper
  case in it; checks lower-case first). Tokens do not expire: a reply to an old
  email still finds its ticket (which then reopens, or is followed up).
- `Message-ID` (the outbox row's, fixed when queued), `In-Reply-To` and
  `References`: the ticket's thread root `<ticket-TOKEN@CAREBOX_REPLY_DOMAIN>`
  and the customer's latest email in the ticket, so mail clients show every email
  of the ticket as one conversation. The root carries the token too: a client
  that drops Reply-To still answers with References naming the ticket.
- `X-Auto-Response-Suppress: All` (Exchange/Outlook: no out-of-office answers to
  carebox), and on the automatic notices `Auto-Submitted: auto-generated`
  (RFC 3834: well-behaved responders never answer them).

Signing keys: SECRET_KEY, then SECRET_KEY_FALLBACKS (Flask's rotation list), so a
key rotation does not orphan the replies to emails already sent.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from email.utils import formataddr

from flask import current_app
from sqlalchemy import select

from ..extensions import db
from ..models import MessageChannel, Ticket, TicketMessage

MAC_CHARS = 20  # 20 base-32 characters: 100 bits
REPLY_LOCAL = "reply"
# reply+<id>-<mac>: the id in base 36, the MAC in RFC 4648 base 32, lower case.
_TOKEN = r"[0-9a-z]{1,13}-[a-z2-7]{%d}" % MAC_CHARS  # noqa: UP031 (regex braces)
TOKEN_RE = re.compile(r"^([0-9a-z]{1,13})-([a-z2-7]{%d})$" % MAC_CHARS)  # noqa: UP031
ADDRESS_RE = re.compile(rf"(?:^|[<\s,;:]){REPLY_LOCAL}\+({_TOKEN})@([a-z0-9.-]+)", re.IGNORECASE)
ROOT_RE = re.compile(rf"<ticket-({_TOKEN})@([^>\s]+)>", re.IGNORECASE)


def reply_domain() -> str:
    return (current_app.config.get("CAREBOX_REPLY_DOMAIN") or "").strip().lower()


def _keys() -> list[bytes]:
    config = current_app.config
    keys = [config["SECRET_KEY"], *(config.get("SECRET_KEY_FALLBACKS") or [])]
    return [hashlib.sha256(b"carebox.reply-token:" + str(k).encode()).digest() for k in keys if k]


def _mac(key: bytes, ticket_id: int) -> str:
    digest = hmac.new(key, f"ticket:{ticket_id}".encode(), hashlib.sha256).digest()
    return base64.b32encode(digest).decode().lower()[:MAC_CHARS]


def _base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if not n:
            return out


def reply_token(ticket: Ticket) -> str:
    """The ticket's reply token (always the same for a ticket and key)."""
    return f"{_base36(ticket.id)}-{_mac(_keys()[0], ticket.id)}"


def ticket_id_of(token: str) -> int | None:
    """The ticket id a token names, when its MAC is right under any signing key; else None."""
    match = TOKEN_RE.match((token or "").strip().lower())
    if not match:
        return None
    ticket_id = int(match.group(1), 36)
    if not 0 < ticket_id < 2**63:
        return None
    if any(hmac.compare_digest(_mac(key, ticket_id), match.group(2)) for key in _keys()):
        return ticket_id
    return None


def reply_address(ticket: Ticket) -> str | None:
    domain = reply_domain()
    return f"{REPLY_LOCAL}+{reply_token(ticket)}@{domain}" if domain else None


def thread_root(ticket: Ticket) -> str:
    return f"<ticket-{reply_token(ticket)}@{reply_domain() or 'carebox.invalid'}>"


def tokens_in_addresses(values) -> list[str]:
    """Reply tokens in recipient addresses (envelope or To/Cc/Delivered-To headers)."""
    found = []
    for value in values:
        found += [m.group(1).lower() for m in ADDRESS_RE.finditer(f" {value or ''}")]
    return found


def tokens_in_references(values) -> list[str]:
    """Reply tokens in thread roots named by In-Reply-To / References."""
    return [m.group(1).lower() for value in values for m in ROOT_RE.finditer(value or "")]


def _last_customer_email(ticket: Ticket) -> str | None:
    stmt = (
        select(TicketMessage.external_id)
        .where(
            TicketMessage.ticket_id == ticket.id,
            TicketMessage.channel == MessageChannel.EMAIL,
            TicketMessage.from_staff.is_(False),
            TicketMessage.external_id.is_not(None),
        )
        .order_by(TicketMessage.id.desc())
        .limit(1)
    )
    return db.session.scalar(stmt)


_LOOK_IT_UP = object()


def ticket_headers(
    ticket: Ticket, *, automatic: bool, last_email: str | None | object = _LOOK_IT_UP
) -> dict[str, str]:
    """The headers of an email about `ticket` (see the module's docstring).

    `automatic`: a notice nobody typed (filed, finished, department), marked
    Auto-Submitted; a staff member's reply is not. `last_email`: the Message-ID of the
    customer's last email, when the caller already knows it (None: there is none), as
    a filing does from its one message; otherwise it is looked up.
    """
    headers = {"X-Auto-Response-Suppress": "All", "X-Carebox-Ticket": ticket.number or ""}
    if automatic:
        headers["Auto-Submitted"] = "auto-generated"
    address = reply_address(ticket)
    if address is None:
        return headers
    headers["Reply-To"] = formataddr((f"carebox {ticket.number}", address))
    root = thread_root(ticket)
    last = _last_customer_email(ticket) if last_email is _LOOK_IT_UP else last_email
    headers["In-Reply-To"] = last or root
    headers["References"] = f"{root} {last}" if last else root
    return headers

"""Queueing email: a row in the outbox, in the transaction of the change that caused it.

Nothing here talks to SMTP: `backoffice.channels.mailer` delivers the rows. `enqueue`
only adds to the session (no flush, no commit), so the email exists exactly
when the change that caused it is committed.

A row holds its rendered text and HTML, or (`enqueue_template`) the template, language
and JSON context that `render` turns into them: the worker renders such a row when it
sends it, so the request that queued it (filing a ticket) renders nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from email.utils import formataddr, getaddresses, make_msgid, parseaddr

from flask import current_app, render_template
from flask_babel import force_locale
from sqlalchemy import insert

from ..extensions import db
from ..models import OutboxEmail, OutboxStatus
from ..models.base import utcnow

TRANSACTIONAL = "transactional"
ANNOUNCEMENT = "announcement"
MAX_SUBJECT = 255


def one_line(text: str, limit: int = MAX_SUBJECT) -> str:
    """A header-safe single line: user-written subjects must not inject headers."""
    return " ".join(str(text or "").split())[:limit]


def _domain() -> str:
    sender = current_app.config.get("MAIL_DEFAULT_SENDER") or ""
    if isinstance(sender, tuple | list):
        sender = sender[-1]
    address = parseaddr(str(sender))[1]
    return address.rpartition("@")[2] or "carebox.invalid"


def new_message_id() -> str:
    """A unique Message-ID, fixed at enqueue time so any resend is recognisably the same mail."""
    return make_msgid(idstring="carebox", domain=_domain())


def _recipient(recipient: str | tuple[str, str]) -> str:
    if isinstance(recipient, tuple | list):
        name, address = recipient
        return formataddr((one_line(name), one_line(address))) if name else one_line(address)
    addresses = [a for _, a in getaddresses([str(recipient)]) if a]
    if len(addresses) != 1:
        raise ValueError(f"one recipient per outbox email, not {recipient!r}")
    return one_line(str(recipient))


def outbox_row(
    recipient: str | tuple[str, str],
    subject: str,
    text: str,
    html: str | None = None,
    *,
    category: str = TRANSACTIONAL,
    headers: Mapping[str, str] | None = None,
    sender: str | None = None,
    announcement_send_id: int | None = None,
    dedupe_key: str | None = None,
    now: datetime | None = None,
) -> dict:
    """The column values of one outbox row (for `enqueue` and bulk inserts)."""
    now = now or utcnow()
    return {
        "recipient": _recipient(recipient),
        "subject": one_line(subject),
        "body_text": text or "",
        "body_html": html,
        "category": one_line(category, 40),
        "status": OutboxStatus.PENDING,
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
        "sender": one_line(sender) if sender else None,
        "message_id": new_message_id(),
        "headers": json.dumps({k: one_line(v, 2000) for k, v in headers.items()})
        if headers
        else None,
        "announcement_send_id": announcement_send_id,
        "dedupe_key": dedupe_key,
    }


def enqueue(
    recipient: str | tuple[str, str], subject: str, text: str, html: str | None = None, **options
) -> OutboxEmail:
    """Queue one email in the current transaction; the caller commits (or rolls back).

    `options` are `outbox_row`'s (category, headers, sender, ...). Guarantees: one
    recipient per row; a header-safe subject; a Message-ID fixed now. The row is
    due at once; `carebox outbox send` delivers it.
    """
    row = OutboxEmail(**outbox_row(recipient, subject, text, html, **options))
    db.session.add(row)
    return row


def enqueue_template(
    recipient: str | tuple[str, str],
    subject: str,
    template: str,
    lang: str,
    context: Mapping[str, object],
    **options,
) -> OutboxEmail:
    """Queue one email as `email/<template>.txt/.html` to render in `lang` with `context`,
    which must be JSON values: what the template prints, user-written text as typed (the
    HTML template escapes it when the worker renders it, as it would here). Otherwise as
    `enqueue`: in the caller's transaction, one recipient, a header-safe subject."""
    values = outbox_row(recipient, subject, "", **options)
    values.update(body_text=None, template=template, lang=lang, context=json.dumps(context))
    row = OutboxEmail(**values)
    db.session.add(row)
    return row


def render(template: str, lang: str, subject: str, context: str) -> tuple[str, str]:
    """The text and HTML of a row queued by `enqueue_template` (`context` its JSON)."""
    ctx = {**json.loads(context), "subject": subject, "lang": lang}
    with force_locale(lang):
        text = render_template(f"email/{template}.txt", **ctx)
        html = render_template(f"email/{template}.html", **ctx)
    return text, html


def enqueue_once(rows: list[dict]) -> int:
    """Insert rows built by `outbox_row` with a `dedupe_key`, skipping every row whose key
    is queued already (by an earlier or a concurrent transaction): one multi-row
    INSERT IGNORE / INSERT OR IGNORE on the key's unique index. Returns the rows sent."""
    if not rows:
        return 0
    stmt = insert(OutboxEmail).prefix_with("IGNORE", dialect="mysql")
    stmt = stmt.prefix_with("OR IGNORE", dialect="sqlite")
    db.session.execute(stmt, rows)
    return len(rows)


def enqueue_many(rows: Iterable[dict], chunk: int = 1000) -> int:
    """Insert rows built by `outbox_row` in chunks (one executemany each); returns the count.

    Same transaction as the caller, like `enqueue`: for mass mailings, where one
    ORM object per email would be slow.
    """
    total, buffer = 0, []
    for row in rows:
        buffer.append(row)
        if len(buffer) >= chunk:
            db.session.execute(insert(OutboxEmail), buffer)
            total, buffer = total + len(buffer), []
    if buffer:
        db.session.execute(insert(OutboxEmail), buffer)
        total += len(buffer)
    return total

"""Shared bits of the hardening tests: apps configured as ops run them, and the mail they queue."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm.attributes import set_committed_value

from backoffice import create_app
from backoffice.domain.outbox import render
from backoffice.models import OutboxEmail

BASE = "https://care.example.com"
LINK_RE = re.compile(r"https?://[^\s\"'<>]+")


def make_app(database_url: str, env: str = "testing", **config):
    """An app on the test database; `env="production"` with the secrets it needs."""
    settings = {
        "ENV_NAME": env,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "CAREBOX_BASE_URL": BASE,
        "RATELIMIT_KEY_PREFIX": uuid.uuid4().hex,
    }
    if env == "production":
        settings.update(
            SECRET_KEY="k" * 40,
            SECURITY_PASSWORD_SALT="s" * 40,
            RATELIMIT_STORAGE_URI="memory://",
        )
    settings.update(config)
    return create_app(settings)


def as_sent(rows: Iterable[OutboxEmail]) -> list[OutboxEmail]:
    """`rows` with the text and HTML the outbox worker renders for a row queued unrendered
    (outbox.enqueue_template), set on the loaded rows only (nothing is written)."""
    rows = list(rows)
    for row in rows:
        if row.body_text is None:
            text, html = render(row.template, row.lang, row.subject, row.context)
            set_committed_value(row, "body_text", text)
            set_committed_value(row, "body_html", html)
    return rows


def mail_to(db, address: str) -> list[OutboxEmail]:
    """Every email queued for `address`, oldest first (a fresh snapshot on MariaDB), as
    the worker sends it (as_sent)."""
    db.session.commit()
    rows = db.session.scalars(select(OutboxEmail).order_by(OutboxEmail.id)).all()
    return as_sent(r for r in rows if address in r.recipient)


def links_in(row: OutboxEmail) -> list[str]:
    """The absolute links of an email, text and HTML parts alike."""
    return LINK_RE.findall(row.body_text + (row.body_html or ""))

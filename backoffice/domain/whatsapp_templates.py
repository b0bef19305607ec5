"""Approved WhatsApp templates: which one carebox uses when, and filling their parameters.

Outside the 24-hour customer-service window WhatsApp delivers only templates
that Meta approved. The master admin enters them (`WhatsAppTemplate`: name,
language, parameters, what they are used for); carebox never invents one.

- **Parameters** are the body's {{1}}, {{2}}, … in order, each named by a label.
  A label that is one of `FIELDS` is filled from the ticket (the desk prefills
  it, notifications fill it); any other label is typed by staff at the desk.
  A parameter is one line (the Cloud API refuses newlines and long runs of
  spaces in one), never empty.
- **Which template:** `for_use(use, language)` — the active one for that use in
  the customer's language, else in any language (by id): a notification in the
  wrong language beats none.
- **Before templates lived here** a single setting, `WHATSAPP_REPLY_TEMPLATE`,
  named the reply template. Migration 0027 seeds it as a `reply` template; until
  a `reply` template exists, the setting still counts (read-only, nothing written
  on the way).

Nothing here commits or reads the request.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import select

from ..extensions import db
from ..models import Ticket, User, WhatsAppTemplate, WhatsAppTemplateUse
from . import DomainError

MAX_PARAMS = 10
MAX_PARAM = 900  # one parameter: well under the API's limit for a body
LABEL_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
# Known fields a parameter label can name; the canned replies' placeholders and more.
FIELDS = (
    "nomor_tiket",
    "nama_pelanggan",
    "resi",
    "status_kiriman",
    "nama_agen",
    "balasan",
    "tautan_tiket",
    "tautan_rating",
    "tautan_klaim",  # the phone claim link (domain/phone_claims.py)
)
REPLY_PARAMS = ["nomor_tiket", "balasan"]  # what WHATSAPP_REPLY_TEMPLATE always took


@dataclass
class Template:
    """A template as the outbox sends it (a row, or the old setting)."""

    name: str
    language: str
    parameters: list[str] = field(default_factory=list)
    body: str = ""
    id: int | None = None


def one_line(text: str, limit: int = MAX_PARAM) -> str:
    """A template parameter: the API refuses newlines, tabs and runs of spaces in one."""
    flat = " ".join(str(text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def parse_parameters(text: str) -> list[str]:
    """The labels typed in the admin form (comma- or line-separated), checked.

    Raises DomainError naming the first bad label.
    """
    labels = [part.strip().lower() for part in re.split(r"[,\n]", text or "") if part.strip()]
    if len(labels) > MAX_PARAMS:
        raise DomainError(_("A template has at most %(n)d parameters.", n=MAX_PARAMS))
    for label in labels:
        if not LABEL_RE.fullmatch(label):
            raise DomainError(
                _(
                    "“%(label)s” is not a parameter name: use a-z, 0-9 and _, "
                    "starting with a letter.",
                    label=label[:40],
                )
            )
    return labels


def parameters_of(row: WhatsAppTemplate) -> list[str]:
    try:
        value = json.loads(row.parameters or "[]")
    except ValueError:
        return []
    return [str(v) for v in value] if isinstance(value, list) else []


def as_template(row: WhatsAppTemplate) -> Template:
    return Template(row.name, row.language, parameters_of(row), row.body or "", row.id)


def active_templates() -> list[WhatsAppTemplate]:
    """Every active template, for the desk's picker (by name, then language)."""
    stmt = (
        select(WhatsAppTemplate)
        .where(WhatsAppTemplate.active)
        .order_by(WhatsAppTemplate.name, WhatsAppTemplate.language, WhatsAppTemplate.id)
    )
    return list(db.session.scalars(stmt))


def get_active(template_id) -> WhatsAppTemplate | None:
    """An active template by id; None for anything else (a bad id included)."""
    try:
        pk = int(template_id)
    except (TypeError, ValueError):
        return None
    if not 0 < pk < 2**31:
        return None
    row = db.session.get(WhatsAppTemplate, pk)
    return row if row is not None and row.active else None


def _setting(language: str) -> Template | None:
    name = (current_app.config.get("WHATSAPP_REPLY_TEMPLATE") or "").strip()
    return Template(name, language, list(REPLY_PARAMS)) if name else None


def for_use(use: WhatsAppTemplateUse, language: str | None) -> Template | None:
    """The template carebox sends for `use` to a customer speaking `language`, if any."""
    stmt = (
        select(WhatsAppTemplate)
        .where(WhatsAppTemplate.active, WhatsAppTemplate.use == use)
        .order_by(WhatsAppTemplate.id)
    )
    rows = list(db.session.scalars(stmt))
    chosen = next((r for r in rows if r.language == language), rows[0] if rows else None)
    if chosen is not None:
        return as_template(chosen)
    if use is WhatsAppTemplateUse.REPLY:
        return _setting(language or current_app.config["BABEL_DEFAULT_LOCALE"])
    return None


def seed_from_setting() -> int:
    """`WHATSAPP_REPLY_TEMPLATE` as a `reply` template in both languages, once; how many added.

    The migration path from the single setting (migration 0027 does the same; so
    do `carebox seed` and the tests' WhatsApp fixture). Flushes, never commits.
    """
    name = (current_app.config.get("WHATSAPP_REPLY_TEMPLATE") or "").strip()[:512]
    if not name:
        return 0
    have = set(
        db.session.scalars(select(WhatsAppTemplate.language).where(WhatsAppTemplate.name == name))
    )
    added = 0
    for language in current_app.config["LANGUAGES"]:
        if language in have:
            continue
        db.session.add(
            WhatsAppTemplate(
                name=name,
                language=language,
                use=WhatsAppTemplateUse.REPLY,
                parameters=json.dumps(REPLY_PARAMS),
                body="",
                active=True,
            )
        )
        added += 1
    db.session.flush()
    return added


def known_values(ticket: Ticket, agent: User | None, **extra: str | None) -> dict[str, str | None]:
    """Each known field's value for `ticket` (None: no value); `extra` adds or overrides."""
    from . import canned
    from .links import absolute_url

    values: dict[str, str | None] = dict.fromkeys(FIELDS)
    if agent is not None:
        values.update(canned.values_for(ticket, agent))
    else:
        values["nomor_tiket"] = ticket.number
        values["nama_pelanggan"] = ticket.customer.name if ticket.customer else None
    values["tautan_tiket"] = absolute_url(f"/tickets/{ticket.number}")
    values.update(extra)
    return values


def prefill(template: Template, values: dict[str, str | None]) -> list[str]:
    """The parameters' starting values: known fields filled, the rest empty."""
    return [one_line(values.get(label) or "") for label in template.parameters]


def fill(template: Template, values: dict[str, str | None]) -> list[str]:
    """Every parameter's value for an automatic send; a missing one becomes "-".

    (An empty parameter is refused by the API; "-" keeps the message readable.)
    """
    return [one_line(values.get(label) or "") or "-" for label in template.parameters]


def checked_params(template: Template, given: list[str]) -> list[str]:
    """Staff's values for the template's parameters, one line each, none empty.

    Raises DomainError naming the first empty parameter.
    """
    params = [one_line(v) for v in given[: len(template.parameters)]]
    params += [""] * (len(template.parameters) - len(params))
    for label, value in zip(template.parameters, params, strict=True):
        if not value:
            raise DomainError(_("Fill in the template's parameter “%(label)s”.", label=label))
    return params


def render(template: Template, params: list[str]) -> str:
    """What the customer reads: the approved text with {{n}} filled, or, when the
    admin did not enter the text, the template's name and its parameters."""
    if template.body:

        def one(match: re.Match) -> str:
            index = int(match.group(1)) - 1
            return params[index] if 0 <= index < len(params) else match.group(0)

        return re.sub(r"\{\{\s*(\d+)\s*\}\}", one, template.body)
    shown = " · ".join(params)
    return f"[{template.name}] {shown}".strip()

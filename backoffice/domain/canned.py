"""Canned replies: who may use and manage which, and filling their placeholders.

- **Use:** a staff member uses the active shared replies for everyone, those
  shared with their own department, and their own personal ones
  (`usable_replies`). The master admin (CANNED_SHARED) uses every shared one.
- **Manage:** everyone manages their personal replies; only CANNED_SHARED
  manages shared ones (`manageable_scope`, the admin view's `scope()`).
- **Placeholders** `{nama_pelanggan}`, `{nomor_tiket}`, `{resi}`,
  `{status_kiriman}`, `{nama_agen}` are filled from the ticket. One without a
  value stays in the text exactly as written and is listed in `missing`, so the
  desk can highlight it: nothing is ever silently blank.
- **Usage** is counted when a reply that used the text is sent (`record_use`,
  an atomic UPDATE).

Nothing here commits or reads the request.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from sqlalchemy import and_, false, or_, select, update

from ..extensions import db
from ..models import CannedReply, Ticket, User
from . import permissions as perm
from . import shipments

PLACEHOLDERS = ("nama_pelanggan", "nomor_tiket", "resi", "status_kiriman", "nama_agen")
PLACEHOLDER_RE = re.compile(r"\{(" + "|".join(PLACEHOLDERS) + r")\}")
SHORTCUT_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")


def usable_scope(user: User):
    """WHERE clause of the canned replies `user` may insert."""
    if not perm.is_staff(user):
        return false()
    shared = CannedReply.owner_id.is_(None)
    if not perm.has(user, perm.CANNED_SHARED):
        shared = and_(
            shared,
            or_(
                CannedReply.department_id.is_(None),
                CannedReply.department_id == user.department_id,
            ),
        )
    return and_(CannedReply.active, or_(shared, CannedReply.owner_id == user.id))


def usable_replies(user: User) -> list[CannedReply]:
    """The replies `user` may insert: their own first, then the shared ones, by shortcut."""
    stmt = (
        select(CannedReply)
        .where(usable_scope(user))
        .order_by(CannedReply.owner_id.is_(None), CannedReply.shortcut, CannedReply.id)
    )
    return list(db.session.scalars(stmt))


def manageable_scope(user: User):
    """WHERE clause of the canned replies `user` may edit or delete."""
    if not perm.is_staff(user):
        return false()
    own = CannedReply.owner_id == user.id
    if perm.has(user, perm.CANNED_SHARED):
        return or_(own, CannedReply.owner_id.is_(None))
    return own


@dataclass
class Filled:
    text: str
    missing: list[str] = field(default_factory=list)


def values_for(ticket: Ticket, agent: User) -> dict[str, str | None]:
    """Each placeholder's value for `ticket` answered by `agent` (None: no value)."""
    resi = ticket.order.resi if ticket.order is not None else None
    return {
        "nama_pelanggan": ticket.customer.name or None,
        "nomor_tiket": ticket.number,
        "resi": resi,
        "status_kiriman": shipments.latest_status_text(resi) if resi else None,
        "nama_agen": agent.name or None,
    }


def body_for(reply: CannedReply, language: str) -> str:
    """The text in `language` ("en" or "id"); Indonesian when no English text exists."""
    if language == "en" and reply.body_en:
        return reply.body_en
    return reply.body_id


def fill(reply: CannedReply, ticket: Ticket, agent: User, language: str) -> Filled:
    """The reply's text with its placeholders filled from `ticket`; those without a
    value are left as written and listed in `missing` (in order, once each)."""
    values = values_for(ticket, agent)
    missing: list[str] = []

    def one(match: re.Match) -> str:
        value = values.get(match.group(1))
        if value:
            return value
        if match.group(0) not in missing:
            missing.append(match.group(0))
        return match.group(0)

    return Filled(PLACEHOLDER_RE.sub(one, body_for(reply, language)), missing)


def record_use(reply_ids, user: User) -> int:
    """Count one use of each reply `user` may use among `reply_ids`; returns how many."""
    ids = sorted({int(i) for i in reply_ids if str(i).isdigit() and 0 < int(i) < 2**31})[:10]
    if not ids:
        return 0
    result = db.session.execute(
        update(CannedReply)
        .where(CannedReply.id.in_(ids), usable_scope(user))
        .values(usage_count=CannedReply.usage_count + 1)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount

"""Announcements: choosing an audience, emailing it through the outbox, unsubscribing.

Only customers who consented to marketing email (`marketing_consent`) and
whose account is active are ever counted or emailed. Every announcement email
carries a one-click unsubscribe link (and `List-Unsubscribe` headers, RFC
8058): a signed, expiring token that clears the consent without a login.

The back office calls:
- `Audience.all_customers()`, `Audience.in_segment(segment)`,
  `Audience.ordered_service(product_id)` (or `Audience.parse(kind, value)` from
  a form) to describe who is targeted;
- `audience_count(audience)` for the count shown before sending;
- `send_announcement(announcement, audience, actor)` to log a send, whose
  emails the outbox worker then queues with `queue_next_chunk()`;
- `send_log(announcement_id=None)` for the log (targeted / sent / failed /
  unsubscribed per send), `previous_sends(announcement, audience)` for the
  sends of one announcement to one audience (a repeat is warned about);
- `publish(announcement, actor)` / `unpublish(...)` for the portal home.
The unsubscribe link's page calls `check_unsubscribe(token)` (changes nothing)
before its POST calls `unsubscribe(token)`.
None of them commits: the view does.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from flask import current_app, render_template
from flask_babel import force_locale, get_locale
from flask_babel import gettext as _
from markupsafe import escape
from sqlalchemy import Select, exists, func, select, update

from ..extensions import db
from ..models import (
    Announcement,
    AnnouncementSend,
    CustomerProfile,
    Order,
    OrderStatus,
    Product,
    Role,
    User,
)
from ..models.base import utcnow
from . import DomainError, PermissionDenied
from . import permissions as perm
from .links import TokenState, absolute_url, sign, verify
from .loyalty import Segment
from .outbox import ANNOUNCEMENT, enqueue_many, outbox_row

UNSUBSCRIBE_PURPOSE = "unsubscribe"
_PLACEHOLDER = "__CAREBOX_UNSUBSCRIBE_URL__"
CHUNK = 1000


class AudienceKind(enum.StrEnum):
    ALL = "all"  # every consenting customer
    SEGMENT = "segment"  # consenting customers of one loyalty segment
    SERVICE = "service"  # consenting customers who ordered one service (not cancelled)


@dataclass(frozen=True)
class Audience:
    """Who an announcement is for. Build it with the class methods."""

    kind: AudienceKind
    segment: Segment | None = None
    product_id: int | None = None

    @classmethod
    def all_customers(cls) -> Audience:
        return cls(AudienceKind.ALL)

    @classmethod
    def in_segment(cls, segment: Segment | str) -> Audience:
        return cls(AudienceKind.SEGMENT, segment=Segment(segment))

    @classmethod
    def ordered_service(cls, product_id: int) -> Audience:
        return cls(AudienceKind.SERVICE, product_id=int(product_id))

    @classmethod
    def parse(cls, kind: str, value: str | None = None) -> Audience:
        """From a form's (kind, value); raises DomainError on anything unknown."""
        try:
            kind = AudienceKind(kind)
            if kind is AudienceKind.SEGMENT:
                return cls.in_segment(value or "")
            if kind is AudienceKind.SERVICE:
                return cls.ordered_service(int(value or ""))
        except ValueError as exc:
            raise DomainError(_("Choose a valid audience.")) from exc
        return cls.all_customers()

    @property
    def value(self) -> str | None:
        if self.kind is AudienceKind.SEGMENT:
            return self.segment.value
        if self.kind is AudienceKind.SERVICE:
            return str(self.product_id)
        return None

    def describe(self) -> str:
        """A label in the current language, e.g. "Segment: Loyal"."""
        if self.kind is AudienceKind.SEGMENT:
            return _("Consenting customers in segment: %(segment)s", segment=self.segment.label)
        if self.kind is AudienceKind.SERVICE:
            product = db.session.get(Product, self.product_id)
            locale = get_locale()
            lang = locale.language if locale else "id"
            name = (
                f"{product.code} — {product.localized('name', lang)}"
                if product
                else f"#{self.product_id}"
            )
            return _("Consenting customers who ordered: %(service)s", service=name)
        return _("All consenting customers")


def _customer_roles() -> list[str]:
    return [r for r, ps in perm.ROLE_PERMISSIONS.items() if perm.PORTAL in ps]


def recipients(audience: Audience, columns=None) -> Select:
    """SELECT of the audience's users: active customers with marketing consent only."""
    stmt = select(*(columns or (User,))).where(
        User.active,
        User.marketing_consent,
        User.roles.any(Role.name.in_(_customer_roles())),
    )
    if audience.kind is AudienceKind.SEGMENT:
        if audience.segment is Segment.NEW:
            # Customers without a profile yet registered since the last refresh: new.
            stmt = stmt.outerjoin(CustomerProfile, CustomerProfile.user_id == User.id).where(
                (CustomerProfile.segment == Segment.NEW.value) | CustomerProfile.user_id.is_(None)
            )
        else:
            stmt = stmt.join(CustomerProfile, CustomerProfile.user_id == User.id).where(
                CustomerProfile.segment == audience.segment.value
            )
    elif audience.kind is AudienceKind.SERVICE:
        stmt = stmt.where(
            exists().where(
                Order.customer_id == User.id,
                Order.product_id == audience.product_id,
                Order.status != OrderStatus.CANCELLED,
            )
        )
    return stmt


def audience_count(audience: Audience) -> int:
    """How many emails `send_announcement` would queue for `audience` right now."""
    return db.session.scalar(
        select(func.count()).select_from(recipients(audience, (User.id,)).subquery())
    )


def unsubscribe_token(user_id: int, send_id: int | None = None) -> str:
    """The signed one-click unsubscribe token of a user (counted against `send_id`)."""
    return sign(UNSUBSCRIBE_PURPOSE, {"u": int(user_id), "s": send_id})


def unsubscribe_url(user_id: int, send_id: int | None = None) -> str:
    return absolute_url(f"/email/unsubscribe/{unsubscribe_token(user_id, send_id)}")


def _render(announcement: Announcement, lang: str) -> tuple[str, str, str]:
    with force_locale(lang):
        product = announcement.product
        title = announcement.localized("title", lang)
        ctx = {
            "lang": lang,
            "subject": title,
            "title": title,
            "body": announcement.localized("body", lang),
            "kind_label": announcement.kind.label,
            "product_name": product.localized("name", lang) if product else "",
            "products_url": absolute_url("/products"),
            "unsubscribe_url": _PLACEHOLDER,
        }
        text = render_template("email/announcement.txt", **ctx)
        html = render_template("email/announcement.html", **ctx)
    return title, text, html


def send_announcement(
    announcement: Announcement,
    audience: Audience,
    actor: User,
    *,
    targeted: int | None = None,
    now: datetime | None = None,
) -> AnnouncementSend:
    """Log a send of `announcement` to `audience`; the outbox worker queues its emails.

    Queueing one email per recipient takes minutes for a large audience, longer
    than a web request may last, so this only writes the AnnouncementSend row
    (`targeted`: the count the admin confirmed, counted now if not given) and
    `queue_next_chunk` does the rest. Only users allowed to manage content (the
    master admin) may send. Flushes, never commits.
    """
    now = now or utcnow()
    if not perm.has(actor, perm.ADMIN_CONTENT):
        raise PermissionDenied(_("You are not allowed to send announcements."))
    if not (announcement.title_id or "").strip() or not (announcement.body_id or "").strip():
        raise DomainError(_("An announcement needs a title and a text before it is sent."))
    service = audience.kind is AudienceKind.SERVICE
    if service and db.session.get(Product, audience.product_id) is None:
        raise DomainError(_("Choose a valid audience."))
    log = AnnouncementSend(
        announcement=announcement,
        audience_kind=audience.kind.value,
        audience_value=audience.value,
        audience_label=str(audience.describe())[:255],
        targeted=audience_count(audience) if targeted is None else targeted,
        actor=actor,
        created_at=now,
    )
    db.session.add(log)
    db.session.flush()
    return log


def queue_next_chunk(*, now: datetime | None = None) -> int:
    """Queue the emails of the next CHUNK recipients of the oldest unfinished send.

    Returns how many were queued (0: nothing was waiting, or another worker got
    there first). Guarantees: recipients are read at queueing time, so only
    customers who are active and consenting then are emailed, each at most once
    per send, in their own language, with their own unsubscribe link and
    List-Unsubscribe headers (RFC 8058). Several workers may call it at once: the
    cursor moves by compare-and-set before any row is written, and a worker that
    loses the race writes nothing. Flushes, never commits: the caller commits
    the chunk (the outbox rows and the cursor) as one transaction.
    """
    now = now or utcnow()
    log = db.session.scalar(
        select(AnnouncementSend)
        .where(AnnouncementSend.queued_at.is_(None))
        .order_by(AnnouncementSend.id)
        .limit(1)
    )
    if log is None:
        return 0
    cursor = log.queued_through
    audience = Audience.parse(log.audience_kind, log.audience_value)
    columns = (User.id, User.email, User.name, User.locale)
    batch = db.session.execute(
        recipients(audience, columns).where(User.id > cursor).order_by(User.id).limit(CHUNK)
    ).all()
    done = len(batch) < CHUNK
    moved = db.session.execute(
        update(AnnouncementSend)
        .where(AnnouncementSend.id == log.id, AnnouncementSend.queued_through == cursor)
        .values(
            queued_through=batch[-1].id if batch else cursor,
            queued=AnnouncementSend.queued + len(batch),
            queued_at=now if done else None,
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.expire(log)
    if not moved:
        return 0
    languages = tuple(current_app.config["LANGUAGES"])
    default = current_app.config["BABEL_DEFAULT_LOCALE"]
    rendered = {}
    rows = []
    for user in batch:
        lang = user.locale if user.locale in languages else default
        if lang not in rendered:
            rendered[lang] = _render(log.announcement, lang)
        subject, text, html = rendered[lang]
        url = unsubscribe_url(user.id, log.id)
        rows.append(
            outbox_row(
                (user.name, user.email) if user.name else user.email,
                subject,
                text.replace(_PLACEHOLDER, url),
                html.replace(_PLACEHOLDER, str(escape(url))),
                category=ANNOUNCEMENT,
                headers={
                    "List-Unsubscribe": f"<{url}>",
                    "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
                },
                announcement_send_id=log.id,
                now=now,
            )
        )
    return enqueue_many(rows, chunk=CHUNK)


def is_queueing(announcement: Announcement) -> bool:
    """Whether a send of `announcement` is still being queued (its text must not change
    halfway: the recipients of the later chunks would read another text)."""
    return (
        db.session.scalar(
            select(AnnouncementSend.id)
            .where(
                AnnouncementSend.announcement_id == announcement.id,
                AnnouncementSend.queued_at.is_(None),
            )
            .limit(1)
        )
        is not None
    )


def queue_all(*, now: datetime | None = None) -> int:
    """Queue every waiting send to the end, committing chunk by chunk (CLI and tests)."""
    total = 0
    while db.session.scalar(select(func.count()).where(AnnouncementSend.queued_at.is_(None))):
        total += queue_next_chunk(now=now)
        db.session.commit()
    return total


def send_log(announcement_id: int | None = None) -> Select:
    """SELECT of AnnouncementSend rows, newest first (of one announcement, if given)."""
    stmt = select(AnnouncementSend).order_by(
        AnnouncementSend.created_at.desc(), AnnouncementSend.id.desc()
    )
    if announcement_id is not None:
        stmt = stmt.where(AnnouncementSend.announcement_id == announcement_id)
    return stmt


def previous_sends(
    announcement: Announcement, audience: Audience, *, lock: bool = False
) -> list[AnnouncementSend]:
    """The earlier sends of `announcement` to exactly `audience`, oldest first.

    With `lock`, the announcement's `send_count` is incremented first (a row lock
    until the caller's transaction ends; the caller rolls back when it sends
    nothing) and the sends are read with a locking read, which sees rows
    committed after the transaction's snapshot: two confirmations of the same
    send on one server then run one after the other, and the second sees the
    first. On two Galera nodes the lock binds each node only, but both
    confirmations write the announcement's row, so certification fails the
    later commit (error 1213, shown as a conflict). SQLite runs one writer at a time.
    """
    stmt = (
        select(AnnouncementSend)
        .where(
            AnnouncementSend.announcement_id == announcement.id,
            AnnouncementSend.audience_kind == audience.kind.value,
            AnnouncementSend.audience_value.is_(None)
            if audience.value is None
            else AnnouncementSend.audience_value == audience.value,
        )
        .order_by(AnnouncementSend.created_at, AnnouncementSend.id)
    )
    if lock:
        db.session.execute(
            update(Announcement)
            .where(Announcement.id == announcement.id)
            .values(send_count=Announcement.send_count + 1)
            .execution_options(synchronize_session=False)
        )
        db.session.expire(announcement, ["send_count"])
        stmt = stmt.with_for_update()
    return list(db.session.scalars(stmt))


def publish(announcement: Announcement, actor: User, *, now: datetime | None = None) -> None:
    """Show the announcement on the portal home (content managers only)."""
    if not perm.has(actor, perm.ADMIN_CONTENT):
        raise PermissionDenied(_("You are not allowed to publish announcements."))
    if not announcement.published:
        announcement.published = True
        announcement.published_at = now or utcnow()
    db.session.flush()


def unpublish(announcement: Announcement, actor: User) -> None:
    """Take the announcement off the portal home (content managers only)."""
    if not perm.has(actor, perm.ADMIN_CONTENT):
        raise PermissionDenied(_("You are not allowed to publish announcements."))
    announcement.published = False
    db.session.flush()


class UnsubscribeOutcome(enum.StrEnum):
    SUBSCRIBED = "subscribed"  # check only: a valid token, consent still on
    UNSUBSCRIBED = "unsubscribed"
    ALREADY = "already"  # consent was already off: nothing changed
    EXPIRED = "expired"
    INVALID = "invalid"


@dataclass(frozen=True)
class UnsubscribeCheck:
    outcome: UnsubscribeOutcome
    user: User | None = None
    send_id: int | None = None


def check_unsubscribe(token: str) -> UnsubscribeCheck:
    """What the unsubscribe token names, changing nothing (for the confirmation page).

    SUBSCRIBED (valid, consent on: confirming would clear it), ALREADY (valid,
    consent off), EXPIRED or INVALID (tampered, or naming no user).
    """
    days = current_app.config["CAREBOX_UNSUBSCRIBE_LINK_DAYS"]
    checked = verify(UNSUBSCRIBE_PURPOSE, token, days)
    if checked.state is TokenState.EXPIRED:
        return UnsubscribeCheck(UnsubscribeOutcome.EXPIRED)
    try:
        user_id = int(checked.payload["u"])
        send_id = checked.payload.get("s")
        send_id = int(send_id) if send_id is not None else None
    except (KeyError, TypeError, ValueError):
        return UnsubscribeCheck(UnsubscribeOutcome.INVALID)
    user = db.session.get(User, user_id)
    if user is None:
        return UnsubscribeCheck(UnsubscribeOutcome.INVALID)
    state = UnsubscribeOutcome.SUBSCRIBED if user.marketing_consent else UnsubscribeOutcome.ALREADY
    return UnsubscribeCheck(state, user, send_id)


def unsubscribe(token: str, *, now: datetime | None = None) -> UnsubscribeOutcome:
    """Clear the marketing consent the token names; a bad or expired token changes nothing.

    Guarantees: the consent is cleared at most once (a conditional UPDATE), and
    only that first clearing counts as `unsubscribed` on the send it came from.
    Flushes, never commits.
    """
    now = now or utcnow()
    checked = check_unsubscribe(token)
    if checked.user is None:
        return checked.outcome
    user_id, send_id = checked.user.id, checked.send_id
    db.session.flush()
    changed = db.session.execute(
        update(User)
        .where(User.id == user_id, User.marketing_consent)
        .values(marketing_consent=False, consent_changed_at=now)
        .execution_options(synchronize_session="fetch")
    ).rowcount
    if not changed:
        return UnsubscribeOutcome.ALREADY
    if send_id is not None:
        db.session.execute(
            update(AnnouncementSend)
            .where(AnnouncementSend.id == send_id)
            .values(unsubscribed=AnnouncementSend.unsubscribed + 1)
            .execution_options(synchronize_session=False)
        )
    return UnsubscribeOutcome.UNSUBSCRIBED

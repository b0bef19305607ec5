"""Customers who wrote before they registered: contact-only records and their claim.

A message from an address (or phone) carebox does not know makes a *contact-only*
customer: the customer role, no password, so nobody can sign in as it. Its
tickets are real tickets, answered by email (or WhatsApp) like any other.

Guarantees:
- One customer per address: `find_customer` matches email case-insensitively,
  and a contact is only created when no user has the address.
- Claiming needs proof of ownership. Registering with a contact-only address
  (Flask-Security's existing-address path) or asking for a password reset sends
  a link *to that address*; the record, with its tickets, becomes an account
  only when the link's page is submitted. Opening the link changes nothing
  (mail scanners follow links), and the password is chosen on that page, never
  carried over from the registration form: whoever typed that form may not own
  the mailbox.
- A claim link works once: claiming rotates the record's `fs_uniquifier`,
  which the link is bound to, and clears `contact_only`.

Nothing here reads the request or commits.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from flask import current_app
from flask_babel import gettext as _
from flask_security.utils import hash_password
from sqlalchemy import func, select

from ..extensions import db
from ..models import Role, User
from ..models.base import utcnow
from . import DomainError, clean_text
from . import permissions as perm
from .links import TokenState, absolute_url, sign, verify
from .phones import normalise_phone

CLAIM_PURPOSE = "claim"
# Contacts known only by phone (WhatsApp) need an address for the NOT NULL, unique
# email column; `.invalid` is reserved (RFC 2606), so no email is ever sent to it.
NO_MAIL_DOMAIN = "contact.invalid"


def normal_email(address: str) -> str:
    """An address as carebox compares it: trimmed, lower case."""
    return (address or "").strip().lower()


def mailable(user: User | None) -> bool:
    """Whether email to `user` can be delivered (not a phone-only contact)."""
    return bool(user and user.email and not user.email.endswith("@" + NO_MAIL_DOMAIN))


def find_customer(*, email: str | None = None, phone: str | None = None) -> User | None:
    """The user with this address (any case), else with this phone, else None.

    Phones are compared in E.164 (`domain.phones`): `08123…`, `+62 812 3…` and
    WhatsApp's `62812…` are one number. A phone that is not a possible number
    matches nobody.
    """
    if email:
        address = normal_email(email)
        column = User.email
        if db.engine.dialect.name != "mysql":  # MariaDB's collation ignores case already
            column = func.lower(User.email)
        found = db.session.scalars(select(User).where(column == address).limit(1)).first()
        if found is not None:
            return found
    key = normalise_phone(phone)
    if key:
        stmt = select(User).where(User.phone_key == key).order_by(User.id).limit(1)
        return db.session.scalars(stmt).first()
    return None


def find_or_create_contact(
    *, email: str | None = None, phone: str | None = None, name: str = "", locale: str = ""
) -> tuple[User, bool]:
    """The customer with this address or phone, or a new contact-only one; and whether new.

    Flushes a new record so it has an id; an existing user is returned as it is
    (staff included: the caller decides what a staff sender means).

    Two first messages from one new phone (or address) at once make one contact: the
    record's unique columns (`contact_phone_key`, the address) refuse the second
    insert with an IntegrityError, and the caller runs its whole transaction again
    (a fresh snapshot, which then finds the first record and its open ticket; the
    WhatsApp worker does, channels/whatsapp_in.py).
    """
    if not email and not phone:
        raise DomainError(_("A contact needs an email address or a phone number."))
    user = find_customer(email=email, phone=phone)
    if user is not None:
        return user, False
    role = db.session.scalars(select(Role).where(Role.name == perm.CUSTOMER)).one()
    key = normalise_phone(phone)
    phone = key or (phone or "").strip()[:32] or None
    digits = "".join(ch for ch in (phone or "") if ch.isdigit())
    languages = current_app.config["LANGUAGES"]
    user = User(
        email=normal_email(email) if email else f"{digits}@{NO_MAIL_DOMAIN}",
        phone=phone or None,
        contact_phone_key=key if not email else None,
        name=" ".join((name or "").replace("\x00", "").split())[:120],
        password=None,
        active=True,
        contact_only=True,
        fs_uniquifier=uuid.uuid4().hex,
        locale=locale if locale in languages else current_app.config["BABEL_DEFAULT_LOCALE"],
        roles=[role],
    )
    db.session.add(user)
    db.session.flush()
    return user, True


def claim_token(user: User) -> str:
    """A signed link token that claims `user`; bound to its current fs_uniquifier."""
    return sign(CLAIM_PURPOSE, {"u": user.id, "f": user.fs_uniquifier})


def claim_url(user: User) -> str:
    return absolute_url(f"/account/claim/{claim_token(user)}")


def check_claim(token: str) -> tuple[TokenState, User | None]:
    """The contact-only record a claim link names, if it may still be claimed.

    EXPIRED for an old link; INVALID for a tampered one, one already used, or a
    record that is no longer contact-only.
    """
    hours = current_app.config["CAREBOX_CLAIM_LINK_HOURS"]
    checked = verify(CLAIM_PURPOSE, token, hours / 24)
    if checked.state is not TokenState.VALID:
        return checked.state, None
    try:
        user_id, uniquifier = int(checked.payload["u"]), str(checked.payload["f"])
    except (KeyError, TypeError, ValueError):
        return TokenState.INVALID, None
    user = db.session.get(User, user_id)
    if user is None or not user.contact_only or user.fs_uniquifier != uniquifier:
        return TokenState.INVALID, None
    return TokenState.VALID, user


def send_claim_link(user: User) -> bool:
    """Mail the claim link to a contact-only record's address; False for anyone else.

    Called where someone asks for an account with an address that has one
    (registration of an existing address).
    """
    if not (user.contact_only and user.active and mailable(user)):
        return False
    from .notifications import send_to  # notifications imports the lifecycle

    send_to(
        user,
        "claim_account",
        lambda: _("Your carebox account: confirm it is your address"),
        claim_url=claim_url(user),
        hours=current_app.config["CAREBOX_CLAIM_LINK_HOURS"],
    )
    return True


def claim(
    user: User,
    *,
    password: str,
    name: str,
    phone: str | None = None,
    marketing_consent: bool = False,
    now: datetime | None = None,
) -> None:
    """Turn a contact-only record into an account: a password, confirmed, able to sign in.

    The tickets stay where they are (they already belong to this record). The
    link that led here stops working.
    """
    now = now or utcnow()
    if not user.contact_only:
        raise DomainError(_("This account was already claimed. Sign in instead."))
    user.name = clean_text(name, 120, _("Full name"))
    user.phone = (phone or "").strip() or user.phone
    user.password = hash_password(password)
    user.contact_only = False
    user.confirmed_at = now
    user.fs_uniquifier = uuid.uuid4().hex
    if bool(marketing_consent) != bool(user.marketing_consent):
        user.marketing_consent = bool(marketing_consent)
        user.consent_changed_at = now
    db.session.flush()


def claimed_by_reset(user: User, now: datetime | None = None) -> None:
    """A password reset mailed to the address proves ownership as a claim link does."""
    if user.contact_only:
        user.contact_only = False
        user.confirmed_at = user.confirmed_at or now or utcnow()

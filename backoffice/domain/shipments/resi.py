"""The resi: the UPU S10 shape and its mod-11 check digit, reading one typed by a
person (or inside free text), drawing a new random one for an order, and the rule
that links a ticket to its customer's parcel by its resi."""

import enum
import re
import secrets

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ...extensions import db
from ...models import Order, User

# UPU S10 check digit: weights of the eight serial digits.
WEIGHTS = (8, 6, 4, 2, 3, 5, 9, 7)
RESI_LENGTH = 13
DEFAULT_PREFIX = "CB"  # the service indicator letters of carebox parcels (CAREBOX_RESI_PREFIX)
COUNTRY = "ID"
RESI_ATTEMPTS = 8  # one collision in 10^8 serials per order is rare; eight in a row never

RESI_RE = re.compile(r"^[A-Z]{2}\d{9}[A-Z]{2}$")
# What people type around the characters of a resi: spaces (also no-break and thin
# ones), hyphens and dashes, dots. Dropped by normalise_resi.
_SEPARATORS = re.compile(r"[\s\u00a0\u2009\u202f.\-\u2010-\u2015\u2212]+")
# A resi inside free text, possibly typed with separators between its characters.
_SEP = r"[\s\u00a0\u2009\u202f.\-\u2010-\u2015\u2212]?"
_IN_TEXT = re.compile(
    r"(?<![A-Za-z0-9])[A-Za-z]"
    + _SEP
    + r"[A-Za-z]"
    + (_SEP + r"\d") * 9
    + _SEP
    + r"[A-Za-z]"
    + _SEP
    + r"[A-Za-z](?![A-Za-z0-9])"
)


class ResiCheck(enum.StrEnum):
    """What a typed resi is, before anything is looked up."""

    VALID = "valid"
    MISTYPED = "mistyped"  # the S10 shape, but the check digit does not match
    MALFORMED = "malformed"  # not the S10 shape at all (or empty)


def check_digit(serial: str) -> int:
    """The S10 check digit of an eight-digit serial: 11 - (weighted sum mod 11),
    where 10 becomes 0 and 11 becomes 5."""
    if len(serial) != 8 or not serial.isdigit():
        raise ValueError(f"an S10 serial is eight digits, not {serial!r}")
    check = 11 - sum(int(d) * w for d, w in zip(serial, WEIGHTS, strict=True)) % 11
    return {10: 0, 11: 5}.get(check, check)


def normalise_resi(text: str | None) -> str:
    """A resi as stored: upper case, without the spaces, dashes and dots people type
    between its characters (`cb 1234-5678 5 id` -> `CB123456785ID`). Not validated."""
    return _SEPARATORS.sub("", str(text or "")).upper()


def check_resi(text: str | None) -> ResiCheck:
    """Whether `text` (normalised first) is a valid resi, a mistyped one, or no resi."""
    resi = normalise_resi(text)
    if not RESI_RE.match(resi) or not resi.isascii():
        return ResiCheck.MALFORMED
    if int(resi[10]) != check_digit(resi[2:10]):
        return ResiCheck.MISTYPED
    return ResiCheck.VALID


def is_valid_resi(text: str | None) -> bool:
    """True when `text`, normalised, is an S10 number whose check digit matches."""
    return check_resi(text) is ResiCheck.VALID


def find_resis(text: str | None) -> list[str]:
    """Every check-digit-valid resi in free text, normalised, in order, without repeats.

    Customers write them inside sentences, in lower case and with spaces or
    dashes ("resi saya cb-1234 5678 5id"); numbers whose check digit fails are
    left out, so an order number or a phone number is never taken for a resi.
    """
    found: list[str] = []
    for match in _IN_TEXT.finditer(str(text or "")[:20_000]):
        resi = normalise_resi(match.group(0))
        if is_valid_resi(resi) and resi not in found:
            found.append(resi)
    return found


def resi_message(check: ResiCheck) -> str:
    """What to tell someone who typed a resi that is not VALID."""
    if check is ResiCheck.MISTYPED:
        return _(
            "This resi has a typing mistake: its check digit (the last digit) does not "
            "match. Compare it with your receipt."
        )
    return _(
        "That is not a resi. A resi has two letters, nine digits and two letters, "
        "e.g. CB123456785ID."
    )


def make_resi(serial: int, prefix: str = DEFAULT_PREFIX) -> str:
    """The resi of `serial` (0 to 99,999,999) with its check digit."""
    digits = f"{serial:08d}"
    return f"{prefix}{digits}{check_digit(digits)}{COUNTRY}"


def _prefix() -> str:
    prefix = str(current_app.config.get("CAREBOX_RESI_PREFIX") or DEFAULT_PREFIX).upper()
    if not re.fullmatch(r"[A-Z]{2}", prefix):
        raise ValueError(f"CAREBOX_RESI_PREFIX must be two letters, not {prefix!r}")
    return prefix


def random_resi() -> str:
    """A new resi with a random serial (from the OS's cryptographic source)."""
    return make_resi(secrets.randbelow(10**8), _prefix())


def assign_resi(order: Order) -> None:
    """Give a new `order` a unique random resi and flush it (the insert happens here).

    A serial already taken is skipped by a lookup first; two transactions that
    drew the same serial at once meet the unique key, and the loser draws again
    inside a savepoint, so the rest of the caller's transaction is kept.
    """
    session = db.session
    _begin_sqlite_transaction()
    for _attempt in range(RESI_ATTEMPTS):
        resi = random_resi()
        if session.scalar(select(Order.id).where(Order.resi == resi)) is not None:
            continue
        order.resi = resi
        savepoint = session.begin_nested()
        try:
            session.add(order)
            session.flush()
        except IntegrityError as exc:
            savepoint.rollback()  # the order is back to pending
            if not _is_resi_collision(exc):
                raise  # another key or constraint: not ours to retry
            continue
        savepoint.commit()
        return
    raise RuntimeError(f"no free resi after {RESI_ATTEMPTS} random draws")


def _is_resi_collision(exc: IntegrityError) -> bool:
    """Whether the unique key on the resi refused the insert. Asked of the error, not the
    table: under REPEATABLE READ the winner's row stays invisible to the loser."""
    text = str(exc.orig)
    return "uq_customer_order_resi" in text or "customer_order.resi" in text


def _begin_sqlite_transaction() -> None:
    """SQLite's Python driver starts a transaction only before a write, so a SAVEPOINT
    as the first statement would be the transaction, and releasing it would commit.
    Begin the transaction first, as the driver itself would have done."""
    conn = db.session.connection()
    if conn.dialect.name != "sqlite":
        return
    dbapi = conn.connection.dbapi_connection
    if not dbapi.in_transaction:
        conn.exec_driver_sql("BEGIN")


def find_order(resi: str) -> Order | None:
    """The order of a (normalised, valid) resi, or None."""
    return db.session.scalar(select(Order).where(Order.resi == resi))


def customer_parcel(
    text: str | None, customer: User, *, staff: bool = False
) -> tuple[Order | None, str]:
    """The one rule for linking a ticket to a parcel by its resi (the portal's ticket
    form, email and WhatsApp alike): `(order, "")` when `text` is a valid resi of one of
    `customer`'s own orders, else `(None, why)` — mistyped (check digit), not a resi,
    no such parcel, or someone else's parcel (a ticket must never show a stranger's
    shipment; `staff` words that for the desk). The check digit is checked before any
    lookup."""
    resi = normalise_resi(text)
    verdict = check_resi(resi)
    if verdict is not ResiCheck.VALID:
        return None, resi_message(verdict)
    order = find_order(resi)
    if order is None:
        return None, _(
            "No parcel has the resi %(resi)s. It is written correctly: check it against "
            "your receipt.",
            resi=resi,
        )
    if order.customer_id != customer.id and staff:
        return None, _(
            "The parcel %(resi)s belongs to another customer: a ticket can only be about "
            "its own customer's parcels.",
            resi=resi,
        )
    if order.customer_id != customer.id:
        return None, _(
            "The parcel %(resi)s is not one of your orders, so a ticket cannot be about "
            "it. Ask its sender to contact us.",
            resi=resi,
        )
    return order, ""

"""Phone numbers as carebox compares them: E.164 (`+62…`), whatever way they were typed.

Customers type `0812-3456-7890`, `+62 812 3456 7890` or `812 3456 7890`; WhatsApp
sends `6281234567890`. All of them are one number, `+6281234567890`. Parsing is
libphonenumber's (the `phonenumbers` package), with Indonesia as the region a
number without a country code belongs to.

`User.phone` keeps what the customer typed; `User.phone_key` holds this form, set
by the model whenever the phone changes, so a lookup is one indexed comparison.
"""

from __future__ import annotations

import phonenumbers

DEFAULT_REGION = "ID"


def normalise_phone(text: str | None, region: str = DEFAULT_REGION) -> str | None:
    """The number in E.164 (`+6281234567890`), or None when `text` is not a possible number.

    Digits that start with the country code of `region` and no `0` or `+` (as
    WhatsApp sends them) are read as international.
    """
    raw = (text or "").strip()
    if not raw or len(raw) > 64:
        return None
    digits = "".join(ch for ch in raw if ch.isdigit())
    if not digits:
        return None
    code = str(phonenumbers.country_code_for_region(region))
    if raw[0].isdigit() and digits.startswith(code) and not digits.startswith("0"):
        raw = "+" + digits
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def whatsapp_id(e164: str) -> str:
    """The form the WhatsApp Cloud API takes a recipient in: digits only, country code first."""
    return e164.lstrip("+")

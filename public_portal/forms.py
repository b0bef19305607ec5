"""Portal forms (Flask-WTF: every one carries a CSRF token).

Every text field is cleaned first: NUL and other control bytes are dropped and
the text is NFC-normalised, so odd input becomes a validation message, never
a database error. Lengths match the columns they end up in.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from flask import current_app
from flask_babel import lazy_gettext as _l
from flask_wtf.file import FileField
from wtforms import (
    BooleanField,
    HiddenField,
    IntegerField,
    PasswordField,
    RadioField,
    SelectField,
    StringField,
    TextAreaField,
    ValidationError,
)
from wtforms.validators import DataRequired, EqualTo, InputRequired, Length, Optional, Regexp

from backoffice.cleaning import clean_text, one_line  # noqa: F401 (the portal's filters)
from backoffice.i18n import TranslatedForm
from backoffice.models import TicketKind
from backoffice.views.fields import PlaceholderSelect

MAX_SUBJECT = 200
MAX_BODY = 10_000
MAX_COMMENT = 2_000
MAX_ADDRESS = 200
MAX_NOTES = 2_000
PHONE_RE = r"^\+?[0-9 ()-]{6,32}$"

try:  # WTForms 3.3 deprecates (value, label) tuples as choices
    from wtforms import SelectChoice as _SelectChoice
except ImportError:  # pragma: no cover (WTForms < 3.3)
    _SelectChoice = None

REQUIRED = _l("Please fill in this field.")
PHONE_MESSAGE = _l("Enter a valid phone number (digits, spaces, + - ( )).")


def upper(value):
    return value.upper() if value else value


def choice(value: str, label) -> object:
    """One option of a select or radio field, in the form this WTForms wants."""
    return _SelectChoice(value, label) if _SelectChoice else (value, label)


def too_long(n: int):
    return Length(max=n, message=_l("At most %(max)d characters, please.", max=n))


class TicketForm(TranslatedForm):
    kind = SelectField(
        _l("What is it about?"), validators=[InputRequired(REQUIRED)], validate_choice=False
    )
    subject = StringField(
        _l("Subject"),
        filters=[one_line],
        validators=[DataRequired(REQUIRED), too_long(MAX_SUBJECT)],
    )
    body = TextAreaField(
        _l("Your message"),
        filters=[clean_text],
        validators=[DataRequired(REQUIRED), too_long(MAX_BODY)],
    )
    order_number = StringField(
        _l("Order number (optional)"),
        filters=[one_line, upper],
        validators=[Optional(), Length(max=20, message=_l("That is not an order number."))],
    )
    # Checked by the view through shipments.customer_parcel (check digit, known, yours).
    resi = StringField(
        _l("Resi / tracking number (optional)"),
        filters=[one_line, upper],
        validators=[Optional(), Length(max=40, message=_l("That is not a resi."))],
    )
    attachment = FileField(_l("Attachment (optional): JPEG, PNG or PDF, up to 5 MB"))
    # One-time token of this form (a fresh one on every new form): filing is idempotent
    # on it (Ticket.submission), so a retried POST returns the ticket it already made.
    submission = HiddenField(validators=[Optional(), Regexp(r"^[0-9a-f]{32}$")])

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # No kind is chosen for the customer (a skipped field must not file a complaint):
        # the list starts with an empty choice, which the required check refuses.
        self.kind.choices = [choice("", _l("Choose one…"))] + [
            choice(k.value, k.label) for k in TicketKind
        ]

    def validate_kind(self, field):
        if field.data not in {k.value for k in TicketKind}:
            raise ValidationError(_l("Choose one of the listed kinds."))


class ReplyForm(TranslatedForm):
    body = TextAreaField(
        _l("Your reply"),
        filters=[clean_text],
        validators=[DataRequired(REQUIRED), too_long(MAX_BODY)],
    )
    attachment = FileField(_l("Attachment (optional): JPEG, PNG or PDF, up to 5 MB"))


class VersionForm(TranslatedForm):
    """Close or reopen: the ticket version the customer saw, so a stale page cannot act."""

    version = IntegerField(validators=[Optional()])


class RateForm(TranslatedForm):
    rating = RadioField(
        _l("How satisfied are you with how we handled this ticket?"),
        choices=[choice(str(n), str(n)) for n in range(1, 6)],
        validators=[InputRequired(_l("Choose from 1 to 5 stars."))],
    )
    comment = TextAreaField(
        _l("Comment (optional)"),
        filters=[clean_text],
        validators=[Optional(), too_long(MAX_COMMENT)],
    )


class VoteForm(TranslatedForm):
    helpful = RadioField(
        choices=[choice("yes", _l("Yes")), choice("no", _l("No"))],
        validators=[InputRequired(_l("Choose yes or no."))],
    )
    next = HiddenField()


def parse_weight(text: str | None) -> Decimal | None:
    """'2', '2.5' or '2,5' (Indonesian decimal comma) as kilograms; None if not a number."""
    text = (text or "").strip().replace(" ", "")
    if "," in text and "." not in text:
        text = text.replace(",", ".")
    if not re.fullmatch(r"\d{1,5}(\.\d{1,2})?", text):
        return None
    try:
        return Decimal(text)
    except InvalidOperation:  # pragma: no cover (the pattern rules it out)
        return None


class OrderForm(TranslatedForm):
    # The view fills the choices and checks the service is one of them.
    service = SelectField(
        _l("Service"), validators=[InputRequired(REQUIRED)], validate_choice=False
    )
    origin = StringField(
        _l("Pick-up address (origin)"),
        filters=[one_line],
        validators=[DataRequired(REQUIRED), too_long(MAX_ADDRESS)],
    )
    destination = StringField(
        _l("Delivery address (destination)"),
        filters=[one_line],
        validators=[DataRequired(REQUIRED), too_long(MAX_ADDRESS)],
    )
    weight = StringField(_l("Weight (kg)"), filters=[one_line], validators=[DataRequired(REQUIRED)])
    receiver_name = StringField(
        _l("Receiver's name"),
        filters=[one_line],
        validators=[DataRequired(REQUIRED), too_long(120)],
    )
    receiver_phone = StringField(
        _l("Receiver's phone"),
        filters=[one_line],
        validators=[DataRequired(REQUIRED), Regexp(PHONE_RE, message=PHONE_MESSAGE)],
    )
    notes = TextAreaField(
        _l("Notes for the courier (optional)"),
        filters=[clean_text],
        validators=[Optional(), too_long(MAX_NOTES)],
    )

    def validate_weight(self, field):
        if parse_weight(field.data) is None:
            raise ValidationError(_l("Enter the weight in kilograms, e.g. 2 or 2,5."))


class CancelOrderForm(TranslatedForm):
    """Cancelling one's own placed order: why (optional, for customer service)."""

    reason = StringField(
        _l("Why are you cancelling? (optional)"),
        filters=[one_line],
        validators=[Optional(), too_long(500)],
    )


class AccountForm(TranslatedForm):
    name = StringField(
        _l("Full name"), filters=[one_line], validators=[DataRequired(REQUIRED), too_long(120)]
    )
    phone = StringField(
        _l("Phone"),
        filters=[one_line],
        validators=[Optional(), Regexp(PHONE_RE, message=PHONE_MESSAGE)],
    )
    locale = SelectField(
        _l("Language"),
        choices=[choice("id", "Bahasa Indonesia"), choice("en", "English")],
        validators=[InputRequired(REQUIRED)],
        validate_choice=False,
        widget=PlaceholderSelect(),
    )
    marketing_consent = BooleanField(_l("Send me news about new and improved products"))
    shipment_updates = BooleanField(
        _l("Email me when my parcel is out for delivery, delivered, or a delivery failed")
    )
    whatsapp_consent = BooleanField(
        _l("Also send me updates about my tickets and parcels on WhatsApp (to my phone)")
    )

    def validate_whatsapp_consent(self, field):
        if field.data and not (self.phone.data or "").strip():
            raise ValidationError(_l("Enter your phone number to get updates on WhatsApp."))

    def validate_locale(self, field):
        if field.data not in {"id", "en"}:
            raise ValidationError(_l("Choose one of the listed languages."))


class ClaimForm(TranslatedForm):
    """Claiming a contact-only record: the owner of the address chooses the password."""

    name = StringField(
        _l("Full name"), filters=[one_line], validators=[DataRequired(REQUIRED), too_long(120)]
    )
    phone = StringField(
        _l("Phone (optional)"),
        filters=[one_line],
        validators=[Optional(), Regexp(PHONE_RE, message=PHONE_MESSAGE)],
    )
    password = PasswordField(_l("Password"), validators=[DataRequired(REQUIRED)])
    password_confirm = PasswordField(
        _l("Repeat the password"),
        validators=[
            DataRequired(REQUIRED),
            EqualTo("password", message=_l("The two passwords are not the same.")),
        ],
    )
    marketing_consent = BooleanField(_l("Send me news about new and improved products"))

    def validate_password(self, field):
        # Flask-Security's own policy (length, complexity, breached), as on /register.
        util = current_app.extensions["security"]._password_util
        errors = util.validate(field.data or "", True)[0]
        if errors:
            raise ValidationError(" ".join(str(e) for e in errors))

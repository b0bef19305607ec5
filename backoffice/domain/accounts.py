"""Accounts: what the owner of an address hears when someone registers with it again.

The registration page answers a known address exactly as it answers a new one
(Flask-Security's generic responses, docs/architecture.md §13, trap 15): both are told to look for
an email, neither is signed in. What happens next is decided here and only here,
so the page never reveals it.
"""

from __future__ import annotations

from flask import url_for
from flask_babel import gettext as _

from ..models import User
from . import contacts
from .notifications import send_to


def registration_for_existing_address(user: User, form_data: dict) -> None:
    """Someone asked to register `user.email`, which already has an account.

    The owner gets a notice in their own language, with links to log in and to
    choose a new password (built on CAREBOX_BASE_URL). A contact-only customer (one
    created from an inbound email or WhatsApp message, without a password) gets
    instead the link that claims the record (domain.contacts): only the owner of
    the mailbox can turn the contact, with its tickets, into their account. Nothing
    else happens: the record is untouched, and nothing of what was typed (least of
    all the password) is kept or mailed. Called inside the registration request,
    before it commits; the mail is queued in the outbox with it. Never commits.
    """
    if contacts.send_claim_link(user):
        return
    send_to(
        user,
        "registration_existing",
        lambda: _("Someone tried to register with your email address"),
        login_url=url_for("security.login", _external=True),
        reset_url=url_for("security.forgot_password", _external=True),
    )

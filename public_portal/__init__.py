"""The customer portal blueprint: accounts, FAQ, catalogue, orders and tickets."""

from __future__ import annotations

from flask import Flask
from flask_security import user_registered

from backoffice.extensions import db
from backoffice.models.base import utcnow

from .base import lang
from .email_links import bp as email_links_bp
from .views import bp


def _remember_registration_choices(sender, user, **extra) -> None:
    """A new account keeps the language it registered in, and when consent was given.
    A phone that wrote on WhatsApp before gets the link that adds those tickets
    (domain/phone_claims.py: only its owner can use it)."""
    from backoffice.domain import phone_claims

    user.locale = lang()
    if user.marketing_consent:
        user.consent_changed_at = utcnow()
    db.session.flush()
    phone_claims.offer(user)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    app.register_blueprint(email_links_bp)
    user_registered.connect(_remember_registration_choices, app)

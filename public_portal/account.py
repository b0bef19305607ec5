"""The customer's profile: name, phone, language, marketing consent, shipment updates
and WhatsApp notifications."""

from __future__ import annotations

from flask import current_app, flash, redirect, render_template, url_for
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_login import current_user
from flask_security import auth_required

from backoffice.domain import phone_claims
from backoffice.extensions import db
from backoffice.i18n import LANG_COOKIE
from backoffice.models.base import utcnow

from .base import bp
from .forms import AccountForm


def PHONE_LINK_SENT() -> str:  # noqa: N802 (a message, read in the user's language)
    return _(
        "We have WhatsApp conversations from this phone number. We sent a link to it on "
        "WhatsApp: open it while signed in here to add them to your account."
    )


@bp.route("/account", methods=["GET", "POST"])
@auth_required("session")
def account():
    user = current_user
    form = AccountForm(obj=user)
    if not form.is_submitted():
        form.locale.data = user.locale if user.locale in ("id", "en") else "id"
    if not form.validate_on_submit():
        status = 400 if form.is_submitted() else 200
        return render_template("portal/account.html", form=form), status
    user.name = form.name.data
    user.phone = form.phone.data or None
    user.locale = form.locale.data
    if bool(form.marketing_consent.data) != bool(user.marketing_consent):
        user.marketing_consent = bool(form.marketing_consent.data)
        user.consent_changed_at = utcnow()
    user.shipment_updates = bool(form.shipment_updates.data)
    if bool(form.whatsapp_consent.data) != bool(user.whatsapp_consent):
        user.whatsapp_consent = bool(form.whatsapp_consent.data)
        user.whatsapp_consent_at = utcnow()
    db.session.flush()
    link_sent = phone_claims.offer(user)  # the phone has WhatsApp tickets from before
    db.session.commit()
    with force_locale(user.locale):
        flash(_("Your profile was saved."), "success")
        if link_sent:
            flash(PHONE_LINK_SENT(), "info")
    resp = redirect(url_for("portal.account"))
    # Remembered after signing out too, like the language switch.
    resp.set_cookie(
        LANG_COOKIE,
        user.locale,
        max_age=60 * 60 * 24 * 365,
        samesite="Lax",
        secure=current_app.config["SESSION_COOKIE_SECURE"],
        httponly=True,
    )
    return resp

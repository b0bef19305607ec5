"""Claiming a contact-only customer record: from the link mailed to its address, or
(for a record WhatsApp made) from the link sent to its phone.

GET shows the form and changes nothing (mail scanners open links); the POST
from that page sets the password and signs the owner in, with every ticket the
record already had (`backoffice.domain.contacts`). The phone's link is opened signed
in: its POST moves the record's tickets into that account
(`backoffice.domain.phone_claims`).
"""

from __future__ import annotations

from flask import flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user
from flask_security import auth_required, login_user
from flask_wtf import FlaskForm

from backoffice.domain import DomainError, contacts, phone_claims
from backoffice.domain.links import TokenState
from backoffice.extensions import db

from .base import bp
from .forms import ClaimForm


@bp.route("/account/claim/<token>", methods=["GET", "POST"])
def claim_account(token: str):
    state, user = contacts.check_claim(token)
    if user is None:
        expired = state is TokenState.EXPIRED
        return render_template("portal/claim.html", form=None, expired=expired, user=None), 404
    form = ClaimForm()
    if not form.is_submitted():
        form.name.data = user.name
        form.phone.data = user.phone
    if form.validate_on_submit():
        try:
            contacts.claim(
                user,
                password=form.password.data,
                name=form.name.data,
                phone=form.phone.data,
                marketing_consent=bool(form.marketing_consent.data),
            )
        except DomainError as exc:
            db.session.rollback()
            form.form_errors.append(str(exc))
        else:
            login_user(user, authn_via=["claim"])
            db.session.commit()
            flash(_("Welcome! Your account is ready, with your earlier tickets."), "success")
            return redirect(url_for("portal.tickets"))
    status = 400 if form.is_submitted() else 200
    return render_template("portal/claim.html", form=form, expired=False, user=user), status


@bp.route("/account/phone/<token>", methods=["GET", "POST"])
@auth_required("session")
def claim_phone(token: str):
    """The link sent to a phone on WhatsApp: for the account it names, signed in."""
    state, contact = phone_claims.check(token, current_user)
    if contact is None:
        expired = state is TokenState.EXPIRED
        return render_template("portal/phone_claim.html", form=None, expired=expired), 404
    form = FlaskForm()
    if form.validate_on_submit():
        try:
            moved = phone_claims.claim(contact, current_user)
        except DomainError as exc:
            db.session.rollback()
            flash(str(exc), "error")
        else:
            db.session.commit()
            flash(
                _("Your WhatsApp conversations are in your account: %(n)d ticket(s).", n=moved),
                "success",
            )
            return redirect(url_for("portal.tickets"))
    status = 400 if form.is_submitted() else 200
    return render_template("portal/phone_claim.html", form=form, phone=contact.phone), status

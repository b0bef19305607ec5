"""Claiming a contact-only customer record from the link mailed to its address.

GET shows the form and changes nothing (mail scanners open links); the POST
from that page sets the password and signs the owner in, with every ticket the
record already had (`backoffice.domain.contacts`).
"""

from __future__ import annotations

from flask import flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_security import login_user

from backoffice.domain import DomainError, contacts
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

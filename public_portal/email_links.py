"""Links that arrive by email and work without a login: one-click rating and unsubscribe.

The signed token in the URL is the authorisation; a tampered or expired token
changes nothing. Both routes answer GET, because a link in an email must work
with one click; the unsubscribe route also answers POST for RFC 8058 one-click
unsubscribe from mail clients (`List-Unsubscribe-Post`), which cannot carry a
CSRF token — hence the exemption.
"""

from __future__ import annotations

from flask import Blueprint, render_template
from flask_babel import gettext as _

from backoffice.domain.announcements import UnsubscribeOutcome, unsubscribe
from backoffice.domain.notifications import RatingOutcome, rate_from_token
from backoffice.extensions import csrf, db, limiter

bp = Blueprint("email_links", __name__, url_prefix="/email")
csrf.exempt(bp)


def _page(status: int, title: str, message: str, link_url: str = "", link_label: str = ""):
    html = render_template(
        "email/_link_page.html",
        title=title,
        message=message,
        link_url=link_url,
        link_label=link_label,
    )
    return html, status, {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


@bp.route("/unsubscribe/<token>", methods=["GET", "POST"])
@limiter.limit("30 per minute")
def unsubscribe_link(token: str):
    """Clear the marketing consent named by the token (GET: one click; POST: RFC 8058)."""
    outcome = unsubscribe(token)
    db.session.commit()
    account = ("/account", _("Your account settings"))
    if outcome is UnsubscribeOutcome.UNSUBSCRIBED:
        return _page(
            200,
            _("You are unsubscribed"),
            _(
                "You will no longer receive news about carebox products. Emails about your "
                "tickets and orders still reach you. You can subscribe again in your account."
            ),
            *account,
        )
    if outcome is UnsubscribeOutcome.ALREADY:
        return _page(
            200,
            _("You are unsubscribed"),
            _("You had already unsubscribed; nothing changed."),
            *account,
        )
    if outcome is UnsubscribeOutcome.EXPIRED:
        return _page(
            400,
            _("This link has expired"),
            _("Nothing was changed. Sign in and change your email preferences in your account."),
            *account,
        )
    return _page(
        400,
        _("This link is not valid"),
        _("Nothing was changed. Copy the whole link from the email, or sign in to your account."),
        *account,
    )


@bp.route("/rate/<token>", methods=["GET"])
@limiter.limit("30 per minute")
def rate_link(token: str):
    """Rate a finished ticket with the score the link carries (one click)."""
    outcome, ticket, score = rate_from_token(token)
    db.session.commit()
    if ticket is not None:
        link = (f"/tickets/{ticket.number}", _("Open ticket %(number)s", number=ticket.number))
    else:
        link = ("/tickets", _("Your tickets"))
    if outcome is RatingOutcome.RATED:
        return _page(
            200,
            _("Thank you for your rating"),
            _(
                "You rated our help on ticket %(number)s %(score)d of 5.",
                number=ticket.number,
                score=score,
            ),
            *link,
        )
    if outcome is RatingOutcome.ALREADY_RATED:
        return _page(
            200,
            _("Already rated"),
            _(
                "Ticket %(number)s was already rated %(score)d of 5; nothing changed.",
                number=ticket.number,
                score=score,
            ),
            *link,
        )
    if outcome is RatingOutcome.NOT_FINISHED:
        return _page(
            409,
            _("This ticket is open again"),
            _(
                "Ticket %(number)s is no longer finished, so it cannot be rated now.",
                number=ticket.number,
            ),
            *link,
        )
    if outcome is RatingOutcome.EXPIRED:
        return _page(400, _("This link has expired"), _("Nothing was changed."), *link)
    return _page(400, _("This link is not valid"), _("Nothing was changed."), *link)

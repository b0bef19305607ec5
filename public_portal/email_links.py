"""Links that arrive by email and work without a login: rating and unsubscribe.

The signed token in the URL is the authorisation; a tampered or expired token
changes nothing. Mail scanners and link previewers follow (GET) every link in
an email, so a GET never changes anything: it shows a confirmation page whose
one-button form POSTs back to the same URL, and only that POST acts.

Unsubscribe also answers RFC 8058 one-click POSTs from mail clients
(`List-Unsubscribe-Post: List-Unsubscribe=One-Click`): the body
`List-Unsubscribe=One-Click` is what clears the consent, from the page's
button and from a mail client alike.

Why the blueprint is CSRF-exempt: a CSRF token protects an action that a
session cookie authorises. Here no session is involved: the unguessable,
signed, expiring token in the URL is the whole authorisation, so a forged
request would need the token, and whoever holds the token may act anyway.
A mail client's one-click POST could not carry a CSRF token either.
"""

from __future__ import annotations

from flask import Blueprint, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from wtforms import Form, RadioField, TextAreaField
from wtforms.validators import InputRequired, Length, Optional

from backoffice.domain import ConflictError, DomainError
from backoffice.domain.announcements import UnsubscribeOutcome, check_unsubscribe, unsubscribe
from backoffice.domain.notifications import RatingOutcome, check_rating_token, rate_from_token
from backoffice.extensions import csrf, db, limiter
from backoffice.i18n import TranslatedMeta
from backoffice.views.fields import to_choices

bp = Blueprint("email_links", __name__, url_prefix="/email")
csrf.exempt(bp)  # the token in the URL is the proof: see the module docstring

ONE_CLICK = ("List-Unsubscribe", "One-Click")
COMMENT_MAX = 2000
HEADERS = {
    "Cache-Control": "no-store",
    # The token is in the URL: never pass it on to another site, never index it.
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow",
}


def _page(status: int, title: str, message: str, link_url="", link_label="", **context):
    template = context.pop("template", "email/_link_page.html")
    html = render_template(
        template,
        title=title,
        message=message,
        link_url=link_url,
        link_label=link_label,
        **context,
    )
    return html, status, HEADERS


def _masked(email: str) -> str:
    """r•••@example.com: enough to recognise one's own address on a forwarded link."""
    local, _at, domain = email.partition("@")
    return f"{local[:1]}•••@{domain}" if domain else "•••"


ACCOUNT = ("/account", _l("Your account settings"))


def _unsubscribe_answer(outcome: UnsubscribeOutcome):
    account = (ACCOUNT[0], str(ACCOUNT[1]))
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


@bp.route("/unsubscribe/<token>", methods=["GET", "POST"])
@limiter.limit("30 per minute")
def unsubscribe_link(token: str):
    """GET: a confirmation page (changes nothing). POST with `List-Unsubscribe=One-Click`
    (its button, or a mail client per RFC 8058): clear the marketing consent."""
    if request.method == "POST" and request.form.get(ONE_CLICK[0]) == ONE_CLICK[1]:
        outcome = unsubscribe(token)
        db.session.commit()
        return _unsubscribe_answer(outcome)
    checked = check_unsubscribe(token)
    if checked.outcome is not UnsubscribeOutcome.SUBSCRIBED:
        return _unsubscribe_answer(checked.outcome)
    return _page(
        200,
        _("Unsubscribe from carebox news?"),
        _(
            "%(email)s will no longer receive news about carebox products. Emails about "
            "your tickets and orders still reach you.",
            email=_masked(checked.user.email),
        ),
        *ACCOUNT,
        template="email/unsubscribe_confirm.html",
        one_click=ONE_CLICK,
    )


class RateForm(Form):
    """The rating link's form (no CSRF token: the URL's signed token is the proof)."""

    Meta = TranslatedMeta

    score = RadioField(
        _l("Your rating"),
        choices=to_choices((str(n), str(n)) for n in range(1, 6)),
        validators=[InputRequired(message=_l("Choose a rating from 1 to 5."))],
    )
    comment = TextAreaField(
        _l("Comment (optional)"), validators=[Optional(), Length(max=COMMENT_MAX)]
    )


def _ticket_link(ticket):
    if ticket is None:
        return "/tickets", _("Your tickets")
    return f"/tickets/{ticket.number}", _("Open ticket %(number)s", number=ticket.number)


def _rating_answer(outcome: RatingOutcome, ticket, score):
    link = _ticket_link(ticket)
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


def _rating_form_page(status: int, ticket, form: RateForm, error: str = ""):
    return _page(
        status,
        _("Rate our help on ticket %(number)s", number=ticket.number),
        _("Your rating is saved only when you send it. You can rate a ticket once."),
        *_ticket_link(ticket),
        template="email/rate_confirm.html",
        ticket=ticket,
        form=form,
        error=error,
    )


@bp.route("/rate/<token>", methods=["GET", "POST"])
@limiter.limit("30 per minute")
def rate_link(token: str):
    """GET: the rating form, the link's score preselected (changes nothing).
    POST: record the rating and comment, once."""
    outcome, ticket, score = check_rating_token(token)
    if outcome is not RatingOutcome.RATEABLE:
        return _rating_answer(outcome, ticket, score)
    if request.method == "GET":
        return _rating_form_page(200, ticket, RateForm(data={"score": str(score)}))
    form = RateForm(request.form)
    if not form.validate():
        return _rating_form_page(400, ticket, form)
    try:
        outcome, ticket, score = rate_from_token(
            token, int(form.score.data), form.comment.data or ""
        )
        db.session.commit()
    except ConflictError:
        # Rated by a concurrent request (a double click): that rating stands.
        db.session.rollback()
        outcome, ticket, score = check_rating_token(token)
    except DomainError as exc:
        db.session.rollback()
        return _rating_form_page(400, ticket, form, error=str(exc))
    return _rating_answer(outcome, ticket, score)

"""Flask-Security's own email (password reset, confirmation, …) goes through the outbox."""

from __future__ import annotations

from flask import after_this_request, g, has_request_context
from flask_security import MailUtil

from ..extensions import db


def _commit_after_request(response):
    db.session.commit()
    return response


def commit_with_the_response() -> None:
    """Commit the request's session once the view has answered (see OutboxMailUtil)."""
    if has_request_context() and not g.get("_outbox_commit_hooked"):
        g._outbox_commit_hooked = True
        after_this_request(_commit_after_request)


class OutboxMailUtil(MailUtil):
    """Queue the rendered mail instead of sending it in the request.

    Why a commit after the request: Flask-Security sends mail from inside its
    views, and some of them (forgot password) change nothing in the database and
    so never commit. The row must still be committed, yet not before the view
    finishes: a view that commits its own changes later (register, confirm) must
    commit the mail with them, and a view that fails must lose both. So the mail
    is added to the request's session and an `after_this_request` hook commits
    that session once the view has produced its response — the same moment
    Flask-Security's own `_view_commit` runs. An exception in the view skips the
    hook and the request's session is rolled back: no mail for a change that
    did not happen. Outside a request (the `flask users` commands) the caller
    commits, as those commands already do.
    """

    def send_mail(self, template, subject, recipient, sender, body, html, **kwargs) -> None:
        from flask import current_app

        from ..domain.outbox import enqueue

        if template == current_app.config["SECURITY_REGISTER_EMAIL_EXISTING_TEMPLATE"]:
            # A registration for a known address: carebox answers that one itself
            # (domain.accounts.registration_for_existing_address), so one mail goes out.
            return

        if isinstance(sender, tuple | list) and len(sender) == 2:
            sender = f"{sender[0]} <{sender[1]}>"
        enqueue(
            str(recipient),
            str(subject),
            body or "",
            html,
            category=f"security.{str(template).rsplit('/', 1)[-1]}"[:40],
            sender=str(sender) if sender else None,
        )
        commit_with_the_response()

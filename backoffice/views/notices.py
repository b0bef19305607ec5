"""/admin/notifications/: the agent's unread notices (domain/staff_notices.py), "mark all
read", and the switch of the optional email digest. The menu shows the count."""

from __future__ import annotations

from flask import flash, g, redirect, url_for
from flask_admin import BaseView, expose
from flask_babel import gettext as _
from flask_login import current_user

from ..domain import staff_notices
from ..extensions import db
from ..i18n import TranslatedForm
from .base import StaffAccessMixin


def menu_notice_count() -> int:
    """The unread count the menu and the home page show (0 outside the back office's
    staff); counted once per request."""
    if "notice_count" not in g:
        g.notice_count = staff_notices.unread_count(current_user)
    return g.notice_count


class NoticesView(StaffAccessMixin, BaseView):
    def is_visible(self) -> bool:
        return False  # the menu's link carries the count (templates/admin/master.html)

    @expose("/")
    def index(self):
        return self.render(
            "admin/notices.html",
            notices=staff_notices.unread(current_user),
            count=menu_notice_count(),
            form=TranslatedForm(formdata=None),
        )

    @expose("/read", methods=["POST"])
    def read(self):
        """Mark every notice read (opening a ticket marks its own)."""
        if TranslatedForm().validate_on_submit():
            n = staff_notices.mark_read(current_user)
            db.session.commit()
            flash(_("%(n)d notifications marked read.", n=n), "success")
        else:
            flash(_("The form expired; nothing was changed. Try again."), "error")
        return redirect(url_for(".index"))

    @expose("/digest", methods=["POST"])
    def digest(self):
        """Switch the email digest of unread notifications on or off."""
        if TranslatedForm().validate_on_submit():
            current_user.notice_digest = not current_user.notice_digest
            db.session.commit()
            flash(
                _("You will get unread notifications by email, in a digest.")
                if current_user.notice_digest
                else _("No more notification emails."),
                "success",
            )
        else:
            flash(_("The form expired; nothing was changed. Try again."), "error")
        return redirect(url_for("admin.index"))

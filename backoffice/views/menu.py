"""The back-office menu, rendered once per (what it shows) per process (issue 16).

Flask-Admin's `layout.menu()` macro asks every view `is_accessible()` and `is_visible()`
and builds the same HTML on every page. The HTML depends only on which items this
user may see, the page's own item (marked active), the language and the URL prefix:
those are the cache's key. Which items a user may see is asked of every view once per
access key (`StaffAccessMixin.access_key`: everything the views' checks read of a user,
their permissions and whether they have a department), the same checks that refuse the
views' URLs, and those URLs still ask on every request; so a cached menu never shows a
link the user may not open.
"""

from __future__ import annotations

from flask import current_app, request
from flask_login import current_user
from jinja2 import pass_context
from markupsafe import Markup

from ..i18n import current_locale

MENU_TEMPLATE = "{% import 'admin/layout.html' as layout with context %}{{ layout.menu() }}"
MAX_ENTRIES = 512  # roles × languages × pages: a few dozen in practice


def shown_items(admin) -> tuple:
    """Indexes of the menu entries this request's user sees: (i,) for a view,
    (i, j) for a category's child (a category shows when a child does), worked out once
    per access key when every view is a StaffAccessMixin (else asked every time)."""
    from .base import StaffAccessMixin

    views = admin.__dict__.get("_carebox_staff_only")
    if views is None:
        views = admin._carebox_staff_only = all(
            isinstance(v, StaffAccessMixin) for v in admin._views
        )
    if not views:
        return ask_every_view(admin)
    key = StaffAccessMixin.access_key(current_user._get_current_object())
    known = admin.__dict__.setdefault("_carebox_shown", {})
    shown = known.get(key)
    if shown is None:
        if len(known) >= MAX_ENTRIES:
            known.clear()
        shown = known[key] = ask_every_view(admin)
    return shown


def ask_every_view(admin) -> tuple:
    """shown_items, asked of every view. Visible first: hidden views (the desk, the
    notices) need no access check here."""
    shown = []
    for i, item in enumerate(admin.menu()):
        if item.is_category():
            shown.extend(
                (i, j)
                for j, child in enumerate(item._children)
                if child.is_visible() and child.is_accessible()
            )
        elif item.is_visible() and item.is_accessible():
            shown.append((i,))
    return tuple(shown)


@pass_context
def cached_menu(context) -> Markup:
    view = context["admin_view"]
    admin = view.admin
    key = (shown_items(admin), view.endpoint, str(current_locale()), request.script_root)
    cache = admin.__dict__.setdefault("_carebox_menus", {})
    html = cache.get(key)
    if html is None:
        template = current_app.jinja_env.from_string(MENU_TEMPLATE)
        html = Markup(template.render(context.get_all()))  # noqa: S704 (autoescaped output)
        if len(cache) >= MAX_ENTRIES:
            cache.clear()
        cache[key] = html
    return html

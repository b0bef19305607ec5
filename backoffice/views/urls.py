"""URLs that every back-office page builds many times, built cheaply (issue 16).

A page builds some fifty URLs; each `url_for` walks werkzeug's rule map. Two kinds
repeat from request to request:

- static files (Flask-Admin's and ours): the same filename gives the same URL, so
  each is built once per process and URL prefix (`static_url_for`, the templates'
  `url_for`);
- the stylesheets and scripts of every page (Flask-Admin's and ours, `admin_assets`);
- a list's own links (sort, pager, page size, filters, search): its index URL plus
  a query string, so the index URL is built once and the query string encoded as
  werkzeug encodes it (`list_url`).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from flask import has_request_context, request, url_for
from flask.globals import request_ctx

STATIC_ENDPOINTS = frozenset({"static", "admin.static", "web.favicon"})
# The page frame's own links (templates/admin/master.html, web's lang_url): their URLs
# depend on nothing but the endpoint, its values and the URL prefix, as static files do.
FRAME_ENDPOINTS = frozenset({"admin.index", "notices.index", "security.logout", "web.set_language"})
CACHED_ENDPOINTS = STATIC_ENDPOINTS | FRAME_ENDPOINTS
MAX_ENTRIES = 1024
_built: dict = {}


def _remember(key, make) -> str:
    url = _built.get(key)
    if url is None:
        url = make()
        if len(_built) >= MAX_ENTRIES:
            _built.clear()
        _built[key] = url
    return url


def static_url_for(endpoint: str, **values) -> str:
    """Flask's url_for; a relative URL of a static file or of the page frame's links is
    built once per process and prefix (not in a request whose Host was refused: those
    are built on CAREBOX_BASE_URL, backoffice.Carebox.url_for)."""
    if (
        endpoint not in CACHED_ENDPOINTS
        or not has_request_context()
        or request_ctx.url_adapter is None
    ):
        return url_for(endpoint, **values)
    try:
        key = (endpoint, request.script_root, tuple(sorted(values.items())))
        hash(key)
    except TypeError:
        return url_for(endpoint, **values)
    if any(name.startswith("_") for name, _value in key[2]):  # _external, _scheme, …
        return url_for(endpoint, **values)
    return _remember(key, lambda: url_for(endpoint, **values))


@dataclass(frozen=True)
class Assets:
    css: tuple[str, ...]
    js: tuple[str, ...]
    own_css: str
    own_js: str


# Flask-Admin 2.2.1's bootstrap4 admin/base.html: its files and their versions, in its order.
_ADMIN_CSS = (
    ("bootstrap/bootstrap4/swatch/{swatch}/bootstrap.min.css", "4.6.2"),
    ("bootstrap/bootstrap4/css/bootstrap.min.css", "4.6.2"),  # the "default" swatch only
    ("admin/css/bootstrap4/admin.css", "1.1.1"),
    ("bootstrap/bootstrap4/css/font-awesome.min.css", "4.7.0"),
)
_ADMIN_JS = (
    ("vendor/jquery.min.js", "3.5.1"),
    ("bootstrap/bootstrap4/js/popper.min.js", None),
    ("bootstrap/bootstrap4/js/bootstrap.min.js", "4.6.2"),
    ("vendor/moment.min.js", "2.9.4"),
    ("vendor/bootstrap4/util.js", "4.3.1"),
    ("vendor/bootstrap4/dropdown.js", "4.3.1"),
    ("vendor/select2/select2.min.js", "4.2.1"),
    ("vendor/multi-level-dropdowns-bootstrap/bootstrap4-dropdown-ml-hack.js", None),
    ("admin/js/helpers.js", "1.0.0"),
)


def admin_assets(theme) -> Assets:
    """The stylesheets and scripts of a back-office page (templates/admin/master.html),
    as Flask-Admin's base template links them, built once per swatch and URL prefix."""

    def make() -> Assets:
        def admin_url(filename, version):
            if version is None:
                return url_for("admin.static", filename=filename)
            return url_for("admin.static", filename=filename, v=version)

        css = [
            admin_url(name.format(swatch=theme.swatch), version)
            for i, (name, version) in enumerate(_ADMIN_CSS)
            if i != 1 or theme.swatch == "default"
        ]
        return Assets(
            css=tuple(css),
            js=tuple(admin_url(name, version) for name, version in _ADMIN_JS),
            own_css=url_for("static", filename="admin.css"),
            own_js=url_for("static", filename="admin-common.js"),
        )

    return _remember(("assets", theme.swatch, request.script_root), make)


class AdminStatic:
    """`admin_static` of Flask-Admin's templates: its base template imports
    admin/static.html under that name, and some pages (model/details.html,
    file/list.html) use it without importing it themselves. carebox's page frame does
    not import it (templates/admin/master.html); this stands in for it."""

    @staticmethod
    def url(filename: str, **values) -> str:
        return static_url_for("admin.static", filename=filename, **values)


# werkzeug.urls._urlencode: the characters a query string keeps as they are.
QUERY_SAFE = "!$'()*,/:;?@"


def _query(args: dict) -> str:
    items = [
        (k, one)
        for k, v in args.items()
        for one in (v if isinstance(v, list | tuple | set) else (v,))
        if one is not None
    ]
    return urlencode(items, safe=QUERY_SAFE)


def list_url(endpoint: str, args: dict) -> str:
    """url_for(endpoint, **args) for an endpoint whose URL has no parameters of its
    own: every argument goes to the query string, in order, None left out."""
    base = _remember(("list", endpoint, request.script_root), lambda: url_for(endpoint))
    query = _query(args)
    return f"{base}?{query}" if query else base


class ListLinks:
    """A list page's pager, sort and page-size links (`pager_url`, `sort_url`,
    `page_size_url` of Flask-Admin's list templates), exactly the URLs of Flask-Admin's
    ModelView.index_view, which clones its arguments and encodes the whole query string
    again for each of a page's ~20 links (ModelView._get_list_url: page, sort, desc,
    search, the other arguments, page_size, the filters, in that order).

    Here the parts every link shares (the search and other arguments, the filters) are
    encoded once, and each link adds its page, sort, desc and page size, which are
    integers. The arguments are index_view's, as it gives them to the template. Not
    for arguments starting with "_" (`exact` is False): those go through url_for
    (SecureModelView.get_url), not list_url."""

    def __init__(self, view, *, page, sort, sort_desc, search, extra_args, page_size, filter_args):
        self.view = view
        self.base = list_url(f"{view.endpoint}.index_view", {})
        self.exact = not any(k.startswith("_") for k in extra_args)
        self.page, self.sort, self.desc = page, sort, sort_desc
        self.before = _query({"search": search, **extra_args})
        self.after = _query(filter_args)
        self.tail = self._tail(page_size)

    def _tail(self, page_size: int) -> str:
        size = self.view.get_safe_page_size(page_size)
        return "&".join(p for p in (self.before, f"page_size={size}", self.after) if p)

    def _url(self, page, sort, desc, tail: str) -> str:
        head = [f"page={page}"] if page else []
        if sort is not None:
            head.append(f"sort={sort}")
        if desc:
            head.append("desc=1")
        return f"{self.base}?{'&'.join((*head, tail))}"

    def pager_url(self, p: int | None) -> str:
        return self._url(p, self.sort, self.desc, self.tail)

    def sort_url(self, column: int, invert: bool = False, desc=None) -> str:
        if not desc and invert and not self.desc:
            desc = 1
        return self._url(self.page, column, desc, self.tail)

    def page_size_url(self, size: int) -> str:
        return self._url(self.page, self.sort, self.desc, self._tail(size or self.view.page_size))

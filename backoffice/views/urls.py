"""URLs that every back-office page builds many times, built cheaply (issue 16).

A page builds some fifty URLs; each `url_for` walks werkzeug's rule map. Two kinds
repeat from request to request:

- static files (Flask-Admin's and ours): the same filename gives the same URL, so
  each is built once per process and URL prefix (`static_url_for`, the templates'
  `url_for`);
- a list's own links (sort, pager, page size, filters, search): its index URL plus
  a query string, so the index URL is built once and the query string encoded as
  werkzeug encodes it (`list_url`).
"""

from __future__ import annotations

from urllib.parse import urlencode

from flask import has_request_context, request, url_for

STATIC_ENDPOINTS = frozenset({"static", "admin.static", "web.favicon"})
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
    """Flask's url_for; a relative static URL is built once per process and prefix."""
    if endpoint not in STATIC_ENDPOINTS or not has_request_context():
        return url_for(endpoint, **values)
    try:
        key = (endpoint, request.script_root, tuple(sorted(values.items())))
        hash(key)
    except TypeError:
        return url_for(endpoint, **values)
    if any(name.startswith("_") for name, _value in key[2]):  # _external, _scheme, …
        return url_for(endpoint, **values)
    return _remember(key, lambda: url_for(endpoint, **values))


# werkzeug.urls._urlencode: the characters a query string keeps as they are.
QUERY_SAFE = "!$'()*,/:;?@"


def list_url(endpoint: str, args: dict) -> str:
    """url_for(endpoint, **args) for an endpoint whose URL has no parameters of its
    own: every argument goes to the query string, in order, None left out."""
    base = _remember(("list", endpoint, request.script_root), lambda: url_for(endpoint))
    items = [
        (k, one)
        for k, v in args.items()
        for one in (v if isinstance(v, list | tuple | set) else (v,))
        if one is not None
    ]
    query = urlencode(items, safe=QUERY_SAFE)
    return f"{base}?{query}" if query else base

"""Every link a role is shown leads somewhere: each demo account follows every link of
its pages (lists, sorts, filters, page sizes, details, the desk, exports) and never
meets an error or a refusal. A link to a page the role may not open is a defect too:
the menu and the buttons must offer only what the role may do."""

from __future__ import annotations

import html
import re
from urllib.parse import parse_qsl, urldefrag, urlsplit

import pytest

from backoffice.seed import DEMO_LOGINS, seed_demo

from .conftest import Browser

LIMIT = 1000  # pages per role, a safety stop
HREF = re.compile(r'href="([^"#][^"]*)"')
# Leaving the session or the language, and static files, are not pages to crawl.
SKIP = ("/logout", "/lang/", "/static/", "/admin/static/", "/email/", "/favicon.ico")


# A list's sorts, page sizes and pages combine without end: one of each is enough.
VARIANTS = {"page", "page_size", "desc", "url", "return_url"}


def _shape(url: str) -> tuple:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    return parts.path, tuple(sorted((k, "" if k in VARIANTS else v) for k, v in query))


def _links(page: str) -> list[str]:
    links = []
    for href in HREF.findall(page):
        url = urldefrag(html.unescape(href))[0]
        parts = urlsplit(url)
        if parts.scheme or parts.netloc or not url.startswith("/"):
            continue  # another site, or javascript:
        if not url.startswith(SKIP):
            links.append(url)
    return links


@pytest.mark.parametrize("login", DEMO_LOGINS, ids=[d.email.split("@")[0] for d in DEMO_LOGINS])
def test_every_link_a_role_is_shown_opens(login, app, db):
    seed_demo()
    db.session.commit()
    b = Browser(app.test_client())
    resp = b.post("/login", {"email": login.email, "password": login.password})
    assert resp.status_code in (302, 303), resp.status_code
    start = resp.headers["Location"]
    queue, seen = [], set()

    def follow(link: str) -> None:
        if _shape(link) not in seen:
            seen.add(_shape(link))
            queue.append(link)

    follow(start)
    while queue and len(seen) < LIMIT:
        url = queue.pop(0)
        resp = b.get(url)
        assert resp.status_code in (200, 302, 303), (url, resp.status_code)
        if resp.status_code != 200:
            target = resp.headers["Location"]
            assert not urlsplit(target).path.startswith("/login"), (url, target)
            follow(target)
            continue
        if resp.mimetype != "text/html":
            # A download streams from a generator in the request's context: close it, as
            # a WSGI server does, or it is torn down later inside another request.
            resp.close()
            continue
        for link in _links(resp.get_data(as_text=True)):
            follow(link)
    assert len(seen) < LIMIT, "the crawl was cut short: raise LIMIT"
    assert len(seen) > 15, sorted(seen)  # it got past the home page (master: ~300)

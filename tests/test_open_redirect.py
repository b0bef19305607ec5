"""No redirect leaves the site, whatever `next` says (issue 9 item 3).

Browsers drop tabs and newlines from a URL, so `/\t/evil.example` becomes
`//evil.example`, another host; `safe_next` refuses control and whitespace
characters and anything that parses with a scheme or a host.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from backoffice.models import FaqEntry
from backoffice.web import safe_next

EVIL = (
    "/\t/evil.example",
    "/\n/evil.example",
    "/\r\n/evil.example",
    "/ /evil.example",
    "/\x00/evil.example",
    "/\u3000/evil.example",
    "//evil.example",
    "/\\evil.example",
    "https://evil.example/",
    "http:/evil.example",
    "javascript:alert(1)",
    "evil.example",
    "",
    None,
)


@pytest.mark.parametrize("target", EVIL)
def test_safe_next_refuses_what_could_leave_the_site(target):
    assert safe_next(target, "/fallback") == "/fallback"


@pytest.mark.parametrize("target", ["/", "/faq?q=paket#faq-3", "/tickets/CX-2026-000001"])
def test_safe_next_keeps_paths_of_this_site(target):
    assert safe_next(target, "/fallback") == target


def _entry(db):
    return db.session.scalars(select(FaqEntry).where(FaqEntry.published.is_(True))).first()


@pytest.mark.parametrize("target", ["/\t/evil.example", "//evil.example", "/\n/evil.example"])
def test_a_vote_without_a_token_or_a_session_redirects_only_to_the_faq(client, db, target):
    entry = _entry(db)
    resp = client.post(f"/faq/{entry.id}/vote", data={"helpful": "yes", "next": target})
    assert resp.status_code == 302
    location = resp.headers["Location"]
    assert "evil" not in location and location.split("#")[0] in ("/faq", "http://localhost/faq")


def test_a_valid_vote_still_returns_to_the_page_it_came_from(browser, db):
    entry = _entry(db)
    page = f"/faq?category={entry.category.code}"
    resp = browser.post(f"/faq/{entry.id}/vote", {"helpful": "yes", "next": page}, form_url=page)
    assert resp.status_code == 302
    assert resp.headers["Location"].endswith(f"{page}#faq-{entry.id}")


def test_the_language_switch_and_login_refuse_a_disguised_host(browser):
    resp = browser.post("/lang/en", {"next": "/\t/evil.example"}, form_url="/")
    assert "evil" not in resp.headers["Location"]
    resp = browser.post(
        "/login?next=/%09/evil.example",
        {"email": "nobody@example.com", "password": "x"},
        form_url="/login",
    )
    assert "evil" not in resp.headers.get("Location", "")

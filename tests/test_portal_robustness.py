"""No request to the portal ever gets a 500: malformed bodies, odd bytes, wrong methods."""

from __future__ import annotations

import re

import pytest

from .portal_support import customer

POSTS = (
    "/tickets/new",
    "/tickets/{t}/reply",
    "/tickets/{t}/rate",
    "/tickets/{t}/close",
    "/tickets/{t}/reopen",
    "/orders/new",
    "/account",
    "/faq/1/vote",
    "/faq/99999999999999999999/vote",
    "/lang/en",
    "/register",
    "/login",
    "/reset",
    "/logout",
)
GETS = (
    "/",
    "/faq?q=%00%FF",
    "/faq?category=%00",
    "/faq?page=-1",
    "/faq/suggest?q=%ED%A0%80",
    "/products",
    "/tickets?page=999999999999",
    "/orders?page=%00",
    "/tickets/new?subject=%00%FF&body=%C0%80&order_number=%F0%9F%92%A5&kind=%00",
    "/tickets/{t}/messages?after=%00",
    "/attachments/99999999999999999999",
    "/reset/not-a-token",
)


def _bodies(token: str) -> list[dict]:
    return [
        {"data": b"garbage", "content_type": "multipart/form-data; boundary=x"},
        {"data": b"garbage", "content_type": "multipart/form-data"},
        {
            "data": b"kind=%FF%FE&subject=%C0%80&body=%ED%A0%80&rating=%00&csrf_token="
            + token.encode(),
            "content_type": "application/x-www-form-urlencoded",
        },
        {"data": {"kind": "question", "subject": "s", "body": "b", "attachment": "text"}},
        {"data": {"kind": ["question", "complaint"], "subject": ["a", "b"], "csrf_token": token}},
        {"json": {"kind": "question", "subject": "s", "body": "b"}},
    ]


@pytest.fixture
def ticket_number(make, db):
    def _make(user):
        number = make.ticket(customer=user).number
        db.session.commit()
        return number

    return _make


@pytest.mark.parametrize("signed_in", [True, False])
def test_malformed_posts_never_500(login_as, app, ticket_number, signed_in):
    b, user = customer(login_as)
    number = ticket_number(user)
    token = b.token("/tickets/new")
    client = b.client if signed_in else app.test_client()
    for url in POSTS:
        for body in _bodies(token):
            resp = client.post(url.format(t=number), **body)
            assert resp.status_code < 500, (url, body, resp.status_code)


def test_odd_gets_never_500(login_as, app, ticket_number):
    b, user = customer(login_as)
    number = ticket_number(user)
    for client in (b.client, app.test_client()):
        for url in GETS:
            resp = client.get(url.format(t=number))
            assert resp.status_code < 500, (url, resp.status_code)
        for url in ("/tickets/new", "/orders/new", "/account"):
            assert client.put(url).status_code == 405


ODD_QUERIES = (
    "",
    "?page=-1",
    "?page=99999999999999999999&q=%00%FF",
    "?next=//evil.example&after=x",
)
ARGUMENTS = {
    "number": ("{t}", "{o}", "CX-0000-000000", "%00"),
    "token": ("x.y.z", "%ED%A0%80"),
    "attachment_id": ("1", "99999999999999999999"),
    "entry_id": ("1", "99999999999999999999"),
    "code": ("en", "xx"),
    "resi": ("CB123456785ID", "CB123456784ID", "%00", "x" * 300),
}


def _portal_urls(app, method: str) -> list[str]:
    """Every portal route for `method`, read from the app, with odd and real arguments."""
    urls = []
    for rule in app.url_map.iter_rules():
        if (
            method not in rule.methods
            or rule.endpoint.endswith("static")
            or rule.rule.startswith("/admin")
        ):
            continue
        variants = [rule.rule]
        for name in rule.arguments:
            assert name in ARGUMENTS, f"{rule.rule}: say which values to try for <{name}>"
            variants = [
                re.sub(rf"<(\w+:)?{name}>", value, url)
                for url in variants
                for value in ARGUMENTS[name]
            ]
        urls += variants
    return sorted(urls)


def test_every_portal_route_takes_odd_input_without_500(login_as, app, ticket_number, make, db):
    b, user = customer(login_as)
    number = ticket_number(user)
    order = make.order(user).number
    db.session.commit()
    token = b.token("/tickets/new")
    gets, posts = _portal_urls(app, "GET"), _portal_urls(app, "POST")
    assert len(gets) > 20 and len(posts) > 10
    for client in (b.client, app.test_client()):
        for url in gets:
            for query in ODD_QUERIES:
                target = url.format(t=number, o=order) + query
                resp = client.get(target)
                resp.close()
                assert resp.status_code < 500, (target, resp.status_code)
        for url in posts:
            for body in _bodies(token)[:3]:
                target = url.format(t=number, o=order)
                resp = client.post(target, **body)
                assert resp.status_code < 500, (target, resp.status_code)


ODD_PHONES = (
    "+62" + "9" * 40,
    "\x00",
    "0812-3456-7890\u202e",
    "+0",
    "++62 812",
    "\u0660\u0668\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669",  # Arabic-Indic
    "x" * 5000,
)


@pytest.mark.parametrize("phone", ODD_PHONES)
def test_the_account_page_takes_odd_phones_and_switches(login_as, db, phone):
    """The account page's phone (which may send a WhatsApp claim link) and its new
    switches (shipment updates, WhatsApp) with odd values: a message or a save, no 500."""
    b, user = customer(login_as)
    form = {
        "name": "Budi",
        "phone": phone,
        "locale": "id",
        "shipment_updates": "maybe",
        "whatsapp_consent": ["y", "n"],
        "marketing_consent": "\x00",
    }
    resp = b.post("/account", form, form_url="/account")
    assert resp.status_code in (200, 302, 400), (phone, resp.status_code)
    db.session.expire_all()
    assert len(user.phone or "") <= 32


def test_a_claim_link_without_the_form_token_claims_nothing(login_as, app, db):
    b, user = customer(login_as)
    for token in ("x.y.z", "%00", "a" * 5000):
        assert b.client.post(f"/account/phone/{token}", data={}).status_code in (400, 404)
        assert app.test_client().get(f"/account/phone/{token}").status_code in (302, 401)

"""No POST to the back office ever gets a 500: every POST route the app registers,
with a valid CSRF token and nonsense, without one, and with odd query strings.

Testing lets exceptions propagate, so any exception fails here; the status is
checked too. Routes are read from the app: a POST route added later is covered."""

from __future__ import annotations

import pytest

from backoffice.domain import permissions as perm

NUMBER = "{number}"
QUERIES = ("", "?id=abc", "?id=99999999999999999999&url=//evil.example", "?id=%00")


def _nonsense(token: str) -> list[dict]:
    odd = {
        "id": "abc",
        "rowid": ["x", "99999999999999999999", "-1"],
        "action": "no-such-action",
        "version": "x",
        "body": "\x00" + "x" * 20_000,
        "internal": "maybe",
        "priority": "bogus",
        "department": "-1",
        "assignee": "abc",
        "status": "zzz",
        "audience": "segment",
        "value": "nope",
        "expected_count": "-5",
        "seen_sends": "x",
        "published": "2",
        "list_form_pk": "99999999999999999999",
        "name": "x" * 5000,
        "code": "\u202e",
        "email": "not-an-email",
        "roles": ["master_admin", "no-such-role"],
        # the session 3 forms: merge, link a parcel, WhatsApp template, templates admin
        "into": ["x" * 5000, "CX-9999-99999999999999999999"],
        "resi": "\x00" + "9" * 300,
        "template_id": "99999999999999999999",
        "params-0": "\x00" * 2000,
        "params-99999999999999999999": "x",
        "params-x": "x",
        "parameter_list": "1abc, , ,\u202e" + ",p" * 400,
        "use": "zzz",
        "language": "xx",
        "then": "next",
    }
    return [
        {"data": {"csrf_token": token}},
        {"data": {**odd, "csrf_token": token}},
        {"data": odd},  # no token
        {"data": b"garbage", "content_type": "multipart/form-data; boundary=x"},
        {"json": {"csrf_token": token, "body": ["a"]}},
    ]


def _post_routes(app) -> list[str]:
    return sorted(
        rule.rule.replace("<number>", NUMBER)
        for rule in app.url_map.iter_rules()
        if "POST" in rule.methods and rule.rule.startswith("/admin")
    )


@pytest.mark.parametrize("role", [perm.MASTER_ADMIN, perm.CUSTOMER_SERVICE])
def test_admin_posts_never_500(role, app, login_as, make, db):
    number = make.ticket("team").number
    db.session.commit()
    b, _ = login_as(role)
    token = b.token("/admin/")
    routes = _post_routes(app)
    assert len(routes) > 50  # every model view's edit, delete, action, ajax; the desk's buttons
    for route in routes:
        for ticket in (number, "CX-0000-000000", "%00"):
            url = route.replace(NUMBER, ticket)
            for query in QUERIES:
                for body in _nonsense(token):
                    resp = b.client.post(url + query, **body)
                    assert resp.status_code < 500, (url + query, body.keys(), resp.status_code)
            if NUMBER not in route:
                break


ODD_GETS = (
    "?id=99999999999999999999",
    "?id=-1&url=//evil.example",
    "?sort=999&desc=x&page=-1&page_size=999999",
    "?search=%00%FF&flt0_0=%ED%A0%80&flt9_99=x",
    "?page=99999999999999999999",
)


@pytest.mark.parametrize("role", [perm.MASTER_ADMIN, perm.ADMIN_DEPARTMENT])
def test_admin_gets_with_odd_queries_never_500(role, app, login_as, make, db):
    number = make.ticket("team").number
    db.session.commit()
    b, _ = login_as(role)
    routes = sorted(
        rule.rule.replace("<number>", number)
        for rule in app.url_map.iter_rules()
        if "GET" in rule.methods
        and rule.rule.startswith("/admin")
        and "static" not in rule.rule
        and set(rule.arguments) <= {"number"}
    )
    assert len(routes) > 50
    for route in routes:
        for query in ODD_GETS:
            resp = b.get(route + query)
            resp.get_data()  # runs a streamed export to its end, inside its request
            resp.close()
            assert resp.status_code < 500, (route + query, resp.status_code)

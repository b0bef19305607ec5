"""Filing a ticket is idempotent (issue 9 item 13): the form carries a one-time token,
`ticket.submission` is unique, and a retried POST (lost answer, double click, refresh)
returns the ticket it already created instead of filing a second one."""

from __future__ import annotations

import re
import threading

from sqlalchemy import func, select

from backoffice.models import Ticket

from .conftest import Browser, csrf_from
from .portal_support import customer


def _form(b: Browser) -> dict:
    html = b.get("/tickets/new").get_data(as_text=True)
    [submission] = re.findall(r'name="submission"[^>]*value="([0-9a-f]{32})"', html) or re.findall(
        r'value="([0-9a-f]{32})"[^>]*name="submission"', html
    )
    return {
        "csrf_token": csrf_from(html),
        "submission": submission,
        "kind": "question",
        "subject": "Paket belum sampai",
        "body": "Sudah tiga hari.",
    }


def _count(db, user) -> int:
    db.session.commit()
    return db.session.scalar(
        select(func.count()).select_from(Ticket).where(Ticket.customer_id == user.id)
    )


def test_a_retried_submission_returns_the_ticket_it_already_filed(login_as, db):
    b, user = customer(login_as)
    form = _form(b)
    first = b.client.post("/tickets/new", data=form)
    assert first.status_code == 302
    again = b.client.post("/tickets/new", data=form)  # the answer was lost: sent again
    assert again.status_code == 302
    assert again.headers["Location"] == first.headers["Location"]
    assert _count(db, user) == 1
    page = b.get(again.headers["Location"]).get_data(as_text=True)
    assert "was already filed" in page  # the customer portal_support makes speaks English
    # A new form is a new ticket.
    assert b.client.post("/tickets/new", data=_form(b)).status_code == 302
    assert _count(db, user) == 2


def test_each_form_gets_its_own_token(login_as):
    b, _ = customer(login_as)
    assert _form(b)["submission"] != _form(b)["submission"]


def test_a_refused_form_keeps_its_token_and_files_once_when_fixed(login_as, db):
    b, user = customer(login_as)
    form = _form(b)
    refused = b.client.post("/tickets/new", data={**form, "subject": ""})
    assert refused.status_code == 400
    assert form["submission"] in refused.get_data(as_text=True)
    assert _count(db, user) == 0
    assert b.client.post("/tickets/new", data=form).status_code == 302
    assert b.client.post("/tickets/new", data=form).status_code == 302
    assert _count(db, user) == 1


def test_another_customers_token_files_nothing_of_theirs(login_as, db):
    a, alice = customer(login_as)
    b, bob = customer(login_as)
    form = _form(a)
    first = a.client.post("/tickets/new", data=form)
    assert first.status_code == 302
    replay = b.client.post("/tickets/new", data={**_form(b), "submission": form["submission"]})
    assert replay.status_code == 400
    assert first.headers["Location"] not in (replay.headers.get("Location") or "")
    assert (_count(db, alice), _count(db, bob)) == (1, 0)


def test_a_malformed_token_is_refused(login_as, db):
    b, user = customer(login_as)
    resp = b.client.post("/tickets/new", data={**_form(b), "submission": "x' OR 1=1"})
    assert resp.status_code == 400
    assert _count(db, user) == 0


def test_a_double_click_files_one_ticket(app, login_as, db):
    """Two identical POSTs at the same moment (two connections of one customer): one
    ticket, and both answers lead to it. On MariaDB the second insert meets the unique
    key while the first is still uncommitted."""
    b, user = customer(login_as)
    form = _form(b)
    second = Browser(app.test_client())
    second.login(user)
    form2 = {**form, "csrf_token": csrf_from(second.get("/tickets/new").get_data(as_text=True))}
    barrier = threading.Barrier(2)
    answers = {}

    def send(name, browser, data):
        with app.app_context():
            barrier.wait()
            answers[name] = browser.client.post("/tickets/new", data=data)

    threads = [
        threading.Thread(target=send, args=("a", b, form)),
        threading.Thread(target=send, args=("b", second, form2)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert {r.status_code for r in answers.values()} == {302}
    assert answers["a"].headers["Location"] == answers["b"].headers["Location"]
    assert _count(db, user) == 1

"""Every password check is rate-limited per address and per account, ordering per account
(issue 9 item 4). Memory storage with a fresh prefix (conftest.limited_app)."""

from __future__ import annotations

from flask_security.recoverable import generate_reset_password_token

from backoffice.domain import permissions as perm

from .conftest import Browser
from .factories import Factories

ORDER = {
    "service": "REG",
    "origin": "Jl. Merdeka 1, Jakarta",
    "destination": "Jl. Asia Afrika 8, Bandung",
    "weight": "2,5",
    "receiver_name": "Ani",
    "receiver_phone": "0812 3456 789",
    "action": "place",
}


def _signed_in(app, user, addr="10.0.0.1") -> Browser:
    b = Browser(app.test_client())
    b.client.environ_base["REMOTE_ADDR"] = addr
    b.login(user)
    return b


def test_change_password_is_limited(limited_app, db):
    app = limited_app(RATELIMIT_LOGIN="100 per minute", RATELIMIT_PASSWORD_ACCOUNT="3 per hour")
    user = Factories(db).user(perm.CUSTOMER)
    db.session.commit()
    b = _signed_in(app, user)  # the login is one check of this account
    wrong = {"password": "not-it", "new_password": "x-y-z-1-2-3", "new_password_confirm": "x"}
    codes = [b.post("/account/password", wrong).status_code for _ in range(3)]
    assert codes[:2] == [200, 200] and codes[2] == 429


def test_login_guesses_at_one_account_from_many_addresses_are_limited(limited_app, db):
    app = limited_app(RATELIMIT_LOGIN="100 per minute", RATELIMIT_PASSWORD_ACCOUNT="3 per hour")
    user = Factories(db).user(perm.CUSTOMER)
    db.session.commit()
    codes = []
    for i in range(4):
        b = Browser(app.test_client())
        b.client.environ_base["REMOTE_ADDR"] = f"10.0.1.{i}"
        codes.append(b.post("/login", {"email": user.email, "password": "guess"}).status_code)
    assert codes == [200, 200, 200, 429]
    # Another account is not affected.
    other = Factories(db).user(perm.CUSTOMER)
    db.session.commit()
    b = Browser(app.test_client())
    assert b.post("/login", {"email": other.email, "password": "guess"}).status_code == 200


def test_reset_with_a_token_is_limited_per_address_and_per_token(limited_app, db):
    app = limited_app(RATELIMIT_LOGIN="3 per minute", RATELIMIT_PASSWORD_ACCOUNT="100 per hour")
    user = Factories(db).user(perm.CUSTOMER)
    db.session.commit()
    with app.test_request_context():
        token = generate_reset_password_token(user)
    b = Browser(app.test_client())
    bad = {"password": "a", "password_confirm": "b"}
    codes = [b.post(f"/reset/{token}", bad).status_code for _ in range(4)]
    assert codes[:3] == [200, 200, 200] and codes[3] == 429


def test_verify_is_limited(limited_app, db):
    app = limited_app(RATELIMIT_LOGIN="2 per minute", RATELIMIT_PASSWORD_ACCOUNT="100 per hour")
    user = Factories(db).user(perm.CUSTOMER)
    db.session.commit()
    b = _signed_in(app, user, addr="10.0.2.1")
    b.client.environ_base["REMOTE_ADDR"] = "10.0.2.2"  # the login's count stays on its address
    codes = [b.post("/verify", {"password": "wrong"}).status_code for _ in range(3)]
    assert codes[:2] == [200, 200] and codes[2] == 429


def test_ordering_is_limited_per_account(limited_app, db):
    app = limited_app(RATELIMIT_ORDER="2 per hour")
    user = Factories(db).user(perm.CUSTOMER)
    db.session.commit()
    b = _signed_in(app, user)
    # Previews do not count; placed orders do.
    assert b.post("/orders/new", {**ORDER, "action": "preview"}).status_code == 200
    codes = [b.post("/orders/new", ORDER).status_code for _ in range(3)]
    assert codes == [302, 302, 429]
    b.client.environ_base["REMOTE_ADDR"] = "10.9.9.9"  # a new address is the same account
    assert b.post("/orders/new", ORDER).status_code == 429


def _vote(app, entry_id, addr):
    b = Browser(app.test_client())  # a fresh client: no session, no cookie
    b.client.environ_base["REMOTE_ADDR"] = addr
    return b.post(f"/faq/{entry_id}/vote", {"helpful": "yes"}, form_url="/faq")


def test_anonymous_faq_votes_count_once_per_address_not_per_session(limited_app, db):
    from sqlalchemy import select

    from backoffice.models import FaqEntry

    app = limited_app()
    entry = db.session.scalar(select(FaqEntry).where(FaqEntry.published.is_(True)))
    before = entry.helpful_yes
    db.session.commit()
    for addr in ("10.5.0.1", "10.5.0.1", "10.5.0.1", "10.5.0.2"):
        assert _vote(app, entry.id, addr).status_code == 302
    db.session.rollback()  # a new snapshot: MariaDB (REPEATABLE READ) kept the old one
    assert db.session.get(FaqEntry, entry.id).helpful_yes == before + 2  # one per address

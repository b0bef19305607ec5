"""The password policy (issue 9 item 6): common passwords are refused with a message that
says why, on registration, change and reset; staff are held to a stronger rule."""

from __future__ import annotations

import pytest
from flask_security import verify_password
from flask_security.recoverable import generate_reset_password_token
from sqlalchemy import select

from backoffice.domain import permissions as perm
from backoffice.models import User

from .portal_support import field_error, text

EN = {"Accept-Language": "en"}


def _new_user(password: str, email: str = "baru@example.com") -> dict:
    return {
        "email": email,
        "password": password,
        "password_confirm": password,
        "name": "Budi Santoso",
        "phone": "",
    }


def _user(db, email):
    db.session.commit()
    return db.session.scalar(select(User).where(User.email == email))


@pytest.mark.parametrize(
    ("password", "why"),
    [
        ("12345678", "most common passwords"),
        ("password", "most common passwords"),
        ("aaaaaaaa", "repeats the same characters"),
        ("budisantoso", "is refused because"),  # the account's own name
    ],
)
def test_registration_refuses_common_passwords_and_says_why(browser, db, password, why):
    browser.post("/lang/en", {"next": "/register"}, form_url="/")
    resp = browser.post("/register", _new_user(password))
    assert resp.status_code == 200
    error = field_error(resp, "password")
    assert error and why in error, text(resp)[-2000:]
    assert _user(db, "baru@example.com") is None


def test_registration_message_is_in_indonesian_by_default(browser, db):
    resp = browser.post("/register", _new_user("12345678"))
    assert "kata sandi yang paling umum" in (field_error(resp, "password") or "")


def test_a_good_customer_password_is_accepted(browser, db):
    resp = browser.post("/register", _new_user("kirim-paket-cepat-99"))
    assert resp.status_code == 302
    assert _user(db, "baru@example.com") is not None


def _change(b, new: str):
    return b.post(
        "/account/password",
        {"password": "password", "new_password": new, "new_password_confirm": new},
        headers=EN,
    )


def test_customers_may_use_a_fair_password_staff_may_not(login_as, db):
    fair = "Budi2026!x"  # zxcvbn 3, ten characters
    customer, c_user = login_as(perm.CUSTOMER)
    assert _change(customer, fair).status_code == 302
    assert verify_password(fair, _user(db, c_user.email).password)
    staff, s_user = login_as(perm.CUSTOMER_SERVICE)
    resp = _change(staff, fair)
    assert resp.status_code == 200
    assert "paling sedikit 12 karakter" in text(resp)  # the account speaks Indonesian
    assert verify_password("password", _user(db, s_user.email).password)
    assert _change(staff, "kirim paket cepat ke Medan").status_code == 302


def test_a_common_password_is_refused_on_change(login_as, db):
    b, user = login_as(perm.CUSTOMER)
    resp = _change(b, "12345678")
    assert resp.status_code == 200 and "kata sandi yang paling umum" in text(resp)
    assert verify_password("password", _user(db, user.email).password)


def test_reset_with_a_token_holds_staff_to_the_staff_rule(client, make, db):
    staff = make.user(perm.MASTER_ADMIN)
    db.session.commit()
    token = generate_reset_password_token(staff)
    page = client.get(f"/reset/{token}", headers=EN)
    from .conftest import csrf_from

    form = {"csrf_token": csrf_from(page.get_data(as_text=True))}
    weak = client.post(
        f"/reset/{token}",
        data={**form, "password": "password1", "password_confirm": "password1"},
        headers=EN,
    )
    assert weak.status_code == 200
    assert verify_password("password", _user(db, staff.email).password)
    strong = "tiga kata acak lagi 2026"
    ok = client.post(
        f"/reset/{token}", data={**form, "password": strong, "password_confirm": strong}
    )
    assert ok.status_code == 302
    assert verify_password(strong, _user(db, staff.email).password)


def test_the_staff_screen_holds_new_staff_to_the_staff_rule(login_as, db):
    """A staff password set by the master admin meets the same rule as one the staff
    member chooses: a customer-grade password is refused with the reason, nothing saved."""
    from .test_admin_people import staff_form

    b, _ = login_as(perm.MASTER_ADMIN, locale="en")
    for weak in ("password1234", "agenbaru2026"):
        resp = b.post(
            "/admin/staff/new/", staff_form(db, new_password=weak), form_url="/admin/staff/new/"
        )
        assert resp.status_code == 200
        assert "This password is refused because" in text(resp)
    assert db.session.scalar(select(User).where(User.email == "agen.baru@carebox.example")) is None
    resp = b.post("/admin/staff/new/", staff_form(db), form_url="/admin/staff/new/")
    assert resp.status_code == 302
    assert _user(db, "agen.baru@carebox.example") is not None


def test_staff_create_holds_the_staff_rule(runner, db):
    from backoffice.cli import staff_group

    args = ["weak@example.com", "--role", perm.CUSTOMER_SERVICE, "--name", "Weak"]
    refused = runner.invoke(staff_group, ["create", *args, "--password", "kucingku77"])
    assert (
        refused.exit_code != 0 and "Password refused" in refused.output and "12" in refused.output
    )
    assert db.session.scalar(select(User).where(User.email == "weak@example.com")) is None
    taken = runner.invoke(staff_group, ["create", *args, "--password", "kuda-biru-lampu-hujan-7"])
    assert taken.exit_code == 0, taken.output

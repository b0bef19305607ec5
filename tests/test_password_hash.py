"""Passwords are hashed with OWASP's argon2id parameters (m=7 MiB, t=5, p=1), and a hash
made with argon2-cffi's defaults (m=64 MiB, t=3, p=4), as every hash was before issue 16
item 9, is rehashed on the next successful login and left alone by a failed one."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from flask_security.utils import get_hmac
from passlib.context import CryptContext

from backoffice.domain import permissions as perm
from backoffice.models import User
from tests.conftest import Browser
from tests.security_support import make_app

NEW_PARAMS = "$v=19$m=7168,t=5,p=1$"
# argon2-cffi's defaults, which carebox used until the parameters were set.
OLD = CryptContext(
    schemes=["argon2"],
    argon2__type="ID",
    argon2__memory_cost=65536,
    argon2__rounds=3,
    argon2__parallelism=4,
)


def _argon2_app(database_url):
    """Hashing as production does (the testing config stores plaintext, which passlib
    would also identify an argon2 hash as, so argon2 comes alone)."""
    return make_app(
        database_url, SECURITY_PASSWORD_HASH="argon2", SECURITY_PASSWORD_SCHEMES=["argon2"]
    )


def _stored(db, user_id) -> str:
    db.session.commit()  # a fresh snapshot (MariaDB)
    db.session.expire_all()
    return db.session.get(User, user_id).password


def test_new_hashes_carry_owasp_argon2id_parameters(database_url, db):
    app = _argon2_app(database_url)
    with app.app_context():
        from flask_security.utils import hash_password, verify_password

        hashed = hash_password("rahasia-sekali-9")
        assert hashed.startswith("$argon2id" + NEW_PARAMS), hashed
        assert verify_password("rahasia-sekali-9", hashed)
        assert not verify_password("rahasia-sekali-8", hashed)


def test_an_old_hash_is_upgraded_on_a_successful_login_only(database_url, db, make):
    app = _argon2_app(database_url)
    user = make.user(perm.CUSTOMER, email="lama@example.com")
    with app.app_context():
        # Flask-Security HMACs the password with the salt before argon2 (double hash).
        user.password = OLD.hash(get_hmac("kata-sandi-lama-7"))
    db.session.commit()
    old_hash = user.password
    assert "$m=65536,t=3,p=4$" in old_hash

    b = Browser(app.test_client())
    resp = b.post("/login", {"email": user.email, "password": "salah-sekali-7"})
    assert resp.status_code == 200  # the form again, not signed in
    assert b.get("/tickets").status_code == 302
    assert _stored(db, user.id) == old_hash  # a wrong password changes nothing

    b.login(user, password="kata-sandi-lama-7")
    assert b.get("/tickets").status_code == 200
    upgraded = _stored(db, user.id)
    assert upgraded != old_hash and upgraded.startswith("$argon2id" + NEW_PARAMS), upgraded

    # The upgraded hash signs in again, and is not rewritten a second time.
    again = Browser(app.test_client())
    again.login(user, password="kata-sandi-lama-7")
    assert _stored(db, user.id) == upgraded


MEMORY_PROBE = """
import json, re, threading
from pathlib import Path
from backoffice import create_app

def status(key):
    text = Path("/proc/self/status").read_text()
    return int(re.search(key + r":\\s+(\\d+)", text).group(1)) / 1024

app = create_app({"ENV_NAME": "testing", "SQLALCHEMY_DATABASE_URI": "sqlite://",
                  "SECURITY_PASSWORD_HASH": "argon2", "SECURITY_PASSWORD_SCHEMES": ["argon2"]})
with app.app_context():
    from flask_security.utils import hash_password, verify_password
    hashed = hash_password("rahasia-sekali-9")
    before = status("VmRSS")

def sign_ins():
    with app.app_context():
        for _ in range(3):
            assert verify_password("rahasia-sekali-9", hashed)

threads = [threading.Thread(target=sign_ins) for _ in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(json.dumps({"peak": status("VmHWM") - before, "after": status("VmRSS") - before}))
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc (Linux)")
def test_four_sign_ins_at_once_cost_one_hash_of_memory():
    """One worker's 4 threads signing people in at once: the process peaks about one
    7 MiB hash above its resting size (not 4 × 7), and returns to it afterwards."""
    out = subprocess.run(  # noqa: S603 (a fixed argv)
        [sys.executable, "-c", MEMORY_PROBE], capture_output=True, text=True, check=True
    ).stdout
    grew = json.loads(out.splitlines()[-1])
    assert grew["peak"] < 2 * 7, grew
    assert grew["after"] < 8, grew

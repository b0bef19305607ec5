"""Issue 9 item 22, the small things a user feels (the HTTP half; the layout half is
tests/browser/test_layout.py): a welcome once registered, FAQ search showing its best
answers first, staff shown by their name, public pages described for search engines,
email links on the port `make run PORT=…` serves, the demo staff named like people."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from sqlalchemy import select

from backoffice.models import FaqCategory, FaqEntry, User
from public_portal.content import FAQ_BEST

from .portal_support import text
from .test_portal_accounts import NEW_USER, _confirm

ROOT = Path(__file__).resolve().parents[1]
FLASH = re.compile(r'<div class="alert alert-\w+">(.*?)</div>', re.S)


def test_a_confirmed_new_customer_is_welcomed_by_name(browser, db):
    browser.post("/lang/en", {"next": "/register"}, form_url="/")
    resp = browser.post("/register", NEW_USER)
    assert resp.status_code == 302
    _confirm(browser, db, NEW_USER["email"])
    shown = " ".join(FLASH.findall(text(browser.get("/"))))
    assert "Welcome to carebox, Budi Santoso!" in shown
    # Once: the next page does not greet again.
    assert "Welcome to carebox" not in text(browser.get("/"))


def test_faq_search_shows_the_best_answers_then_more(client, db):
    shipping = db.session.scalar(select(FaqCategory).where(FaqCategory.code == "shipping"))
    for n in range(FAQ_BEST + 3):
        db.session.add(
            FaqEntry(
                key=f"zz-gajah-{n}",
                category=shipping,
                question_id=f"Gajahmada {n}?" if n < 2 else f"Pertanyaan {n}",
                answer_id=f"Jawaban gajahmada nomor {n}.",
                question_en=f"Gajahmada {n}?" if n < 2 else f"Question {n}",
                answer_en=f"Answer gajahmada number {n}.",
            )
        )
    db.session.commit()  # InnoDB indexes FULLTEXT on commit
    page = text(client.get("/faq?q=gajahmada"))
    more = page.index('<details class="faq-more">')
    entries = [m.start() for m in re.finditer(r'<details class="faq-entry"', page)]
    assert len(entries) == FAQ_BEST + 3
    assert sum(1 for at in entries if at < more) == FAQ_BEST  # the few best, then "more"
    assert page.index("Gajahmada 0?") < more and page.index("Gajahmada 1?") < more
    assert "Jawaban lainnya (3)" in page  # Indonesian, the default
    assert page.count(" open>") == 1  # only the best answer is opened


def _description(html: str) -> str:
    match = re.search(r'<meta name="description" content="([^"]*)">', html)
    return match.group(1) if match else ""


def test_public_pages_have_a_description_in_the_page_language(client):
    seen = set()
    for url in ("/", "/faq", "/products", "/login", "/register"):
        indonesian = _description(text(client.get(url)))
        english = _description(text(client.get(url, headers={"Accept-Language": "en"})))
        assert len(indonesian) > 40 and len(english) > 40, url
        assert indonesian != english, url
        seen.add(english)
    assert len(seen) >= 4  # the pages say what each is, not one sentence everywhere


def test_make_run_builds_email_links_on_its_own_port(tmp_path):
    """`make run PORT=…` runs every command, the demo seed's included (its emails hold
    links), with CAREBOX_BASE_URL on that port: the recipe run for real, with stand-ins
    for the venv's programs that say what they were given."""
    fake = tmp_path / "bin"
    fake.mkdir()
    for name in ("carebox", "pybabel", "pip", "python"):
        tool = fake / name
        tool.write_text(f'#!/bin/sh\necho "{name} $CAREBOX_BASE_URL $*"\n')
        tool.chmod(0o755)

    def make_run(env) -> str:
        return subprocess.run(  # noqa: S603 (a fixed argv: make, as people run it)
            ["make", "-s", "run", "PORT=5123", f"BIN={fake}"],  # noqa: S607
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout

    env = {k: v for k, v in os.environ.items() if k != "CAREBOX_BASE_URL"}
    ran = make_run(env)
    calls = [line for line in ran.splitlines() if line.startswith("carebox ")]
    assert any("seed --demo" in line for line in calls), ran
    assert any("run --host 127.0.0.1 --port 5123" in line for line in calls), ran
    assert all(line.split()[1] == "http://127.0.0.1:5123" for line in calls), calls
    # A base URL given by the person running it wins.
    ran = make_run({**env, "CAREBOX_BASE_URL": "https://care.example"})
    assert "carebox https://care.example seed --demo" in ran, ran


def test_demo_staff_have_peoples_names(app, db, runner):
    from backoffice.seed import DEMO_LOGINS, seed_base, seed_demo

    seed_base()
    seed_demo()
    db.session.commit()
    for login in DEMO_LOGINS:
        name = db.session.scalar(select(User.name).where(User.email == login.email))
        assert name and not name.startswith("Demo"), (login.email, name)

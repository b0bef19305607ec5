"""Public portal pages: home, FAQ (search, suggestions, votes), catalogue, languages, login."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from backoffice.domain import permissions as perm
from backoffice.models import Announcement, FaqCategory, FaqEntry, FaqVote
from backoffice.models.base import utcnow

from .conftest import Browser
from .portal_support import text


def test_home_shows_published_announcements_chat_box_and_entry_points(client, db):
    db.session.add_all(
        [
            Announcement(
                title_id="Layanan baru <b>Kargo</b>",
                body_id="Kirim barang besar.",
                title_en="New <b>Cargo</b> service",
                body_en="Send big things.",
                published=True,
                published_at=utcnow(),
            ),
            Announcement(title_id="Draf rahasia", body_id="belum", published=False),
        ]
    )
    db.session.commit()
    page = client.get("/").get_data(as_text=True)
    assert "Layanan baru &lt;b&gt;Kargo&lt;/b&gt;" in page  # escaped, Indonesian by default
    assert "Draf rahasia" not in page
    assert 'data-suggest-url="/faq/suggest"' in page and 'name="q"' in page
    for url in ("/faq", "/products", "/orders", "/tickets", "/tickets/new"):
        assert f'href="{url}"' in page
    assert "portal.js" in page and "<script>" not in page  # no inline script (CSP)
    english = client.get("/", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "New &lt;b&gt;Cargo&lt;/b&gt; service" in english


def test_faq_overview_category_page_and_unknown_category(client, db):
    page = text(client.get("/faq"))
    first = db.session.scalars(
        select(FaqEntry).where(FaqEntry.published.is_(True)).order_by(FaqEntry.position)
    ).first()
    assert first.question_id in page
    drafts = db.session.scalars(select(FaqEntry).where(FaqEntry.published.is_(False))).all()
    for draft in drafts:
        assert draft.question_id not in page
    category = db.session.get(FaqCategory, first.category_id)
    page = text(client.get(f"/faq?category={category.code}"))
    assert first.question_id in page
    assert client.get("/faq?category=nope").status_code == 404


def test_faq_search_ranks_question_hits_first(client, db):
    shipping = db.session.scalar(select(FaqCategory).where(FaqCategory.code == "shipping"))
    db.session.add_all(
        [
            FaqEntry(
                key="zz-answer-only",
                category=shipping,
                question_id="Pertanyaan lain",
                answer_id="Jawaban menyebut zebrakuda sekali.",
                question_en="Another question",
                answer_en="An answer that mentions zebrakuda once.",
            ),
            FaqEntry(
                key="zz-question",
                category=shipping,
                question_id="Apa itu zebrakuda?",
                answer_id="Zebrakuda adalah layanan uji.",
                question_en="What is zebrakuda?",
                answer_en="Zebrakuda is a test service.",
            ),
            FaqEntry(
                key="zz-draft",
                category=shipping,
                question_id="Zebrakuda rahasia",
                answer_id="Zebrakuda draf.",
                question_en="Secret zebrakuda",
                answer_en="Draft.",
                published=False,
            ),
        ]
    )
    db.session.commit()  # InnoDB indexes FULLTEXT on commit
    page = text(client.get("/faq?q=zebrakuda"))
    assert page.index("Apa itu zebrakuda?") < page.index("Pertanyaan lain")
    assert "Zebrakuda rahasia" not in page
    # A prefix of a word finds it too; both languages are searched.
    assert "Apa itu zebrakuda?" in text(client.get("/faq?q=zebrak"))
    english = text(client.get("/faq?q=zebrakuda", headers={"Accept-Language": "en"}))
    assert "What is zebrakuda?" in english
    # Still need help: the question goes to a new ticket.
    assert "/tickets/new?subject=zebrakuda&amp;body=zebrakuda" in client.get(
        "/faq?q=zebrakuda"
    ).get_data(as_text=True)


@pytest.mark.parametrize(
    "query", ["", "a", "%", "' OR 1=1 --", '+-><()~*"@', "\x00", "💥" * 300, "paket\x00 \u202e"]
)
def test_faq_search_survives_odd_queries(client, query):
    assert client.get("/faq", query_string={"q": query}).status_code == 200
    resp = client.get("/faq/suggest", query_string={"q": query})
    assert resp.status_code == 200 and isinstance(resp.get_json()["results"], list)


def test_suggest_answers_as_you_type_in_the_users_language(client):
    data = client.get("/faq/suggest?q=lacak paket").get_json()
    assert data["results"], data
    first = data["results"][0]
    assert set(first) == {"id", "question", "answer", "url"}
    assert first["url"].startswith("/faq?q=") and first["url"].endswith(f"#faq-{first['id']}")
    assert len(data["results"]) <= 5
    assert data["ticket_url"].startswith("/tickets/new?subject=lacak")
    en = client.get("/faq/suggest?q=track parcel", headers={"Accept-Language": "en"}).get_json()
    assert en["results"] and "track" in en["results"][0]["question"].lower()
    assert client.get("/faq/suggest?q=").get_json() == {
        "query": "",
        "parcels": [],
        "results": [],
        "ticket_url": None,
    }


def _published_entry(db) -> FaqEntry:
    return db.session.scalars(
        select(FaqEntry).where(FaqEntry.published.is_(True)).order_by(FaqEntry.id)
    ).first()


def test_helpful_vote_counts_once_per_session(browser, db):
    browser.post("/lang/en", {"next": "/faq"}, form_url="/faq")
    entry = _published_entry(db)
    url = f"/faq/{entry.id}/vote"
    resp = browser.post(url, {"helpful": "yes", "next": "/faq"}, form_url="/faq")
    assert resp.status_code == 302 and resp.headers["Location"].endswith(f"/faq#faq-{entry.id}")
    again = browser.post(url, {"helpful": "no"}, form_url="/faq")
    assert again.status_code == 302
    db.session.expire_all()
    entry = db.session.get(FaqEntry, entry.id)
    assert (entry.helpful_yes, entry.helpful_no) == (1, 0)
    page = text(browser.get(f"/faq?category={entry.category.code}"))
    assert "You already told us" in page and "Thank you for your feedback!" in page
    assert f'action="/faq/{entry.id}/vote"' not in page  # no second vote offered


def _counts(db, entry_id) -> tuple[int, int]:
    db.session.commit()  # a new snapshot (MariaDB): the votes came through the app
    entry = db.session.get(FaqEntry, entry_id)
    return entry.helpful_yes, entry.helpful_no


def test_a_signed_in_customer_votes_once_per_account_on_any_device(app, db, make):
    entry = _published_entry(db)
    url, page = f"/faq/{entry.id}/vote", f"/faq?category={entry.category.code}"
    customer, other = make.user(perm.CUSTOMER, locale="en"), make.user(perm.CUSTOMER)
    db.session.commit()
    phone, laptop, friend = (Browser(app.test_client()) for _ in range(3))
    phone.login(customer)
    laptop.login(customer)  # the same account on a second device: a session of its own
    friend.login(other)
    assert phone.post(url, {"helpful": "yes"}, form_url=page).status_code == 302
    assert f'action="{url}"' not in text(laptop.get(page))  # the laptop knows it too
    again = laptop.post(url, {"helpful": "no"}, form_url="/faq")
    assert again.status_code == 302
    assert "You already told us" in text(laptop.get(again.headers["Location"]))
    assert _counts(db, entry.id) == (1, 0)
    assert friend.post(url, {"helpful": "no"}, form_url=page).status_code == 302
    assert _counts(db, entry.id) == (1, 1)
    votes = db.session.execute(select(FaqVote.user_id, FaqVote.helpful)).all()
    assert sorted(votes) == sorted([(customer.id, True), (other.id, False)])


def test_helpful_votes_are_rate_limited_per_address(limited_app, db):
    app = limited_app(RATELIMIT_FAQ_VOTE="2 per hour")
    entries = db.session.scalars(
        select(FaqEntry).where(FaqEntry.published.is_(True)).order_by(FaqEntry.id).limit(3)
    ).all()
    codes = []
    for entry in entries:  # a script that drops its cookie before every vote
        b = Browser(app.test_client())
        codes.append(
            b.post(f"/faq/{entry.id}/vote", {"helpful": "yes"}, form_url="/faq").status_code
        )
    assert codes == [302, 302, 429]
    assert [_counts(db, e.id) for e in entries] == [(1, 0), (1, 0), (0, 0)]


def test_helpful_vote_needs_csrf_and_a_valid_choice(browser, client, db):
    entry = _published_entry(db)
    client.post(f"/faq/{entry.id}/vote", data={"helpful": "yes"})  # no token
    browser.post(f"/faq/{entry.id}/vote", {"helpful": "maybe"}, form_url="/faq")
    db.session.expire_all()
    entry = db.session.get(FaqEntry, entry.id)
    assert (entry.helpful_yes, entry.helpful_no) == (0, 0)
    assert browser.post("/faq/999999/vote", {"helpful": "yes"}, form_url="/faq").status_code == 404


def test_catalogue_shows_tariffs_and_badges_with_their_notes(client, make):
    page = text(client.get("/products"))
    express = make.product("EXPRESS")
    card = page[page.index('id="product-EXPRESS"') :][:2000]
    assert express.name_id in card and 'class="badge badge-info"' in card
    assert express.badge_note_id in card
    assert "Rp" in page and "15.000" in page  # base price of EXPRESS, Indonesian format
    english = text(client.get("/products", headers={"Accept-Language": "en"}))
    assert express.name_en in english and express.badge_note_en in english
    assert "New" in english and "Improved" in english
    assert "/orders/new?service=EXPRESS" in english


@pytest.mark.parametrize("url", ["/", "/faq", "/products", "/login", "/register", "/reset"])
def test_every_page_has_the_language_switch_with_csrf(client, url):
    page = client.get(url).get_data(as_text=True)
    assert 'action="/lang/en"' in page and 'action="/lang/id"' in page
    form = page[page.index('action="/lang/en"') :][:400]
    assert 'name="csrf_token"' in form


def test_language_switch_is_remembered_across_pages(browser):
    assert '<html lang="id"' in browser.get("/products").get_data(as_text=True)
    resp = browser.post("/lang/en", {"next": "/products"}, form_url="/products")
    assert resp.headers["Location"].endswith("/products")
    page = text(browser.get("/faq"))
    assert '<html lang="en"' in page and "Help & FAQ" in page


def test_signed_in_language_is_saved_on_the_account(login_as, db):
    b, user = login_as(perm.CUSTOMER)
    b.post("/lang/en", {"next": "/"}, form_url="/")
    db.session.refresh(user)
    assert user.locale == "en"


def test_login_sends_customers_home_and_staff_to_the_back_office(app, make, db):
    from .conftest import Browser

    customer = make.user(perm.CUSTOMER)
    staff = make.user(perm.MASTER_ADMIN)
    db.session.commit()
    b = Browser(app.test_client())
    resp = b.login(customer)
    assert b.get(resp.headers["Location"]).headers["Location"].endswith("/")
    b = Browser(app.test_client())
    resp = b.login(staff)
    assert b.get(resp.headers["Location"]).headers["Location"].endswith("/admin/")


def test_login_keeps_next(app, make, db):
    from .conftest import Browser

    user = make.user(perm.CUSTOMER)
    db.session.commit()
    b = Browser(app.test_client())
    resp = b.get("/tickets/new?subject=Halo")
    assert resp.status_code == 302 and "/login?next=" in resp.headers["Location"]
    login_url = resp.headers["Location"].replace("http://localhost", "")
    page = b.get(login_url).get_data(as_text=True)
    assert 'action="/login?next=' in page
    resp = b.post(login_url, {"email": user.email, "password": "password"}, form_url=login_url)
    assert resp.headers["Location"].endswith("/tickets/new?subject=Halo")


def test_wrong_password_is_shown_next_to_the_form(browser, make, db):
    user = make.user(perm.CUSTOMER)
    db.session.commit()
    resp = browser.post("/login", {"email": user.email, "password": "wrong-one"})
    assert resp.status_code == 200
    # One message for a wrong password and an unknown address alike (generic responses).
    assert "Autentikasi gagal" in text(resp)


def test_logout_is_a_post_with_csrf(login_as):
    b, _user = login_as(perm.CUSTOMER)
    assert b.get("/logout").status_code == 405
    confirm = b.client.post("/logout")  # no token: a themed page asks to confirm
    assert confirm.status_code == 200 and 'name="logout_form"' in confirm.get_data(as_text=True)
    assert b.get("/tickets").status_code == 200  # still signed in
    resp = b.logout()
    assert resp.status_code == 302
    assert b.get("/tickets").status_code == 302  # to the login page


def test_errors_are_themed_pages_or_json(client):
    resp = client.get("/no-such-page")
    assert resp.status_code == 404 and 'class="portal-header"' in resp.get_data(as_text=True)
    resp = client.get("/no-such-page", headers={"Accept": "application/json"})
    assert resp.status_code == 404 and resp.get_json()["error"]

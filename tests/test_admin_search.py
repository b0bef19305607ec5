"""The ticket lists' search box (views/ticket_search.py): what a term matches.

Numbers and e-mails match from their start, names from the start of a word,
subjects from their start; words inside a subject only in tickets of the last
SUBJECT_CONTAINS_DAYS days. Always inside the list, the user's scope and the
active filters; at most SEARCH_LIMIT newest matches.
"""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import quote_plus

import pytest

from backoffice.domain import permissions as perm
from backoffice.models import TicketKind
from backoffice.models.base import utcnow
from backoffice.views import ticket_search

from .admin_support import counting_queries, flashes, listed_numbers


@pytest.fixture
def people(make, db):
    """Two customers with distinct names and e-mails, each with a Team ticket."""
    budi = make.user(name="Budi Santoso", email="budi.santoso@example.com")
    sari = make.user(name="Sari Dewi", email="sari.d@example.org")
    t_budi = make.ticket("team", customer=budi, subject="Kurir tidak datang")
    t_sari = make.ticket("team", customer=sari, subject="Tagihan ganda")
    db.session.commit()
    return {"budi": budi, "sari": sari, "t_budi": t_budi, "t_sari": t_sari}


@pytest.fixture
def master(login_as):
    b, _ = login_as(perm.MASTER_ADMIN, locale="en")

    def numbers(term: str, status: str = "team", extra: str = "") -> set[str]:
        resp = b.get(f"/admin/tickets/{status}/?search={quote_plus(term)}{extra}")
        assert resp.status_code == 200
        return listed_numbers(resp.get_data(as_text=True))

    b.numbers = numbers
    return b


def test_by_ticket_number_whole_or_its_start(master, make, db, people):
    number = people["t_budi"].number
    assert master.numbers(number) == {number}
    assert master.numbers(number.lower()) == {number}  # case does not matter
    assert number in master.numbers(number[:-2])  # the start of a number
    assert master.numbers(number[3:]) == set()  # not the middle of a number
    # A number is looked for in this list only.
    assert master.numbers(number, status="responded") == set()


def test_a_whole_number_is_that_ticket_alone(master, make, db, people):
    """Past ticket id 999,999 numbers have seven digits, so a whole six-digit number is
    the start of ten longer ones; typed whole, it means that one ticket."""
    short, longer = make.ticket("team"), make.ticket("team")
    short.number, longer.number = "CX-2026-100000", "CX-2026-1000001"
    db.session.commit()
    assert master.numbers("cx-2026-100000") == {"CX-2026-100000"}
    assert master.numbers("CX-2026-10000") == {"CX-2026-100000", "CX-2026-1000001"}


def test_by_customer_email_whole_or_its_start(master, people):
    t_budi, t_sari = people["t_budi"].number, people["t_sari"].number
    assert master.numbers("budi.santoso@example.com") == {t_budi}
    assert master.numbers("BUDI.Santoso@Example.com") == {t_budi}
    assert master.numbers("budi.san") == {t_budi}  # the start, without "@"
    assert master.numbers("sari.d@") == {t_sari}
    assert master.numbers("@example.org") == set()  # not the middle of an address
    assert master.numbers("santoso@example") == set()


def test_by_customer_name_from_the_start_of_a_word(master, people):
    t_budi, t_sari = people["t_budi"].number, people["t_sari"].number
    assert master.numbers("Budi") == {t_budi}
    assert master.numbers("santoso") == {t_budi}  # a later word of the name
    assert master.numbers("budi  santoso ") == {t_budi}  # one phrase, spaces tidied
    assert master.numbers("Sari Dewi") == {t_sari}
    assert master.numbers("anto") == set()  # not the middle of a word
    assert master.numbers("Budi Dewi") == set()  # the words as one phrase


def test_by_subject_start_always_and_words_inside_only_recently(master, make, db, people):
    days = ticket_search.SUBJECT_CONTAINS_DAYS
    customer = people["sari"]
    old = make.ticket(
        "team",
        customer=customer,
        subject="Paket rusak saat diterima",
        now=utcnow() - timedelta(days=days + 10),
    )
    recent = make.ticket("team", customer=customer, subject="Paket rusak di gudang")
    db.session.commit()
    assert master.numbers("paket rusak") == {old.number, recent.number}  # the start
    assert master.numbers("Kurir tidak") == {people["t_budi"].number}
    # Words inside a subject: recent tickets only.
    assert master.numbers("rusak") == {recent.number}
    assert master.numbers("saat diterima") == set()
    assert master.numbers("di gudang") == {recent.number}
    html = master.get("/admin/tickets/team/?search=rusak").get_data(as_text=True)
    assert html.count('id="search-help"') == 1 and f"last {days} days" in html  # ids are unique
    assert 'placeholder="Number, subject, customer name or e-mail"' in html
    assert 'id="search-help"' not in master.get("/admin/tickets/team/").get_data(as_text=True)


def test_like_wildcards_are_taken_literally(master, make, db, people):
    odd = make.ticket("team", customer=people["sari"], subject="Diskon 50% tidak_ada")
    db.session.commit()
    assert master.numbers("%") == {odd.number}  # a literal "%", not "anything"
    assert master.numbers("_") == {odd.number}
    assert master.numbers("50%") == {odd.number}
    assert master.numbers("tidak_ada") == {odd.number}
    assert master.numbers("tidak ada") == set()


def test_search_stays_inside_scope_list_and_filters(login_as, make, app, db, people):
    claims = make.ticket("team", customer=people["budi"], department="CLAIMS")
    complaint = make.ticket(
        "team", customer=people["budi"], kind=TicketKind.COMPLAINT, department="OPS"
    )
    progress = make.ticket("progress", customer=people["budi"])
    db.session.commit()
    ops_admin, _ = login_as(perm.ADMIN_DEPARTMENT, department="OPS")
    html = ops_admin.get("/admin/tickets/team/?search=budi").get_data(as_text=True)
    assert listed_numbers(html) == {people["t_budi"].number, complaint.number}
    assert (
        listed_numbers(
            ops_admin.get(f"/admin/tickets/team/?search={claims.number}").get_data(as_text=True)
        )
        == set()
    )
    master, _ = login_as(perm.MASTER_ADMIN)
    html = master.get("/admin/tickets/team/?search=budi").get_data(as_text=True)
    assert listed_numbers(html) == {people["t_budi"].number, complaint.number, claims.number}
    view = next(v for v in app.extensions["admin"][0]._views if v.endpoint == "tickets_team")
    kind = next(f"flt0_{view.get_filter_arg(i, f)}" for i, f in enumerate(view._filters))
    html = master.get(f"/admin/tickets/team/?search=budi&{kind}=complaint").get_data(as_text=True)
    assert listed_numbers(html) == {complaint.number}
    html = master.get("/admin/tickets/progress/?search=budi").get_data(as_text=True)
    assert listed_numbers(html) == {progress.number}


def test_too_many_customers_are_left_out_with_a_message(master, make, db, people, monkeypatch):
    monkeypatch.setattr(ticket_search, "CUSTOMER_LIMIT", 1)
    other = make.user(name="Budiman <b>Jaya</b>", email="budiman@example.com")
    theirs = make.ticket("team", customer=other)
    make.user(name="Lain <b>Orang</b>")
    about = make.ticket("team", customer=people["sari"], subject="Budi tidak ramah")
    db.session.commit()
    resp = master.get("/admin/tickets/team/?search=budi")
    html = resp.get_data(as_text=True)
    assert listed_numbers(html) == {about.number}  # the subject still matches
    assert "Too many customers match “budi”" in flashes(html)
    assert master.numbers("budiman") == {theirs.number}  # one customer: within the limit
    # A term too broad for the customers is shown escaped in the message.
    html = master.get(f"/admin/tickets/team/?search={quote_plus('<b>')}").get_data(as_text=True)
    assert "&lt;b&gt;" in flashes(html) and "<b>" not in flashes(html)


def test_at_most_the_newest_matches_are_listed(master, make, db, people, monkeypatch):
    monkeypatch.setattr(ticket_search, "SEARCH_LIMIT", 2)
    older = make.ticket("team", customer=people["budi"], now=utcnow() - timedelta(hours=2))
    newer = make.ticket("team", customer=people["budi"])
    db.session.commit()
    html = master.get("/admin/tickets/team/?search=budi").get_data(as_text=True)
    assert "List (2+)" in html
    assert listed_numbers(html) == {newer.number, people["t_budi"].number}
    assert older.number not in html


def test_a_one_lookup_search_pages_and_counts_past_a_page(master, make, db, people):
    """A phone's tickets (one indexed lookup) fill more than a page: counted, paged."""
    customer = make.user(name="Rina", phone="0812-3456-7890")
    made = [make.ticket("team", customer=customer) for _ in range(27)]
    db.session.commit()
    html = master.get("/admin/tickets/team/?search=081234567890").get_data(as_text=True)
    assert "List (27)" in html
    first = listed_numbers(html)
    second = master.numbers("081234567890", extra="&page=1")
    assert len(first) == 25 and len(second) == 2
    assert first | second == {t.number for t in made}


def test_search_pages_and_sorts_over_all_matches(master, make, db, people):
    customer = people["sari"]
    made = [make.ticket("team", customer=customer) for _ in range(26)]
    db.session.commit()
    everyone = {t.number for t in made} | {people["t_sari"].number}
    first = master.numbers("sari")
    second = master.numbers("sari", extra="&page=1")
    assert len(first) == 25 and len(second) == 2 and first | second == everyone
    assert first == {t.number for t in made[-25:]}  # newest first
    html = master.get("/admin/tickets/team/?search=sari").get_data(as_text=True)
    assert "List (27)" in html
    sorted_first = master.numbers("sari", extra="&sort=0")  # by number, ascending
    assert people["t_sari"].number in sorted_first


def test_a_search_costs_a_constant_number_of_statements(master, make, db, people):
    def cost(term: str) -> int:
        master.get(f"/admin/tickets/team/?search={term}")  # reloads what a commit expired
        with counting_queries(db.engine) as statements:
            assert master.get(f"/admin/tickets/team/?search={term}").status_code == 200
        return len(statements)

    number = people["t_budi"].number
    few = (cost("budi"), cost(number))
    for i in range(12):
        customer = make.user(name=f"Budi {i}")
        make.ticket("team", customer=customer, subject=f"Budi bertanya {i}")
    db.session.commit()
    assert (cost("budi"), cost(number)) == few
    # The session's user, the searches, the page; then the filters' choices: departments,
    # the assignee filter's colleagues (roles, staff), the queue bar's active departments,
    # the menu's unread staff notices. None of them grows with the rows.
    assert few[0] <= 9 and few[1] <= 8, few


def test_by_resi_as_people_type_it(master, make, db, people):
    budi = people["budi"]
    order = make.order(customer=budi)
    t = make.ticket("team", customer=budi, order=order, subject="Paket hilang")
    other = make.ticket("team", customer=budi, order=make.order(customer=budi))
    db.session.commit()
    resi = order.resi
    spaced = f"{resi[:2].lower()} {resi[2:6]}-{resi[6:11]} {resi[11:].lower()}"
    assert master.numbers(resi) == {t.number}
    assert master.numbers(spaced) == {t.number}  # case and separators do not matter
    assert other.number not in master.numbers(resi)
    assert master.numbers(resi, status="responded") == set()  # this list only
    assert master.numbers(resi[:-1]) == set()  # a resi is matched whole


def test_by_phone_whatever_way_it_was_typed(master, make, db, people):
    customer = make.user(name="Rina", phone="0812-3456-7890")
    t = make.ticket("team", customer=customer)
    db.session.commit()
    for typed in ("0812-3456-7890", "+62 812 3456 7890", "6281234567890", "(0812) 34567890"):
        assert master.numbers(typed) == {t.number}, typed
    assert master.numbers("0812-3456-7891") == set()


def test_a_resi_phone_or_number_is_one_indexed_lookup(master, make, db, people):
    """No customer lookup and no LIKE for them: the ids in one statement, then the page."""
    order = make.order(customer=people["budi"])
    make.ticket("team", customer=people["budi"], order=order)
    make.ticket("team", customer=make.user(phone="0812-3456-7890"))
    db.session.commit()

    def cost(term: str) -> list[str]:
        master.get(f"/admin/tickets/team/?search={quote_plus(term)}")
        with counting_queries(db.engine) as statements:
            assert master.get(f"/admin/tickets/team/?search={quote_plus(term)}").status_code == 200
        return statements

    by_word = cost("budi")
    assert any("LIKE" in s for s in by_word)  # a word looks customers up first
    for term in (order.resi, "0812 3456 7890", people["t_budi"].number):
        found = cost(term)
        assert len(found) < len(by_word), term
        assert not any("LIKE" in s for s in found), term
        # A page that holds every match is the only statement on tickets (no ids first).
        assert len([s for s in found if "FROM ticket" in s]) == 1, (term, found)


def test_an_e_mail_is_looked_up_inside_the_tickets_statement(master, db, people):
    """An address finds its customers in the page's own statement (a subquery of
    uq_user_email), not in a statement of their own first: as cheap as a number."""

    def cost(term: str) -> list[str]:
        master.get(f"/admin/tickets/team/?search={quote_plus(term)}")
        with counting_queries(db.engine) as statements:
            assert master.get(f"/admin/tickets/team/?search={quote_plus(term)}").status_code == 200
        return statements

    address = people["budi"].email
    found = cost(address)
    assert len(found) == len(cost(people["t_budi"].number)), found
    assert len([s for s in found if "FROM ticket" in s]) == 1, found
    assert master.numbers(address) == {people["t_budi"].number}


NAMES = [
    "Budi Santoso",
    "Santoso Budiman",
    "Ani Budi Santika",
    "Siti-Aminah Rahma",
    "The Budi",
    "Yohanes Wibowo",
    "Agus Wibowo Jr",
    "Dewi Ayu",
]


@pytest.mark.parametrize(
    "term",
    ["budi", "santoso", "budi san", "Wibowo", "aminah", "ayu", "the", "jr", "san", "bowo"],
)
def test_a_word_of_a_name_matches_alike_on_every_engine(make, db, term):
    """The customers a term finds by a word of their name are the same whether
    FULLTEXT (MariaDB) or ix_user_name (SQLite, short words, stopwords) finds them:
    a word of the name starts with the phrase."""
    users = [make.user(name=n, email=f"w{i}@example.com") for i, n in enumerate(NAMES)]
    db.session.commit()  # InnoDB's FULLTEXT sees rows once committed
    expected = {
        u.id
        for u in users
        if u.name.lower().startswith(term.lower()) or f" {term.lower()}" in u.name.lower()
    }
    assert set(ticket_search.matching_customers(term)) == expected


def test_fulltext_answers_only_what_it_indexes():
    assert ticket_search.fulltext_words("budi san") == "+budi* +san*"
    for term in ("ab", "the budi", "o'brien", "siti-aminah", "budi_x"):
        assert ticket_search.fulltext_words(term) is None, term

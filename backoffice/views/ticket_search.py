"""The search box of the ticket lists: what a term matches, each match served by an index.

Flask-Admin's own search ORs `lower(column) LIKE '%term%'` over every searchable
column through a join to the customer: no index can serve that, so on 1,000,000
tickets one search read the whole table (14-29 s). Here the term is read as
one phrase (case-insensitive) and matched as:

- a ticket number (it starts with "CX-"): a whole number ("cx-2026-000123") is that
  ticket alone; the start of one ("cx-2026-0001") the numbers that start with it
  (uq_ticket_number, an equality or a range of the upper-cased term: SQLite's LIKE
  ignores case and so no index serves it);
- a resi (UPU S10 shape, as people type it: "cb 1234-5678 9 id"): the tickets about
  that order, one lookup of uq_customer_order_resi then ix_ticket_order_id;
- a phone number (digits, with "+", spaces, dashes or brackets, at least
  PHONE_DIGITS digits): the tickets of the customers with that number in E.164
  (ix_user_phone_key), whatever way it was typed;
- an e-mail address (it holds "@"): the customer's e-mail starts with it, the
  whole address or its start (uq_user_email), inside the tickets' statement: with
  its local part typed whole, a handful of customers at most, so no CUSTOMER_LIMIT;
- anything else, any of:
  - the customer's e-mail starts with it ("c1234", "budi.s") (uq_user_email);
  - a word of the customer's name starts with it ("budi", "santoso", "budi san")
    (ix_user_name: a range for the first word; for the other words, on MySQL and
    MariaDB, ix_user_name_fulltext finds the names with words starting with each
    word of the term, and the same LIKE as elsewhere keeps those where they make
    the phrase; SQLite, and terms FULLTEXT does not index (a word under
    FULLTEXT_MIN letters, a stopword, punctuation), read the whole ix_user_name);
  - the subject starts with it, in the whole list (ix_ticket_status_subject);
  - the subject contains it, in tickets filed in the last SUBJECT_CONTAINS_DAYS
    days only: a "%term%" match cannot use an index order, so it is bounded by
    a window of ix_ticket_status_created (status, created_at, id, subject),
    read from the index alone.

Every part runs inside the list's status, the user's scope and the active
filters, and finds at most SEARCH_LIMIT + 1 tickets, newest first: a search
lists the SEARCH_LIMIT newest matches ("1000+" when there are more). The
customers are looked up first, at most CUSTOMER_LIMIT of them; a broader term
("a", or a name most customers share) leaves the customers out and says so.

Statements (TicketListView.get_list): one for the customers (not for a ticket number,
a resi, a phone or an e-mail); then, for a term of one part (a number, a resi, a
phone, an e-mail), the first page straight away when it holds every match; else one
for the page's ids and the count of all matches (a UNION of the parts, each with its
own index, counted by a window), then the page.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Select, func, select, union
from sqlalchemy.dialects.mysql import match

from ..domain.phones import normalise_phone
from ..domain.shipments import RESI_RE, normalise_resi
from ..extensions import db
from ..models import Order, Ticket, User
from ..models.base import utcnow
from .sqlhelpers import capped

SEARCH_LIMIT = 1000
CUSTOMER_LIMIT = 500
SUBJECT_CONTAINS_DAYS = 30
MAX_TERM = 100

NUMBER_TERM = re.compile(r"^CX-[\d-]*$", re.IGNORECASE)
WHOLE_NUMBER = re.compile(r"^CX-\d{4}-\d{6,}$", re.IGNORECASE)
# InnoDB's FULLTEXT defaults: innodb_ft_min_token_size = 3 and its stopword list
# (INFORMATION_SCHEMA.INNODB_FT_DEFAULT_STOPWORD); letters and digits make a word.
FULLTEXT_MIN = 3
FULLTEXT_WORD = re.compile(rf"^[^\W_]{{{FULLTEXT_MIN},}}$")
# (its shorter ones are under FULLTEXT_MIN anyway)
FULLTEXT_STOPWORDS = frozenset(
    {"about", "are", "com", "for", "from", "how", "that", "the", "this", "was", "what"}
    | {"when", "where", "who", "will", "with", "und", "www"}
)
PHONE_TERM = re.compile(r"^\+?[\d ().-]+$")
PHONE_DIGITS = 8


def like_escape(term: str) -> str:
    """The term with LIKE's wildcards taken literally (escape character '/')."""
    return term.replace("/", "//").replace("%", "/%").replace("_", "/_")


def _starts(column, term: str):
    return column.like(like_escape(term) + "%", escape="/")


def _contains(column, term: str):
    return column.like("%" + like_escape(term) + "%", escape="/")


def normalise(raw: str | None) -> str:
    """One phrase: outer spaces dropped, inner runs of spaces made one, at most MAX_TERM."""
    return " ".join((raw or "").split())[:MAX_TERM]


@dataclass
class SearchResult:
    ids: list[int]  # the matching ticket ids, newest first, at most SEARCH_LIMIT
    count: int  # len(ids), or CappedCount(SEARCH_LIMIT) ("1000+") when more match
    customers_left_out: bool = False  # more than CUSTOMER_LIMIT customers matched


def fulltext_words(term: str) -> str | None:
    """The boolean-mode query ("+budi* +san*") that finds, in ix_user_name_fulltext,
    every name holding the term's words as word starts; None for a term InnoDB's
    FULLTEXT cannot answer completely (a word shorter than its minimum token size,
    a stopword, or characters it splits words at)."""
    words = term.split(" ")
    if not all(FULLTEXT_WORD.match(w) and w.lower() not in FULLTEXT_STOPWORDS for w in words):
        return None
    return " ".join(f"+{w}*" for w in words)


def matching_customers(term: str) -> list[int] | None:
    """Ids of the users whose e-mail (or a word of whose name) starts with `term`;
    None when more than CUSTOMER_LIMIT match (the term is too broad)."""
    limit = CUSTOMER_LIMIT + 1
    parts = [select(User.id).where(_starts(User.email, term)).limit(limit)]
    parts.append(select(User.id).where(_starts(User.name, term)).limit(limit))
    inner_word = User.name.like("% " + like_escape(term) + "%", escape="/")
    words = fulltext_words(term)
    if words is not None and db.engine.dialect.name in ("mysql", "mariadb"):
        # The index narrows to names holding words that start so; the LIKE decides.
        inner_word = match(User.name, against=words).in_boolean_mode() & inner_word
    parts.append(select(User.id).where(inner_word).limit(limit))
    # Each part keeps its own LIMIT (SQLite wants them in subqueries).
    wrapped = [select(p.subquery().c.id) for p in parts]
    ids = list(db.session.scalars(union(*wrapped).limit(limit)))
    return None if len(ids) > CUSTOMER_LIMIT else ids


def phone_key(term: str) -> str | None:
    """The E.164 form of `term` when it reads as a phone number, else None."""
    if not PHONE_TERM.match(term) or sum(ch.isdigit() for ch in term) < PHONE_DIGITS:
        return None
    return normalise_phone(term)


def ticket_criteria(term: str) -> tuple[list, bool]:
    """The WHERE terms, one per index, whose union is the search; and whether
    the customers were left out because too many match."""
    if WHOLE_NUMBER.match(term):
        # A whole number is that ticket alone (as a desk's "go to ticket" does), not
        # also the longer numbers that start with it (CX-2026-100000 and
        # CX-2026-1000001): one lookup of uq_ticket_number.
        return [Ticket.number == term.upper()], False
    if NUMBER_TERM.match(term):
        number = term.upper()
        # Numbers are stored upper case and ASCII: the range [number, number + U+FFFF)
        # holds exactly those that start with it, on every engine and collation.
        return [(Ticket.number >= number) & (Ticket.number < number + "\uffff")], False
    resi = normalise_resi(term)
    if RESI_RE.match(resi):
        return [Ticket.order_id.in_(select(Order.id).where(Order.resi == resi))], False
    phone = phone_key(term)
    if phone is not None:
        return [Ticket.customer_id.in_(select(User.id).where(User.phone_key == phone))], False
    if "@" in term:
        # An address, whole or its start up to the "@" at least, names one customer or a
        # few: looked up inside the tickets' own statement, as a phone is.
        return [Ticket.customer_id.in_(select(User.id).where(_starts(User.email, term)))], False
    customers = matching_customers(term)
    criteria = []
    if customers:
        criteria.append(Ticket.customer_id.in_(customers))
    since = utcnow() - timedelta(days=SUBJECT_CONTAINS_DAYS)
    criteria.append(_starts(Ticket.subject, term))
    criteria.append((Ticket.created_at >= since) & _contains(Ticket.subject, term))
    return criteria, customers is None


NEWEST = (Ticket.created_at.desc(), Ticket.id.desc())


def _hits(base: Select, criteria: list):
    """The union of the criteria's parts, each the newest SEARCH_LIMIT + 1 of `base`
    through its own index: a subquery of (id, created_at)."""
    limit = SEARCH_LIMIT + 1
    parts = [base.where(c).order_by(*NEWEST).limit(limit).subquery() for c in criteria]
    picked = [select(p.c.id, p.c.created_at) for p in parts]
    return (union(*picked) if len(picked) > 1 else picked[0]).subquery()


def search_ids(base: Select, term: str, criteria: tuple | None = None) -> SearchResult:
    """The newest tickets of `base` (a SELECT of ticket.id, ticket.created_at that
    already holds the list's scope and filters) matching `term` (`criteria`: its
    `ticket_criteria`, when already made)."""
    criteria, left_out = criteria or ticket_criteria(term)
    if not criteria:
        return SearchResult([], 0, left_out)
    hits = _hits(base, criteria)
    ids = list(
        db.session.scalars(
            select(hits.c.id)
            .order_by(hits.c.created_at.desc(), hits.c.id.desc())
            .limit(SEARCH_LIMIT + 1)
        )
    )
    return SearchResult(ids[:SEARCH_LIMIT], capped(len(ids), SEARCH_LIMIT), left_out)


def search_page(
    base: Select, criteria: list, offset: int, size: int
) -> tuple[list[int], int] | None:
    """One page of the matches in the search's own order (newest first) and their count,
    in one statement: the ids of the page only, with the count of all matches as a
    window (COUNT(*) OVER ()), instead of every match's id (up to SEARCH_LIMIT + 1 rows
    to parse for a page of 25). None when the page lies past SEARCH_LIMIT or past the
    matches (search_ids then answers)."""
    if not criteria or offset + size > SEARCH_LIMIT:
        return None
    hits = _hits(base, criteria)
    rows = db.session.execute(
        select(hits.c.id, func.count().over())
        .order_by(hits.c.created_at.desc(), hits.c.id.desc())
        .offset(offset)
        .limit(size)
    ).all()
    if not rows:
        return None
    return [r[0] for r in rows], capped(rows[0][1], SEARCH_LIMIT)

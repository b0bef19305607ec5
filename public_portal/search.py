"""FAQ search, ranked: FULLTEXT on MySQL/MariaDB, a LIKE score on SQLite.

On MySQL/MariaDB the query runs `MATCH ... AGAINST` in boolean mode on the
`ix_faq_fulltext` index (every word as a prefix, so Indonesian suffixes such as
*paketnya* still match *paket*). Entries whose question holds more of the words
come first (one `MATCH` per word on `ix_faq_fulltext_question`, evaluated only
for the rows the index found), then InnoDB's relevance. Counting words rather
than adding relevances keeps the order stable: InnoDB's relevance drifts with
deleted rows until `OPTIMIZE TABLE`. SQLite has no such index: each word scores
3 when it is in a question and 1 when it is in an answer. Both search the
Indonesian and the English text, whatever the page's language.
"""

from __future__ import annotations

import re

from sqlalchemy import case, func, literal, or_, select
from sqlalchemy.dialects.mysql import match

from backoffice.extensions import db
from backoffice.models import FaqEntry

WORD_RE = re.compile(r"\w+")
MIN_WORD = 3  # InnoDB's innodb_ft_min_token_size: shorter words are not indexed
MAX_WORDS = 8
MAX_QUERY = 200


def words(query: str) -> list[str]:
    """The distinct searchable words of a query, lower-case, in order."""
    out: list[str] = []
    for word in WORD_RE.findall((query or "")[:MAX_QUERY].lower()):
        word = word.strip("_")
        if len(word) >= MIN_WORD and word not in out:
            out.append(word)
    return out[:MAX_WORDS]


def _fulltext_order(terms: list[str]):
    def against(*columns, query: str):
        return match(*columns, against=query).in_boolean_mode()

    everything = against(
        FaqEntry.question_id,
        FaqEntry.answer_id,
        FaqEntry.question_en,
        FaqEntry.answer_en,
        query=" ".join(f"{w}*" for w in terms),
    )
    in_question = sum(
        (
            case(
                (against(FaqEntry.question_id, FaqEntry.question_en, query=f"{w}*") > 0, 1), else_=0
            )
            for w in terms
        ),
        start=literal(0),
    )
    return everything, (in_question.desc(), everything.desc())


def _like_order(terms: list[str]):
    score = literal(0)
    for w in terms:
        in_question = or_(
            func.lower(FaqEntry.question_id).contains(w, autoescape=True),
            func.lower(FaqEntry.question_en).contains(w, autoescape=True),
        )
        in_answer = or_(
            func.lower(FaqEntry.answer_id).contains(w, autoescape=True),
            func.lower(FaqEntry.answer_en).contains(w, autoescape=True),
        )
        score = score + case((in_question, 3), else_=0) + case((in_answer, 1), else_=0)
    return score > 0, (score.desc(),)


def search(query: str, limit: int = 20) -> list[FaqEntry]:
    """Published entries matching `query`, best first (at most `limit`)."""
    terms = words(query)
    if not terms:
        return []
    dialect = db.session.get_bind().dialect.name
    if dialect in ("mysql", "mariadb"):
        condition, order = _fulltext_order(terms)
    else:
        condition, order = _like_order(terms)
    stmt = (
        select(FaqEntry)
        .where(FaqEntry.published.is_(True), condition)
        .order_by(*order, FaqEntry.position, FaqEntry.id)
        .limit(limit)
    )
    return list(db.session.scalars(stmt))

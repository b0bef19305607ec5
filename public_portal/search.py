"""FAQ search, ranked: each word scores 3 in a question and 1 in an answer.

Both the Indonesian and the English text are searched, whatever the page's
language; words shorter than three letters are ignored.
"""

from __future__ import annotations

import re

from sqlalchemy import case, func, literal, or_, select

from backoffice.extensions import db
from backoffice.models import FaqEntry

WORD_RE = re.compile(r"\w+")
MIN_WORD = 3
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
    condition, order = _like_order(terms)
    stmt = (
        select(FaqEntry)
        .where(FaqEntry.published.is_(True), condition)
        .order_by(*order, FaqEntry.position, FaqEntry.id)
        .limit(limit)
    )
    return list(db.session.scalars(stmt))

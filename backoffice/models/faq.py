"""FAQ categories and entries, in Indonesian and English."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .base import utcnow


class FaqCategory(db.Model):
    __tablename__ = "faq_category"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name_id: Mapped[str] = mapped_column(String(120))
    name_en: Mapped[str] = mapped_column(String(120))
    position: Mapped[int] = mapped_column(default=100)

    def __str__(self) -> str:
        return self.name_id


class FaqEntry(db.Model):
    __tablename__ = "faq_entry"
    __table_args__ = (
        Index("ix_faq_published_position", "published", "position"),
        # Portal search (MATCH ... AGAINST): every text, and the questions alone to rank
        # question hits first. MySQL/MariaDB only; SQLite searches with LIKE instead.
        Index(
            "ix_faq_fulltext",
            "question_id",
            "answer_id",
            "question_en",
            "answer_en",
            mysql_prefix="FULLTEXT",
        ).ddl_if(dialect=("mysql", "mariadb")),
        Index(
            "ix_faq_fulltext_question", "question_id", "question_en", mysql_prefix="FULLTEXT"
        ).ddl_if(dialect=("mysql", "mariadb")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(80), unique=True)
    category_id: Mapped[int] = mapped_column(ForeignKey("faq_category.id"), index=True)
    question_id: Mapped[str] = mapped_column(String(300))
    answer_id: Mapped[str] = mapped_column(Text)
    question_en: Mapped[str] = mapped_column(String(300))
    answer_en: Mapped[str] = mapped_column(Text)
    published: Mapped[bool] = mapped_column(default=True)
    position: Mapped[int] = mapped_column(default=100)
    helpful_yes: Mapped[int] = mapped_column(default=0)
    helpful_no: Mapped[int] = mapped_column(default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    category: Mapped[FaqCategory] = relationship()

    def localized(self, field: str, lang: str) -> str:
        return getattr(self, f"{field}_{'en' if lang == 'en' else 'id'}")

    def __str__(self) -> str:
        return self.key


class FaqVote(db.Model):
    """A signed-in user's answer to "Was this helpful?": one per entry and account,
    whatever the device. (Anonymous visitors' votes are kept in their session.)"""

    __tablename__ = "faq_vote"
    __table_args__ = (UniqueConstraint("user_id", "entry_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"))
    entry_id: Mapped[int] = mapped_column(
        ForeignKey("faq_entry.id", ondelete="CASCADE"), index=True
    )
    helpful: Mapped[bool]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

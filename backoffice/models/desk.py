"""The desk's per-person state of a ticket: when each staff member last opened it
(the lists' unread mark) and, later, who is viewing or typing (presence)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .base import utcnow

if TYPE_CHECKING:
    from .user import User


class TicketViewer(db.Model):
    """One staff member's relation to one ticket's desk; one row per (ticket, user).

    Kept apart from `ticket` so opening a desk never bumps the ticket's version
    (which would turn every colleague's next action into a conflict)."""

    __tablename__ = "ticket_viewer"

    # The primary key serves the lists' lookup of (ticket, its assignee).
    ticket_id: Mapped[int] = mapped_column(
        ForeignKey("ticket.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("user.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    opened_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Presence (domain/presence.py): the desk's poll says "still here", and "typing"
    # while the reply box changed lately.
    seen_at: Mapped[datetime | None]
    typing_at: Mapped[datetime | None]

    # Who: presence reads the name with the desk's ticket (domain.presence.viewing).
    user: Mapped[User] = relationship(viewonly=True, lazy="raise_on_sql")

"""Figures computed ahead of the page that shows them (issue 16 item 6)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db


class DashboardSnapshot(db.Model):
    """One set of dashboard figures (`key`) as JSON, and when it was computed.

    Written by `carebox dashboard refresh` (or by the first view that finds it stale,
    views/dashboard_snapshot.py); every view reads it in one primary-key lookup."""

    __tablename__ = "dashboard_snapshot"

    key: Mapped[str] = mapped_column(String(32), primary_key=True)
    computed_at: Mapped[datetime]
    payload: Mapped[str] = mapped_column(Text)

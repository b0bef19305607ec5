"""The master dashboard's 30-day figures, computed ahead of the page (issue 16 item 6).

`master_data` reads 30 days of tickets (a grouped pass and two medians over
ix_ticket_created_cover: ~80,000 index entries at the design size, hundreds of
milliseconds). Here it runs once per MAX_AGE, not once per view: `refresh` stores its
result as one JSON row, `carebox dashboard refresh --loop` keeps that row fresh, and
a view reads it by primary key. Without a worker (a development server, the tests)
the first view that finds the row missing, older than MAX_AGE, or of another local
day computes it and stores it for the next ones, so the figures are never older
than MAX_AGE either way. The figures are those `master_data` gives at `computed_at`
(a test compares them); the page says when that was.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from ..extensions import db
from ..models import DashboardSnapshot
from ..models.base import utcnow
from ..replica import derived_write, heavy_reads
from .sqlhelpers import local_today

KEY = "master"
MAX_AGE = timedelta(minutes=5)
REFRESH_EVERY = 60.0  # seconds between two refreshes of the worker


def refresh(now: datetime | None = None) -> dict:
    """Compute the figures now (from the replica, when there is one) and store them."""
    from .dashboard import master_data

    now = now or utcnow()
    with heavy_reads():
        data = master_data(local_today())
    data["computed_at"] = now.isoformat()
    payload = json.dumps(data)
    with derived_write():
        stored = db.session.execute(
            update(DashboardSnapshot)
            .where(DashboardSnapshot.key == KEY)
            .values(computed_at=now, payload=payload)
            .execution_options(synchronize_session=False)
        )
        if not stored.rowcount:
            try:
                with db.session.begin_nested():
                    db.session.add(DashboardSnapshot(key=KEY, computed_at=now, payload=payload))
            except IntegrityError:
                pass  # another process stored its own at the same moment: as good as ours
    return data


def current(now: datetime | None = None) -> dict:
    """The stored figures, refreshed first when missing, stale or of another local day
    (the caller commits when they were refreshed: `data["refreshed"]`)."""
    now = now or utcnow()
    row = db.session.get(DashboardSnapshot, KEY)
    if row is not None and row.computed_at > now - MAX_AGE:
        data = json.loads(row.payload)
        if data.get("today") == local_today().isoformat():
            return {**data, "refreshed": False}
    return {**refresh(now), "refreshed": True}

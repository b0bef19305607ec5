"""Heavy reads on a MariaDB replica (`DATABASE_REPLICA_URL`); everything else on the primary.

The one way in is `heavy_reads()` (and `stream()` for a generator that outlives the view,
such as a CSV download): report exports and the summary, the dashboard's charts, the
customer export, and every later report of that weight read inside it, with the usual
`db.session`. Guarantees:

- Without `DATABASE_REPLICA_URL` nothing changes: every statement runs on the primary.
- Only SELECTs inside `heavy_reads()` can reach the replica. A flush, and every statement
  after the current request wrote anything, runs on the primary.
- Read-your-writes: after each request that wrote, the primary's GTID position is kept in
  the user's session; a user whose last write the replica has not applied yet reads
  from the primary.
- A replica that cannot be reached, does not answer within `CAREBOX_REPLICA_TIMEOUT`
  seconds, is not a replicating server, or is more than `CAREBOX_REPLICA_MAX_LAG` seconds
  behind is not used: the read runs on the primary and `carebox.replica` logs why. Never
  an error page for it. A replica found unreachable is not asked again for
  `CAREBOX_REPLICA_RETRY_SECONDS`, so an outage costs one timeout, not one per request.
- Lag is the replica's `Seconds_Behind_Master`. When that is NULL (the SQL thread
  stopped, replication broken, the primary unreachable from the replica) the lag is how
  long this process has seen the replica stuck at one GTID position while the primary
  is past it; a replica at the primary's position is never late.
- Connections to the replica are read-only sessions: a write sent there by mistake fails.

A streamed export that the replica drops part-way is cut (the client sees a broken
download, not a complete-looking file); it is not resumed on the primary.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import sqlalchemy as sa
from flask import current_app, g, has_app_context, has_request_context, session
from flask_sqlalchemy.session import Session as FlaskSession
from sqlalchemy.pool import NullPool

log = logging.getLogger("carebox.replica")

SESSION_KEY = "_db_pos"  # the primary's GTID position after this user's last write


def _setting(name: str) -> float:
    return float(current_app.config[name])


# --- GTID positions -------------------------------------------------------------------


def parse_gtid(text: str | None) -> dict[int, int]:
    """'0-1-120,1-2-7' -> {domain: sequence}. (Server ids do not order anything.)"""
    out: dict[int, int] = {}
    for part in (text or "").replace("\n", "").split(","):
        part = part.strip()
        if part:
            domain, _server, seq = part.split("-")
            out[int(domain)] = max(out.get(int(domain), 0), int(seq))
    return out


def reached(position: dict[int, int], wanted: dict[int, int]) -> bool:
    """True when `position` includes every transaction of `wanted`."""
    return all(position.get(domain, -1) >= seq for domain, seq in wanted.items())


# --- the replica's state ---------------------------------------------------------------


@dataclass
class Replica:
    """Per app and process: the replica's engines and what was last learnt about it."""

    url: str
    engine: sa.Engine
    probe: sa.Engine  # its own short-timeout connection for the health check
    lock: threading.Lock = field(default_factory=threading.Lock)
    down_until: float = 0.0
    stuck_at: str | None = None  # a GTID position the replica was seen stuck at ...
    stuck_since: float = 0.0  # ... since this moment (monotonic)


def _engines(url: str, timeout: float) -> tuple[sa.Engine, sa.Engine]:
    read_only = "SET SESSION TRANSACTION READ ONLY"
    engine = sa.create_engine(
        url,
        pool_pre_ping=True,
        pool_recycle=280,
        connect_args={"connect_timeout": timeout, "init_command": read_only},
    )
    probe = sa.create_engine(
        url,
        poolclass=NullPool,
        connect_args={
            "connect_timeout": timeout,
            "read_timeout": timeout,
            "write_timeout": timeout,
        },
    )
    return engine, probe


def replica() -> Replica | None:
    """This app's replica, or None when DATABASE_REPLICA_URL is not set."""
    url = current_app.config.get("DATABASE_REPLICA_URL")
    if not url:
        return None
    state = current_app.extensions.get("carebox_replica")
    if state is None or state.url != url:
        engine, probe = _engines(url, _setting("CAREBOX_REPLICA_TIMEOUT"))
        state = current_app.extensions["carebox_replica"] = Replica(url, engine, probe)
    return state


def _primary_position_text() -> str:
    from .extensions import db

    if db.engine.dialect.name != "mysql":
        return ""
    with db.engine.connect() as conn:
        return conn.exec_driver_sql("SELECT @@gtid_binlog_pos").scalar() or ""


def _primary_position() -> dict[int, int]:
    return parse_gtid(_primary_position_text())


def check(state: Replica) -> tuple[str | None, dict[int, int]]:
    """(why the replica must not be used now, or None; the position it has applied)."""
    now = time.monotonic()
    if now < state.down_until:
        return "unreachable a moment ago", {}
    try:
        with state.probe.connect() as conn:
            status = conn.exec_driver_sql("SHOW SLAVE STATUS").mappings().first()
            # What it has applied (SHOW SLAVE STATUS only has what it received).
            position = conn.exec_driver_sql("SELECT @@gtid_slave_pos").scalar() or ""
            if status is None:
                wsrep = dict(
                    conn.exec_driver_sql(
                        "SHOW GLOBAL STATUS WHERE Variable_name IN "
                        "('wsrep_local_state', 'wsrep_ready')"
                    ).all()
                )
    except sa.exc.DBAPIError as exc:
        with state.lock:
            state.down_until = now + _setting("CAREBOX_REPLICA_RETRY_SECONDS")
        return f"cannot be reached ({exc.orig!r})", {}
    if status is None:
        # A Galera node (another node of the cluster) is as fresh as a node can be once
        # synced; anything else is not a replica at all.
        if wsrep.get("wsrep_local_state") == "4" and wsrep.get("wsrep_ready") == "ON":
            return None, {}
        return "is not replicating from anything (SHOW SLAVE STATUS is empty)", {}
    applied = parse_gtid(position)
    limit = _setting("CAREBOX_REPLICA_MAX_LAG")
    behind = status.get("Seconds_Behind_Master")
    if behind is not None:
        with state.lock:
            state.stuck_at = None
        if behind > limit:
            return f"is {behind} s behind the primary (limit {limit:g} s)", applied
        return None, applied
    # No figure from the server: how long has it been stuck at this position while the
    # primary is past it?
    if reached(applied, _primary_position()):
        with state.lock:
            state.stuck_at = None
        return None, applied
    with state.lock:
        if state.stuck_at != position:
            state.stuck_at, state.stuck_since = position, now
        stuck = now - state.stuck_since
    if stuck > limit:
        threads = (
            f"IO thread {status.get('Slave_IO_Running')}, "
            f"SQL thread {status.get('Slave_SQL_Running')}"
        )
        error = status.get("Last_SQL_Error") or status.get("Last_IO_Error") or ""
        return (
            f"has applied nothing for {stuck:.0f} s while the primary moved on "
            f"(limit {limit:g} s; {threads}{'; ' + error if error else ''})",
            applied,
        )
    return None, applied


def read_engine() -> sa.Engine | None:
    """The engine heavy reads of this request use: the replica's, or None (the primary).
    Decided once per request and logged when the replica is passed over."""
    if has_request_context() and "carebox_read_engine" in g:
        return g.carebox_read_engine
    state = replica()
    engine = None
    if state is not None:
        why, applied = check(state)
        wanted = parse_gtid(session.get(SESSION_KEY)) if has_request_context() else {}
        if why is not None:
            log.warning("replica %s: heavy reads go to the primary", why)
        elif g.get("carebox_wrote"):
            log.info("this request wrote: its heavy reads go to the primary")
        elif wanted and not reached(applied, wanted):
            log.info("the replica has not applied this user's last write yet: reading the primary")
        else:
            engine = state.engine
    if has_request_context():
        g.carebox_read_engine = engine
    return engine


# --- routing -----------------------------------------------------------------------------


class RoutingSession(FlaskSession):
    """Flask-SQLAlchemy's session, sending the SELECTs of `heavy_reads()` to the replica."""

    def get_bind(self, mapper=None, clause=None, bind=None, **kwargs):
        if (
            bind is None
            and clause is not None
            and not self._flushing
            and has_app_context()
            and g.get("carebox_heavy")
            and not g.get("carebox_wrote")
            and isinstance(clause, sa.Select | sa.CompoundSelect)
        ):
            engine = g.get("carebox_heavy_engine")
            if engine is not None:
                return engine
        return super().get_bind(mapper=mapper, clause=clause, bind=bind, **kwargs)


@contextmanager
def heavy_reads():
    """Run the enclosed SELECTs on the replica when one is configured, fresh enough, and
    holding this user's last write; on the primary otherwise (see the module's text)."""
    outer = g.get("carebox_heavy"), g.get("carebox_heavy_engine")
    g.carebox_heavy, g.carebox_heavy_engine = True, read_engine()
    try:
        yield
    finally:
        g.carebox_heavy, g.carebox_heavy_engine = outer


@contextmanager
def derived_write():
    """Writes of figures derived from what is stored (the dashboard's snapshot) are no
    write of the user's: they do not send the user's later heavy reads to the primary
    (read-your-writes is for what a user changed and expects to see)."""
    before = g.get("carebox_wrote")
    try:
        yield
    finally:
        g.carebox_wrote = before


def stream(rows: Iterable) -> Iterator:
    """`rows`, produced inside `heavy_reads()`: for a streamed response's generator."""
    with heavy_reads():
        yield from rows


# --- recording a user's writes -------------------------------------------------------


@sa.event.listens_for(RoutingSession, "after_flush")
def _after_flush(session, flush_context):
    if has_app_context():
        g.carebox_wrote = True


def _remember_position(response):
    """After a request that wrote, keep the primary's position in the user's session."""
    if g.get("carebox_wrote") and replica() is not None:
        try:
            position = _primary_position_text()
        except sa.exc.DBAPIError:
            log.warning("could not read the primary's GTID position", exc_info=True)
            return response
        if position:
            session[SESSION_KEY] = position
    return response


def init_app(app) -> None:
    app.after_request(_remember_position)

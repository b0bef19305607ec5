"""What a request costs the database beyond its own statements (issue 16 item 4).

SQLAlchemy's defaults send two round trips per request that carry no work: the pool's
pre-ping before the first statement (`pool_pre_ping`) and a second ROLLBACK when the
connection goes back to the pool, right after the Session's own (the pool's
reset-on-return does not know the Session has just ended the transaction). On a poll
that reads two rows they were two fifths of its round trips. Here instead:

- **A ping only after idleness.** A connection that went back to the pool less than
  PING_AFTER_IDLE seconds ago is handed out as it is; an older one is pinged first and,
  if dead (a restarted server, a failover, a closed idle connection), replaced by a new
  one (the pool's documented "pessimistic" recipe: DisconnectionError in `checkout`).
  A server that dies within that second still costs no more than one request a
  connection: its first statement fails as "unreachable" (503 with Retry-After,
  web._handle_database_error), and SQLAlchemy then discards the whole pool.
- **One reset.** The pool rolls back a returned connection unless SQLAlchemy's
  Connection itself committed or rolled back last (no statement since, no write the
  driver still holds open); `pool_reset_on_return` is off, and the `reset` event below
  decides. Anything else — a raw driver cursor, an error, a connection given up — is
  rolled back as before.
"""

from __future__ import annotations

import contextlib
import time

from flask import Flask
from sqlalchemy import event, exc, make_url
from sqlalchemy.engine import Engine

PING_AFTER_IDLE = 1.0  # seconds a returned connection is trusted without a ping
_IDLE_SINCE = "carebox_idle_since"
_ENDED = "carebox_transaction_ended"


def _driver_in_write_transaction(dbapi_connection) -> bool:
    """Whether the driver knows of an open transaction with writes (PyMySQL's server
    status, sqlite3's flag). Neither sees a read-only snapshot: that is what _ENDED is for."""
    if hasattr(dbapi_connection, "in_transaction"):  # sqlite3
        return bool(dbapi_connection.in_transaction)
    status = getattr(dbapi_connection, "server_status", None)
    if status is None:
        return True  # unknown driver: always reset
    return bool(status & 1)  # SERVER_STATUS_IN_TRANS


def _ended(conn) -> None:
    # An invalidated connection (the server went away) is discarded, not reset; reading
    # `conn.connection` would raise instead of the rollback SQLAlchemy is finishing.
    if not conn.invalidated:
        conn.connection.info[_ENDED] = True


def _began(conn) -> None:
    if not conn.invalidated:
        conn.connection.info[_ENDED] = False


def _failed(context) -> None:
    # No connection (it failed to open) or an invalidated one: nothing to mark.
    with contextlib.suppress(AttributeError, exc.SQLAlchemyError):
        context.connection.connection.info[_ENDED] = False


def _checkin(dbapi_connection, record) -> None:
    record.info[_IDLE_SINCE] = time.monotonic()


def _reset(dbapi_connection, record, reset_state) -> None:
    if reset_state.terminate_only:
        return
    ended = record.info.get(_ENDED) or reset_state.transaction_was_reset
    if ended and not _driver_in_write_transaction(dbapi_connection):
        return
    dbapi_connection.rollback()


def watch(engine: Engine) -> None:
    """Give `engine`'s pool the idle ping and the single reset (created with
    `pool_reset_on_return=None`, without `pool_pre_ping`)."""
    if event.contains(engine, "reset", _reset):
        return
    event.listen(engine, "begin", _began)
    event.listen(engine, "commit", _ended)
    event.listen(engine, "rollback", _ended)
    event.listen(engine, "handle_error", _failed)
    event.listen(engine, "reset", _reset)
    event.listen(engine, "checkin", _checkin)
    ping = engine.dialect.name != "sqlite"  # a file needs no ping
    dialect = engine.dialect

    @event.listens_for(engine, "checkout")
    def checkout(dbapi_connection, record, proxy) -> None:
        record.info[_ENDED] = False  # reset it unless SQLAlchemy ends its transaction
        idle_since = record.info.get(_IDLE_SINCE)
        if not ping or idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE:
            return  # just connected, or in use a moment ago
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as error:  # noqa: BLE001 (any failure: a new connection instead)
            raise exc.DisconnectionError(f"an idle connection is dead: {error}") from error


def engine_options(options: dict) -> dict:
    """SQLALCHEMY_ENGINE_OPTIONS as `watch` needs them: its ping instead of the pool's,
    its reset instead of reset-on-return."""
    options = dict(options)
    options.pop("pool_pre_ping", None)
    options.setdefault("pool_reset_on_return", None)
    return options


def init_app(app: Flask) -> None:
    """Before `db.init_app`: adjust the engine options and, on MariaDB, add the idle
    polls' engine (`idle_polls.read`); after it, `watch_engines`."""
    from .idle_polls import BIND

    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = engine_options(
        app.config.get("SQLALCHEMY_ENGINE_OPTIONS") or {}
    )
    url = make_url(app.config["SQLALCHEMY_DATABASE_URI"])
    binds = app.config.setdefault("SQLALCHEMY_BINDS", {})
    if url.get_backend_name() == "mysql" and BIND not in binds:
        # The same database, connections in autocommit: a read there ends with no
        # transaction open, and SQLAlchemy skips the ROLLBACK it would send on close.
        # Its own pool (connections a worker's threads poll on, besides the main ones).
        binds[BIND] = {
            **app.config["SQLALCHEMY_ENGINE_OPTIONS"],  # binds get none of them otherwise
            "url": url,
            "isolation_level": "AUTOCOMMIT",
            "skip_autocommit_rollback": True,
        }


def watch_engines(app: Flask) -> None:
    from .extensions import db
    from .idle_polls import BIND

    # Flask-SQLAlchemy gives every bind key a MetaData in `db.metadatas`, one dict for
    # every app of the process. The idle polls' bind holds no table; left there, a later
    # app without that bind (SQLite) failed in `db.create_all()`, asking for its engine.
    db.metadatas.pop(BIND, None)
    with app.app_context():
        for engine in db.engines.values():
            watch(engine)

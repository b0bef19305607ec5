"""The pool's round trips around a request (backoffice/connections.py): one ROLLBACK
where SQLAlchemy's default sent two, no ping for a connection used a moment ago, a dead
idle connection replaced without an error, and work SQLAlchemy did not end rolled back
when the connection goes back to the pool."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from backoffice import connections
from backoffice.domain import permissions as perm


def mariadb_only(db):
    if db.engine.dialect.name != "mysql":
        pytest.skip("PyMySQL's round trips")


@pytest.fixture
def driver_calls(monkeypatch):
    """The ping and ROLLBACK calls the app's connections send to the server (PyMySQL's
    own methods, wrapped: the server answers them as always)."""
    import pymysql.connections

    calls = []
    for name in ("ping", "rollback"):
        real = getattr(pymysql.connections.Connection, name)

        def spy(self, *args, _real=real, _name=name, **kwargs):
            calls.append(_name)
            return _real(self, *args, **kwargs)

        monkeypatch.setattr(pymysql.connections.Connection, name, spy)
    return calls


def test_a_request_ends_its_transaction_once_and_pings_nothing(db, login_as, make, driver_calls):
    mariadb_only(db)
    b, me = login_as(perm.CUSTOMER, locale="en")
    number = make.ticket("team", customer=me).number
    db.session.commit()
    page = f"/tickets/{number}"
    assert b.get(page).status_code == 200
    db.session.remove()  # as after every request in production: the connection goes back
    driver_calls.clear()
    assert b.get(page).status_code == 200
    db.session.remove()  # the request's end (the tests' app context outlives requests)
    assert driver_calls == ["rollback"]  # SQLAlchemy's default: ping, rollback, rollback


def test_an_idle_poll_sends_no_rollback_at_all(db, login_as, make, driver_calls):
    """Its one read runs in autocommit (backoffice/idle_polls.py): no transaction to end."""
    mariadb_only(db)
    b, me = login_as(perm.CUSTOMER, locale="en")
    number = make.ticket("team", customer=me).number
    db.session.commit()
    poll = f"/tickets/{number}/messages"
    etag = b.get(poll).headers["ETag"]
    db.session.remove()
    assert b.get(poll, headers={"If-None-Match": etag}).status_code == 304  # warm pools
    db.session.remove()
    driver_calls.clear()
    resp = b.get(poll, headers={"If-None-Match": etag})
    db.session.remove()
    assert resp.status_code == 304
    assert driver_calls == []


def test_a_connection_idle_and_dead_is_replaced_without_an_error(db, monkeypatch):
    mariadb_only(db)
    # An empty pool, so the one connection made below is the only idle one (the pool is
    # FIFO: with a second idle connection, `other` would get that one instead).
    db.session.remove()
    db.engine.dispose()
    with db.engine.connect() as conn:
        dead = conn.exec_driver_sql("SELECT CONNECTION_ID()").scalar()
    with db.engine.connect() as other:  # the pool's only idle connection is `dead`'s...
        assert other.exec_driver_sql("SELECT CONNECTION_ID()").scalar() == dead
    with sa.create_engine(db.engine.url).connect() as killer:  # ...which the server drops
        killer.exec_driver_sql(f"KILL {int(dead)}")
    monkeypatch.setattr(connections, "PING_AFTER_IDLE", 0.0)
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT CONNECTION_ID()").scalar() != dead


@pytest.fixture
def probe(db):
    """The app's engine with no session holding a connection, and an empty table."""
    db.session.remove()
    engine = db.engine
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE pool_probe (id INTEGER PRIMARY KEY)")
    yield engine
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE pool_probe")


def test_a_write_sqlalchemy_did_not_end_is_rolled_back_on_return(probe):
    with probe.connect() as conn:
        conn.exec_driver_sql("SELECT 1")
        conn.commit()  # SQLAlchemy ended its transaction...
        # ...then the driver writes on its own: only the driver knows.
        conn.connection.dbapi_connection.cursor().execute("INSERT INTO pool_probe (id) VALUES (1)")
    with probe.connect() as conn:
        assert conn.exec_driver_sql("SELECT COUNT(*) FROM pool_probe").scalar() == 0


def test_a_read_snapshot_does_not_outlive_the_request(probe):
    """REPEATABLE READ on MariaDB: a connection handed back inside its read's transaction
    would show the next request the database as it was."""
    with probe.connect() as conn:
        conn.exec_driver_sql("SELECT COUNT(*) FROM pool_probe").scalar()
        conn.connection.dbapi_connection.cursor().execute("SELECT COUNT(*) FROM pool_probe")
    with sa.create_engine(probe.url).begin() as other:
        other.exec_driver_sql("INSERT INTO pool_probe (id) VALUES (1)")
    with probe.connect() as conn:
        assert conn.exec_driver_sql("SELECT COUNT(*) FROM pool_probe").scalar() == 1


def test_public_tracking_is_one_statement_without_a_transaction(db, client, make, driver_calls):
    """The tracking page reads on the autocommit engine (connections.init_app): its one
    statement and no ROLLBACK after it (the default pool: statement, ROLLBACK)."""
    mariadb_only(db)
    resi = make.order(make.user()).resi
    db.session.commit()
    db.session.remove()
    client.get(f"/track/{resi}")  # the reader's connection made once
    driver_calls.clear()
    resp = client.get(f"/track/{resi}")
    db.session.remove()
    assert resp.status_code == 200 and resi in resp.get_data(as_text=True)
    assert driver_calls == []


def test_an_app_on_mariadb_leaves_a_later_sqlite_app_able_to_create_its_tables(tmp_path):
    """The idle polls' bind (MariaDB only) must not reach another app of the process:
    Flask-SQLAlchemy keeps one MetaData per bind key for all of them, and `create_all` of
    a SQLite app created after a MariaDB one asked for the missing bind's engine (found
    by CI's SQLite run: the deploy tests' databases could not be made)."""
    from backoffice import create_app
    from backoffice.extensions import db as _db

    create_app(
        {"ENV_NAME": "testing", "SQLALCHEMY_DATABASE_URI": "mysql+pymysql://u@127.0.0.1:1/none"}
    )  # nothing connects at creation
    url = f"sqlite:///{tmp_path / 'later.db'}"
    app = create_app({"ENV_NAME": "testing", "SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        _db.create_all()
        assert "ticket" in sa.inspect(_db.engine).get_table_names()
        _db.engine.dispose()

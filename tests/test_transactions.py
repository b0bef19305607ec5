"""Galera-safety on one server: primary keys, error 1213 named and retried, the 409 page
(backoffice/transactions.py). The three-node cluster itself is tests/test_galera.py."""

from __future__ import annotations

import threading

import pymysql
import pytest
import sqlalchemy as sa
from flask import Flask, current_app

from backoffice import create_app, transactions
from backoffice.extensions import db as _db
from backoffice.transactions import CertificationConflict, is_conflict, retrying


def test_every_table_has_a_primary_key(db):
    """Galera replicates row events by primary key: a table without one is refused
    (or, with wsrep_certify_nonPK, certified on a made-up key). Both the models and the
    tables the database really has (SQLite, or TEST_DATABASE_URL's MariaDB) are checked."""
    without = [t.name for t in db.metadata.sorted_tables if not t.primary_key.columns]
    assert without == []
    inspector = sa.inspect(db.engine)
    tables = inspector.get_table_names()
    assert set(db.metadata.tables) <= set(tables)
    assert [t for t in tables if not inspector.get_pk_constraint(t)["constrained_columns"]] == []


def _deadlock_code() -> pymysql.err.OperationalError:
    return pymysql.err.OperationalError(
        1213, "Deadlock found when trying to get lock; try restarting transaction"
    )


def test_a_1213_is_told_apart_from_other_database_errors():
    conflict = CertificationConflict("COMMIT", None, _deadlock_code())
    assert is_conflict(conflict)
    assert isinstance(conflict, sa.exc.OperationalError)  # `except DBAPIError` still catches it
    assert is_conflict(sa.exc.OperationalError("COMMIT", None, _deadlock_code()))
    gone = sa.exc.OperationalError("SELECT 1", None, pymysql.err.OperationalError(2013, "Lost"))
    assert not is_conflict(gone)
    assert not is_conflict(ValueError(1213))


def _two_rows(db) -> tuple[int, int]:
    ids = db.session.scalars(sa.text("SELECT id FROM department ORDER BY id LIMIT 2")).all()
    assert len(ids) == 2
    return ids[0], ids[1]


def test_a_real_deadlock_is_a_certification_conflict_and_retried(db):
    """Two transactions lock two rows in opposite orders on the CI's MariaDB: InnoDB kills
    one with 1213, exactly what a Galera node answers the loser of a certification race.
    The engine event names it CertificationConflict, and `retrying` runs the loser again
    from the start, which then succeeds: both transactions end committed."""
    if db.engine.dialect.name != "mysql":
        pytest.skip("SQLite has one writer at a time: it never deadlocks")
    first, second = _two_rows(db)
    db.session.commit()
    both_hold_one = threading.Barrier(2, timeout=30)
    attempts = {"a": 0, "b": 0}
    raised: list[BaseException] = []
    before = transactions.counts.snapshot()
    app = current_app._get_current_object()
    touch = sa.text("UPDATE department SET code = code WHERE id = :i")  # takes the row lock

    def worker(name: str, rows: tuple[int, int]):
        def work():
            attempts[name] += 1
            try:
                with _db.engine.begin() as conn:
                    conn.execute(touch, {"i": rows[0]})
                    if attempts[name] == 1:
                        both_hold_one.wait()
                    conn.execute(touch, {"i": rows[1]})
            except sa.exc.DBAPIError as exc:
                raised.append(exc)
                raise

        with app.app_context():
            retrying(work, commit=False, what=f"deadlock test {name}")

    threads = [
        threading.Thread(target=worker, args=("a", (first, second))),
        threading.Thread(target=worker, args=("b", (second, first))),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads)
    assert len(raised) == 1 and isinstance(raised[0], CertificationConflict)
    assert sorted(attempts.values()) == [1, 2]
    after = transactions.counts.snapshot()
    assert after["retried"] == before["retried"] + 1
    assert after["conflicts"] == before["conflicts"] + 1


def test_retrying_gives_up_after_its_attempts_and_leaves_other_errors_alone(db):
    calls = []

    def always_conflicts():
        calls.append(1)
        raise CertificationConflict("COMMIT", None, _deadlock_code())

    with pytest.raises(CertificationConflict):
        retrying(always_conflicts, attempts=3)
    assert len(calls) == 3

    calls.clear()

    def broken():
        calls.append(1)
        raise sa.exc.OperationalError("SELECT 1", None, pymysql.err.OperationalError(2013, "x"))

    with pytest.raises(sa.exc.OperationalError):
        retrying(broken)
    assert len(calls) == 1  # only a conflict is repeated


@pytest.fixture
def conflict_app(database_url, tmp_path) -> Flask:
    """A production-like app (no test exception propagation) with a route that meets a
    conflict nobody handles."""
    app = create_app(
        {
            "ENV_NAME": "testing",
            "TESTING": False,
            "SQLALCHEMY_DATABASE_URI": database_url,
            "UPLOAD_FOLDER": str(tmp_path),
        }
    )

    @app.route("/conflict-probe")
    def conflict_probe():
        raise CertificationConflict("COMMIT", None, _deadlock_code())

    yield app
    with app.app_context():
        _db.engine.dispose()


@pytest.mark.parametrize(
    ("lang", "text"),
    [("en", "Someone else changed this at the same moment"), ("id", "Orang lain mengubah")],
)
def test_an_unhandled_conflict_is_a_409_page_not_a_500(conflict_app, lang, text):
    client = conflict_app.test_client()
    client.set_cookie("lang", lang)
    resp = client.get("/conflict-probe", headers={"Accept-Language": lang})
    assert resp.status_code == 409
    assert text in resp.get_data(as_text=True)
    resp = client.get("/conflict-probe", headers={"Accept": "application/json"})
    assert resp.status_code == 409 and resp.json["error"]

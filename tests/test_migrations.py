"""Alembic builds the schema from empty, matches the models, and goes back down."""

from __future__ import annotations

import os
import uuid

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade

from backoffice import create_app
from backoffice.extensions import db


@pytest.fixture
def empty_database_url(tmp_path):
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        yield f"sqlite:///{tmp_path / 'migrate.db'}"
        return
    base = sa.engine.make_url(url)
    name = f"carebox_mig_{uuid.uuid4().hex[:8]}"
    server = sa.create_engine(base)
    with server.begin() as conn:
        conn.execute(sa.text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
    yield base.set(database=name).render_as_string(hide_password=False)
    with server.begin() as conn:
        conn.execute(sa.text(f"DROP DATABASE `{name}`"))
    server.dispose()


def _diff_ignoring_noise(diffs, dialect: str):
    """Drop what is not a real difference: type spellings that differ by backend (MySQL
    reports BOOL as TINYINT), and MySQL-only FULLTEXT indexes on other databases."""

    def noise(d):
        if isinstance(d, list) and d and d[0][0] == "modify_type":
            return True
        return (
            isinstance(d, tuple)
            and d[0] == "add_index"
            and dialect != "mysql"
            and d[1].dialect_options["mysql"]["prefix"] == "FULLTEXT"
        )

    return [d for d in diffs if not noise(d)]


def test_upgrade_from_empty_matches_the_models_and_downgrades(empty_database_url):
    app = create_app({"ENV_NAME": "testing", "SQLALCHEMY_DATABASE_URI": empty_database_url})
    with app.app_context():
        upgrade()
        with db.engine.connect() as conn:
            diffs = compare_metadata(MigrationContext.configure(conn), db.metadata)
            tables = set(sa.inspect(conn).get_table_names())
        assert _diff_ignoring_noise(diffs, db.engine.dialect.name) == []
        assert {"ticket", "ticket_message", "ticket_event", "user", "role"} <= tables
        if db.engine.dialect.name == "mysql":
            with db.engine.connect() as conn:
                charset = conn.execute(
                    sa.text(
                        "SELECT CCSA.character_set_name FROM information_schema.TABLES T "
                        "JOIN information_schema.COLLATION_CHARACTER_SET_APPLICABILITY CCSA "
                        "ON CCSA.collation_name = T.table_collation "
                        "WHERE T.table_schema = DATABASE() AND T.table_name = 'ticket_message'"
                    )
                ).scalar()
            assert charset == "utf8mb4"
        downgrade(revision="base")
        with db.engine.connect() as conn:
            assert set(sa.inspect(conn).get_table_names()) <= {"alembic_version"}
        db.engine.dispose()


def test_next_due_at_is_backfilled(empty_database_url):
    """Tickets that exist before 0004 get the due time that matters now."""
    app = create_app({"ENV_NAME": "testing", "SQLALCHEMY_DATABASE_URI": empty_database_url})
    with app.app_context():
        upgrade(revision="0003")
        now = "2026-03-02 10:00:00"
        with db.engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO department (id, code, name_id, name_en, active)"
                    " VALUES (1, 'OPS', 'Ops', 'Ops', 1)"
                )
            )
            conn.execute(
                sa.text(
                    "INSERT INTO user (id, email, active, fs_uniquifier, name, locale,"
                    " marketing_consent, created_at, update_datetime)"
                    " VALUES (1, 'c@example.com', 1, 'u1', 'C', 'id', 0, :now, :now)"
                ),
                {"now": now},
            )
            rows = [  # id, status, first_response_at, finished_at
                (1, "progress", None, None),
                (2, "team", None, None),
                (3, "team", "2026-03-02 11:00:00", None),
                (4, "responded", "2026-03-02 11:00:00", None),
                (5, "finished", "2026-03-02 11:00:00", "2026-03-03 09:00:00"),
            ]
            for tid, status, answered, finished in rows:
                conn.execute(
                    sa.text(
                        "INSERT INTO ticket (id, kind, status, priority, subject, customer_id,"
                        " department_id, created_at, updated_at, last_message_at,"
                        " first_response_due, resolution_due, first_response_at, finished_at,"
                        " reopen_count, version_id) VALUES (:id, 'question', :status, 'normal',"
                        " 's', 1, 1, :now, :now, :now, '2026-03-02 18:00:00',"
                        " '2026-03-05 10:00:00', :answered, :finished, 0, 1)"
                    ),
                    {
                        "id": tid,
                        "status": status,
                        "now": now,
                        "answered": answered,
                        "finished": finished,
                    },
                )
        upgrade(revision="0004_next_due")
        with db.engine.connect() as conn:
            got = dict(conn.execute(sa.text("SELECT id, next_due_at FROM ticket")).all())
        first, resolution = "2026-03-02 18:00:00", "2026-03-05 10:00:00"
        assert {k: v and str(v)[:19] for k, v in got.items()} == {
            1: first,
            2: first,
            3: resolution,
            4: None,
            5: None,
        }
        downgrade(revision="base")
        db.engine.dispose()


def test_orders_placed_before_resi_existed_get_one(empty_database_url):
    """Upgrading a database with orders gives each a distinct, check-digit-valid resi."""
    from backoffice.domain.shipments import is_valid_resi

    app = create_app({"ENV_NAME": "testing", "SQLALCHEMY_DATABASE_URI": empty_database_url})
    with app.app_context():
        upgrade(revision="0003")
        with db.engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO user (id, email, active, fs_uniquifier, name, locale, "
                    "marketing_consent, created_at, update_datetime) VALUES "
                    "(1, 'a@example.com', 1, 'u1', 'A', 'id', 0, '2026-01-01', '2026-01-01')"
                )
            )
            conn.execute(
                sa.text(
                    "INSERT INTO product (id, code, kind, name_id, name_en, description_id, "
                    "description_en, base_price, price_per_kg, min_weight_kg, max_weight_kg, "
                    "eta_days, badge, badge_note_id, badge_note_en, position, active) VALUES "
                    "(1, 'REG', 'service', 'Reg', 'Reg', '', '', 0, 0, 1, 30, '2-3', 'none', "
                    "'', '', 1, 1)"
                )
            )
            for n in range(1, 6):
                conn.execute(
                    sa.text(
                        "INSERT INTO customer_order (id, number, customer_id, product_id, origin, "
                        "destination, weight_kg, receiver_name, receiver_phone, notes, status, "
                        "price, created_at, updated_at) VALUES (:n, :num, 1, 1, 'Jakarta', "
                        "'Bandung', 1, '', '', '', 'placed', 1, '2026-01-01', '2026-01-01')"
                    ),
                    {"n": n, "num": f"ORD-2026-00000{n}"},
                )
        upgrade()
        with db.engine.connect() as conn:
            resis = [r for (r,) in conn.execute(sa.text("SELECT resi FROM customer_order"))]
        assert len(resis) == 5 and len(set(resis)) == 5
        assert all(is_valid_resi(r) for r in resis)
        downgrade(revision="base")
        db.engine.dispose()


def test_order_status_history_becomes_tracking_events(empty_database_url):
    """0008: the status changes made before tracking events existed become events, and
    the order knows its latest one."""
    app = create_app({"ENV_NAME": "testing", "SQLALCHEMY_DATABASE_URI": empty_database_url})
    with app.app_context():
        upgrade(revision="0007_channels")
        with db.engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO user (id, email, active, fs_uniquifier, name, locale, "
                    "marketing_consent, created_at, update_datetime, contact_only) VALUES "
                    "(1, 'a@example.com', 1, 'u1', 'A', 'id', 0, '2026-01-01', '2026-01-01', 0)"
                )
            )
            conn.execute(
                sa.text(
                    "INSERT INTO product (id, code, kind, name_id, name_en, description_id, "
                    "description_en, base_price, price_per_kg, min_weight_kg, max_weight_kg, "
                    "eta_days, badge, badge_note_id, badge_note_en, position, active) VALUES "
                    "(1, 'REG', 'service', 'Reg', 'Reg', '', '', 0, 0, 1, 30, '2-3', 'none', "
                    "'', '', 1, 1)"
                )
            )
            conn.execute(
                sa.text(
                    "INSERT INTO customer_order (id, number, resi, customer_id, product_id, "
                    "origin, destination, weight_kg, receiver_name, receiver_phone, notes, "
                    "status, price, created_at, updated_at) VALUES (1, 'ORD-1', "
                    "'CB123456785ID', 1, 1, 'Jl. Rahasia 1', 'Bandung', 1, '', '', '', "
                    "'in_transit', 1, '2026-01-01', '2026-01-01')"
                )
            )
            for eid, to, at in (
                (1, "placed", "2026-01-01 08:00:00"),
                (2, "picked_up", "2026-01-01 10:00:00"),
                (3, "in_transit", "2026-01-02 09:00:00"),
            ):
                conn.execute(
                    sa.text(
                        "INSERT INTO order_event (id, order_id, actor_id, from_status, "
                        "to_status, note, created_at) VALUES (:id, 1, 1, NULL, :to, '', :at)"
                    ),
                    {"id": eid, "to": to, "at": at},
                )
        upgrade(revision="0008_tracking")
        with db.engine.connect() as conn:
            events = conn.execute(
                sa.text(
                    "SELECT event, occurred_at, location, source FROM tracking_event "
                    "ORDER BY occurred_at"
                )
            ).all()
            order = conn.execute(
                sa.text("SELECT last_event, last_event_at FROM customer_order")
            ).one()
        assert [(e[0], str(e[1])[:19], e[2], e[3]) for e in events] == [
            ("picked_up", "2026-01-01 10:00:00", "", "migration"),
            ("departed_hub", "2026-01-02 09:00:00", "", "migration"),
        ]
        assert order[0] == "departed_hub" and str(order[1])[:19] == "2026-01-02 09:00:00"
        downgrade(revision="base")
        db.engine.dispose()


def test_orders_cancelled_before_0037_get_their_cancelled_event(empty_database_url):
    """0037: an order cancelled before cancellations were events gets its `cancelled`
    event at the time of its cancellation, and it is the order's latest event."""
    app = create_app({"ENV_NAME": "testing", "SQLALCHEMY_DATABASE_URI": empty_database_url})
    with app.app_context():
        upgrade(revision="0007_channels")
        with db.engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO user (id, email, active, fs_uniquifier, name, locale, "
                    "marketing_consent, created_at, update_datetime, contact_only) VALUES "
                    "(1, 'a@example.com', 1, 'u1', 'A', 'id', 0, '2026-01-01', '2026-01-01', 0)"
                )
            )
            conn.execute(
                sa.text(
                    "INSERT INTO product (id, code, kind, name_id, name_en, description_id, "
                    "description_en, base_price, price_per_kg, min_weight_kg, max_weight_kg, "
                    "eta_days, badge, badge_note_id, badge_note_en, position, active) VALUES "
                    "(1, 'REG', 'service', 'Reg', 'Reg', '', '', 0, 0, 1, 30, '2-3', 'none', "
                    "'', '', 1, 1)"
                )
            )
            for oid, resi, status in (
                (1, "CB123456785ID", "cancelled"),
                (2, "CB123456784ID", "placed"),
            ):
                conn.execute(
                    sa.text(
                        "INSERT INTO customer_order (id, number, resi, customer_id, product_id, "
                        "origin, destination, weight_kg, receiver_name, receiver_phone, notes, "
                        "status, price, created_at, updated_at) VALUES (:id, :num, :resi, 1, "
                        "1, 'Jakarta', 'Bandung', 1, '', '', '', :status, 1, '2026-01-01', "
                        "'2026-01-03')"
                    ),
                    {"id": oid, "num": f"ORD-{oid}", "resi": resi, "status": status},
                )
            for eid, to, at in (
                (1, "placed", "2026-01-01 08:00:00"),
                (2, "picked_up", "2026-01-01 10:00:00"),
                (3, "cancelled", "2026-01-02 09:00:00"),
            ):
                conn.execute(
                    sa.text(
                        "INSERT INTO order_event (id, order_id, actor_id, from_status, "
                        "to_status, note, created_at) VALUES (:id, 1, 1, NULL, :to, '', :at)"
                    ),
                    {"id": eid, "to": to, "at": at},
                )
        upgrade(revision="0037_order_cancelled_event")
        with db.engine.connect() as conn:
            events = conn.execute(
                sa.text(
                    "SELECT order_id, event, occurred_at, source, actor_id FROM tracking_event "
                    "ORDER BY occurred_at"
                )
            ).all()
            orders = conn.execute(
                sa.text("SELECT last_event, last_event_at FROM customer_order ORDER BY id")
            ).all()
        assert [(e[0], e[1], str(e[2])[:19], e[3], e[4]) for e in events] == [
            (1, "picked_up", "2026-01-01 10:00:00", "migration", 1),
            (1, "cancelled", "2026-01-02 09:00:00", "migration", 1),
        ]
        assert orders[0][0] == "cancelled" and str(orders[0][1])[:19] == "2026-01-02 09:00:00"
        assert orders[1][0] is None
        downgrade(revision="0036_outbox_templates")
        with db.engine.connect() as conn:
            left = conn.execute(sa.text("SELECT event FROM tracking_event")).scalars().all()
            last = conn.execute(sa.text("SELECT last_event FROM customer_order WHERE id = 1"))
            assert left == ["picked_up"] and last.scalar() == "picked_up"
        downgrade(revision="base")
        db.engine.dispose()


def test_migrations_form_one_numbered_chain():
    """Engineers land migrations in parallel: each must follow main's head, renumbered
    (no second head, no merge revision), so the history reads in file order."""
    from pathlib import Path

    from alembic.config import Config
    from alembic.script import ScriptDirectory

    versions = Path(__file__).resolve().parent.parent / "migrations"
    config = Config()
    config.set_main_option("script_location", str(versions))
    script = ScriptDirectory.from_config(config)
    assert len(script.get_heads()) == 1
    chain = list(reversed(list(script.walk_revisions())))
    assert all(isinstance(r.down_revision, str | None) for r in chain)
    numbers = [int(r.revision[:4]) for r in chain]
    assert numbers == list(range(1, len(chain) + 1))


def test_two_upgrades_at_once_take_turns(empty_database_url):
    """Two `carebox db upgrade`s of one MariaDB database at once (two hosts of a deploy
    starting together) both end well, and the schema is built once: migrations/env.py
    holds a named lock for the run. Without it both read the same version and ran the
    same steps, and one failed on a table the other had just created."""
    if not empty_database_url.startswith("mysql"):
        pytest.skip("MariaDB only: SQLite lets one writer in at a time by itself")
    import subprocess
    import sys
    from pathlib import Path

    carebox = Path(sys.executable).parent / "carebox"
    env = {**os.environ, "DATABASE_URL": empty_database_url, "CAREBOX_ENV": "development"}
    runs = [
        subprocess.Popen(  # noqa: S603 (our own CLI)
            [str(carebox), "db", "upgrade"], env=env, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    results = [(run.wait(300), run.stderr.read()) for run in runs]
    for run in runs:
        run.stderr.close()
    assert [code for code, _ in results] == [0, 0], [err[-2000:] for _, err in results]
    app = create_app({"ENV_NAME": "testing", "SQLALCHEMY_DATABASE_URI": empty_database_url})
    with app.app_context():
        with db.engine.connect() as conn:
            versions = conn.execute(sa.text("SELECT version_num FROM alembic_version")).all()
            diffs = compare_metadata(MigrationContext.configure(conn), db.metadata)
        assert _diff_ignoring_noise(diffs, "mysql") == []
        from alembic.config import Config
        from alembic.script import ScriptDirectory

        config = Config()
        config.set_main_option(
            "script_location", str(Path(__file__).resolve().parent.parent / "migrations")
        )
        assert [v[0] for v in versions] == [ScriptDirectory.from_config(config).get_current_head()]
        db.engine.dispose()

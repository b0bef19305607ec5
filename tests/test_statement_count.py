"""The bench-only statement count header: present when asked for, absent otherwise."""

from __future__ import annotations

from backoffice import create_app
from backoffice.extensions import db as _db
from backoffice.statement_count import HEADER


def test_the_header_counts_statements_only_when_enabled(app, db, database_url, tmp_path):
    plain = app.test_client().get("/faq")
    assert plain.status_code == 200 and HEADER not in plain.headers

    counting = create_app(
        {
            "ENV_NAME": "testing",
            "SQLALCHEMY_DATABASE_URI": database_url,
            "UPLOAD_FOLDER": str(tmp_path),
            "COUNT_STATEMENTS": True,
        }
    )
    try:
        with counting.app_context():
            client = counting.test_client()
            faq = client.get("/faq")
            home = client.get("/track")
            assert faq.status_code == 200 and int(faq.headers[HEADER]) >= 1
            assert home.status_code == 200 and int(home.headers[HEADER]) >= 0
    finally:
        with counting.app_context():
            _db.engine.dispose()
    # The app without the setting still says nothing.
    assert HEADER not in app.test_client().get("/faq").headers

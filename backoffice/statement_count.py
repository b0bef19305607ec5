"""Bench-only: how many SQL statements a request ran, in the `X-Carebox-Statements`
response header (bench/bench_1m.py prints it beside each operation's timings).

Off unless the environment sets CAREBOX_COUNT_STATEMENTS=1 (or the config
COUNT_STATEMENTS): a production server neither counts nor says anything. Counted with
SQLAlchemy's `before_cursor_execute` event on every engine of the process, per request
(`flask.g`, so threads of one worker do not mix); statements run while a streamed body
is sent are not in the header (it has left by then).
"""

from __future__ import annotations

import os

from flask import Flask, g, has_request_context
from sqlalchemy import event
from sqlalchemy.engine import Engine

HEADER = "X-Carebox-Statements"
_listening = False


def enabled(app: Flask) -> bool:
    return bool(app.config.get("COUNT_STATEMENTS")) or os.environ.get(
        "CAREBOX_COUNT_STATEMENTS"
    ) in ("1", "true", "yes")


def _count(conn, cursor, statement, parameters, context, executemany) -> None:
    if has_request_context():
        g._carebox_statements = g.get("_carebox_statements", 0) + 1


def init_app(app: Flask) -> None:
    global _listening
    if not enabled(app):
        return
    if not _listening:
        event.listen(Engine, "before_cursor_execute", _count)
        _listening = True

    @app.after_request
    def _say(response):
        response.headers[HEADER] = str(g.get("_carebox_statements", 0))
        return response

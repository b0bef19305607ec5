"""How `carebox seed-bulk` writes rows: the fastest way the database allows, one batch at
a time, memory flat.

- **Generated rows** (customers, orders, tickets: the ones with random parts) come as
  tuples. On MySQL/MariaDB they are streamed into a tab-separated temporary file and
  loaded with `LOAD DATA LOCAL INFILE` (the server parses them; no per-value escaping in
  Python, which was half of the loader's time in the profile). When the server or the
  driver refuses local files, the loader says so once and falls back to Core
  `executemany` (one multi-row INSERT per chunk), as it does on SQLite.
- **Derived rows** (roles, order events, tracking events, messages, ticket events: the
  bulk of the volume, 14 of 17 million rows at 1M tickets) are written by the database
  itself with `INSERT … SELECT` over the batch of parents just loaded, so they cost what
  the engine's own copy costs.

Columns the loader leaves out take their model default (a scalar Python default becomes
a literal in the statement); a new non-null column without a default stops the loader
with its name instead of loading rows the app would choke on.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Sequence

import click
from sqlalchemy import String, cast, func, insert, literal, literal_column, select, text
from sqlalchemy.exc import DBAPIError

# Server or client refusing LOAD DATA LOCAL: "command not allowed" (1148; MariaDB 10.5+
# says 4166), MySQL 8 "local files disabled" (3948), mysqlclient's "rejected" (2068).
LOCAL_REFUSED = (1148, 4166, 3948, 2068)
CHUNK = 5000  # rows per executemany on the fallback path


class Writer:
    """Writes rows on `conn` (one connection, one transaction per batch)."""

    def __init__(self, conn):
        self.conn = conn
        self.mysql = conn.dialect.name == "mysql"
        self.local = self.mysql and self._local_allowed()

    def _local_allowed(self) -> bool:
        """Whether LOAD DATA LOCAL works here: an empty file into a temporary table."""
        self.conn.execute(text("CREATE TEMPORARY TABLE carebox_bulk_probe (x INT)"))
        fd, path = tempfile.mkstemp(prefix="carebox-bulk-", suffix=".tsv")
        os.close(fd)
        try:
            self.conn.execute(
                text("LOAD DATA LOCAL INFILE :path INTO TABLE carebox_bulk_probe"), {"path": path}
            )
            return True
        except DBAPIError as exc:
            if getattr(exc.orig, "args", [None])[0] not in LOCAL_REFUSED:
                raise
            self.conn.rollback()
            click.echo(
                "seed-bulk: the server refuses LOAD DATA LOCAL INFILE (local_infile=OFF);"
                " loading with multi-row INSERTs instead (slower).",
                err=True,
            )
            return False
        finally:
            os.unlink(path)
            self.conn.execute(text("DROP TEMPORARY TABLE IF EXISTS carebox_bulk_probe"))

    # -- derived rows -------------------------------------------------------------------

    def plus(self, column, seconds):
        """DATETIME arithmetic both engines run: TIMESTAMPADD on MySQL; on SQLite the text
        format SQLAlchemy stores (`YYYY-MM-DD HH:MM:SS.ffffff`, so equality with values
        bound from Python holds; the loader's times have whole seconds)."""
        if self.mysql:
            return func.timestampadd(literal_column("SECOND"), seconds, column)
        step = literal("+").concat(cast(seconds, String)).concat(" seconds")
        return func.strftime("%Y-%m-%d %H:%M:%f000", column, step)

    def insert_select(self, table, values: dict, source, *where) -> int:
        """INSERT INTO table (columns of `values`) SELECT their expressions FROM source."""
        values = {**_defaults(table, values), **values}
        cols = list(values)
        exprs = [v if hasattr(v, "self_group") else literal(v) for v in values.values()]
        stmt = insert(table).from_select(cols, select(*exprs).select_from(source).where(*where))
        return self.conn.execute(stmt).rowcount

    # -- generated rows -----------------------------------------------------------------

    def load(self, table, columns: Sequence[str], rows: Iterable[tuple]) -> int:
        """Write `rows` (tuples in the order of `columns`: ints, str, datetimes, Decimals,
        None) into `table`; returns how many. Values are the loader's own (no tab, newline
        or backslash in any text), so the file needs no escaping."""
        if self.local:
            return self._load_data(table, columns, rows)
        return self._executemany(table, columns, rows)

    def _load_data(self, table, columns, rows) -> int:
        fd, path = tempfile.mkstemp(prefix="carebox-bulk-", suffix=".tsv")
        n = 0
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="\n", buffering=1 << 20) as out:
                write = out.write
                for row in rows:
                    write("\t".join(["\\N" if v is None else str(v) for v in row]))
                    write("\n")
                    n += 1
            extra = _defaults(table, dict.fromkeys(columns))
            sets = ""
            if extra:
                dialect = self.conn.dialect
                sets = " SET " + ", ".join(
                    f"`{name}` = "
                    + str(
                        literal(value).compile(
                            dialect=dialect, compile_kwargs={"literal_binds": True}
                        )
                    )
                    for name, value in extra.items()
                )
            self.conn.execute(
                text(
                    f"LOAD DATA LOCAL INFILE :path INTO TABLE `{table.name}` CHARACTER SET utf8mb4"
                    " FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' ("
                    + ", ".join(f"`{c}`" for c in columns)
                    + ")"
                    + sets
                ),
                {"path": path},
            )
        finally:
            os.unlink(path)
        return n

    def _executemany(self, table, columns, rows) -> int:
        n = 0
        chunk: list[dict] = []
        for row in rows:
            chunk.append(dict(zip(columns, row, strict=True)))
            if len(chunk) >= CHUNK:
                self.conn.execute(table.insert(), chunk)
                n += len(chunk)
                chunk = []
        if chunk:
            self.conn.execute(table.insert(), chunk)
            n += len(chunk)
        return n


def _defaults(table, given: dict) -> dict:
    """Literal values for the columns of `table` not in `given` that need one: a scalar
    Python default. A non-null column with no default at all stops the loader."""
    out = {}
    for col in table.columns:
        if col.name in given or col.server_default is not None or col.autoincrement is True:
            continue
        if col.primary_key and col.autoincrement == "auto":
            continue
        default = col.default
        if default is not None and default.is_scalar:
            out[col.name] = getattr(default.arg, "value", default.arg)
        elif default is not None:
            raise click.ClickException(
                f"seed-bulk does not fill {table.name}.{col.name} (a computed default)."
            )
        elif not col.nullable:
            raise click.ClickException(f"seed-bulk does not fill {table.name}.{col.name}.")
    return out

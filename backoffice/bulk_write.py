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


PENDING = "carebox_bulk_indexes"


class DeferredIndexes:
    """MySQL: the secondary indexes of tables that are empty when a load starts are
    dropped, and built again when it ends with one ALTER TABLE per table.

    Why: InnoDB builds an index on existing rows by sorting them, while a load with the
    indexes in place inserts every row into every index at a random place; once the
    indexes outgrow the buffer pool (the ticket table has fourteen) that is where a
    million-ticket load spends its time. Only empty tables: rebuilding the index of a
    table that already holds the data would cost more than it saves.

    A load killed half-way must not leave the schema without its indexes: each table's
    ALTER TABLE is stored in `carebox_bulk_indexes` before its indexes are dropped, and
    `restore` (run at the start of every seed-bulk, and at the end of this one) builds
    whatever is still pending. The data's own uniqueness is checked by the rebuild (a
    duplicate fails the unique index's ALTER TABLE, and the load with it).
    """

    def __init__(self, conn):
        self.conn = conn
        self.tables: list[str] = []

    def restore(self) -> list[str]:
        """Build the indexes a previous load left pending; the tables it rebuilt."""
        conn = self.conn
        if not conn.execute(text(f"SHOW TABLES LIKE '{PENDING}'")).first():
            return []
        done = []
        for name, ddl in conn.execute(text(f"SELECT table_name, ddl FROM {PENDING}")).all():
            conn.execute(text(ddl))
            conn.execute(text(f"DELETE FROM {PENDING} WHERE table_name = :t"), {"t": name})
            conn.commit()
            done.append(name)
        conn.execute(text(f"DROP TABLE {PENDING}"))
        conn.commit()
        return done

    def defer(self, tables) -> list[str]:
        """Drop the secondary indexes of those of `tables` that hold no row (a foreign
        key's own index too: this connection checks no foreign key while it loads)."""
        conn = self.conn
        conn.execute(text("SET SESSION foreign_key_checks = 0"))
        conn.execute(
            text(
                f"CREATE TABLE IF NOT EXISTS {PENDING} (table_name VARCHAR(64) PRIMARY KEY,"
                " ddl TEXT NOT NULL)"
            )
        )
        for table in tables:
            if conn.execute(text(f"SELECT 1 FROM `{table}` LIMIT 1")).first():
                continue
            adds, drops = _index_clauses(conn, table)
            if not adds:
                continue
            conn.execute(
                text(f"INSERT INTO {PENDING} (table_name, ddl) VALUES (:t, :d)"),
                {"t": table, "d": f"ALTER TABLE `{table}` " + ", ".join(adds)},
            )
            conn.commit()
            conn.execute(text(f"ALTER TABLE `{table}` " + ", ".join(drops)))
            self.tables.append(table)
        conn.commit()
        return self.tables


def _index_clauses(conn, table: str) -> tuple[list[str], list[str]]:
    """(ADD …, DROP …) clauses for the secondary indexes of `table`, as the server has
    them (names, uniqueness, column order, prefixes, direction, FULLTEXT)."""
    rows = conn.execute(
        text(
            "SELECT index_name, non_unique, column_name, sub_part, collation, index_type"
            " FROM information_schema.statistics WHERE table_schema = DATABASE()"
            " AND table_name = :t AND index_name <> 'PRIMARY'"
            " ORDER BY index_name, seq_in_index"
        ),
        {"t": table},
    ).all()
    indexes: dict[str, dict] = {}
    for name, non_unique, column, sub_part, collation, kind in rows:
        entry = indexes.setdefault(name, {"unique": not non_unique, "kind": kind, "cols": []})
        col = f"`{column}`" + (f"({int(sub_part)})" if sub_part else "")
        entry["cols"].append(col + (" DESC" if collation == "D" else ""))
    adds, drops = [], []
    for name, entry in indexes.items():
        what = (
            "FULLTEXT INDEX"
            if entry["kind"] == "FULLTEXT"
            else ("UNIQUE INDEX" if entry["unique"] else "INDEX")
        )
        adds.append(f"ADD {what} `{name}` ({', '.join(entry['cols'])})")
        drops.append(f"DROP INDEX `{name}`")
    return adds, drops

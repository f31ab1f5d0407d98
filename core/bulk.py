"""Set-based writes shared by every app: importers, the synthetic shop, scores, alerts.

PostgreSQL gets ``COPY ... FROM STDIN`` through psycopg, the fastest way in; other
databases (the SQLite default) get one ``executemany``. Callers hand over plain Python
values (``None`` for NULL) in the column order they name, and own the transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
from django.db import OperationalError, connection, transaction
from django.db.models import Model
from psycopg.copy import QueuedLibpqWriter

log = logging.getLogger(__name__)

_SQLITE_BATCH = 50_000
_FRAME_CHUNK = 200_000
# Re-validating a foreign key reads the whole table at about a tenth of the cost per row
# of the per-row check, so it pays once a load adds a tenth of the table's size.
_BULK_CHECK_SHARE = 0.1
_BULK_CHECK_MIN_ROWS = 10_000  # below this the per-row checks take well under 0.1 s
# How long a bulk load waits for the exclusive locks before it settles for per-row checks.
_BULK_CHECK_LOCK_WAIT = "2s"
_LOCK_NOT_AVAILABLE, _DEADLOCK = "55P03", "40P01"


def is_postgres() -> bool:
    return connection.vendor == "postgresql"


def copy_rows(model: type[Model], columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    """Write rows into ``model``'s table; returns how many were written.

    ``columns`` are database column names (``customer_id``, not ``customer``).
    """
    if not is_postgres():
        return _insert_rows(model._meta.db_table, columns, rows)
    table = connection.ops.quote_name(model._meta.db_table)
    cols = ", ".join(connection.ops.quote_name(c) for c in columns)
    written = 0
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(f"COPY {table} ({cols}) FROM STDIN") as copy,
    ):
        for row in rows:
            copy.write_row(row)
            written += 1
    return written


def _insert_rows(table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    table = connection.ops.quote_name(table)
    cols = ", ".join(connection.ops.quote_name(c) for c in columns)
    written = 0
    with connection.cursor() as cursor:
        sql = f"INSERT INTO {table} ({cols}) VALUES ({', '.join(['%s'] * len(columns))})"
        batch: list[Sequence[Any]] = []
        for row in rows:
            batch.append(row)
            if len(batch) >= _SQLITE_BATCH:
                cursor.executemany(sql, batch)
                written += len(batch)
                batch = []
        if batch:
            cursor.executemany(sql, batch)
            written += len(batch)
    return written


def copy_frame(model: type[Model], frame: pd.DataFrame) -> int:
    """Write a column-wise frame (columns named by database column) into ``model``'s table.

    The vectorised twin of :func:`copy_rows` for generators and importers that hold
    millions of rows as numpy columns: on PostgreSQL the frame is rendered to CSV in
    chunks and streamed through COPY, avoiding a Python call per row. NaN/None become
    NULL; empty strings stay empty strings.
    """
    return copy_frame_into(model._meta.db_table, frame)


def copy_frame_into(table: str, frame: pd.DataFrame) -> int:
    """:func:`copy_frame` for a table without a model (importers' staging tables).

    Arrow renders the CSV: 1M score rows took pandas' ``to_csv`` 5.9 s and Arrow under
    1 s, outside the GIL, so with a queued writer (a thread of psycopg's) rendering the
    next chunk overlaps PostgreSQL parsing the last one. Arrow quotes every string and
    leaves NULL unquoted and empty, which is how CSV COPY tells "" from NULL.
    """
    if frame.empty:
        return 0
    if not is_postgres():
        columns = [_python_values(column) for _, column in frame.items()]
        return _insert_rows(table, list(frame.columns), zip(*columns, strict=True))
    table = connection.ops.quote_name(table)
    cols = ", ".join(connection.ops.quote_name(c) for c in frame.columns)
    sql = f"COPY {table} ({cols}) FROM STDIN WITH (FORMAT csv)"
    with connection.cursor() as cursor:
        writer = QueuedLibpqWriter(cursor.cursor)
        with cursor.cursor.copy(sql, writer=writer) as copy:
            for start in range(0, len(frame), _FRAME_CHUNK):
                copy.write(_csv(frame.iloc[start : start + _FRAME_CHUNK]))
    return len(frame)


def _csv(frame: pd.DataFrame) -> bytes:
    table = pa.Table.from_pandas(frame, preserve_index=False)
    for i, column in enumerate(table.columns):
        if pa.types.is_timestamp(column.type):
            # Naive UTC microseconds (Django's connections run in UTC): Arrow formats a
            # time-zone-aware value 40x slower (1.7 s per 547k), and PostgreSQL keeps
            # microseconds, so nine digits would only be rounded on the way in.
            utc = pa.timestamp("us")
            table = table.set_column(i, table.field(i).name, column.cast(utc, safe=False))
    out = pa.BufferOutputStream()
    pa_csv.write_csv(table, out, pa_csv.WriteOptions(include_header=False))
    return out.getvalue().to_pybytes()


def _python_values(column: pd.Series) -> list[Any]:
    """One column as plain Python values, which is all sqlite3 knows how to bind."""
    if pd.api.types.is_datetime64_any_dtype(column):
        return [None if pd.isna(ts) else ts.to_pydatetime() for ts in column]
    return column.astype(object).where(column.notna(), None).tolist()


def reserve_ids(model: type[Model], count: int) -> list[int]:
    """Reserve ``count`` primary keys so parents and children can be written in one pass
    without reading the generated ids back.

    On PostgreSQL the values come from the table's own sequence, so they never collide with
    concurrent inserts (they may have gaps). Elsewhere (SQLite) writers are serialised by
    the database lock, so ``max(id) + 1`` onwards is safe inside the caller's transaction.
    """
    if count <= 0:
        return []
    with connection.cursor() as cursor:
        if is_postgres():
            cursor.execute(
                f"SELECT {next_id_sql(model)} FROM generate_series(1, %s)",
                [count],
            )
            return [row[0] for row in cursor.fetchall()]
        table = connection.ops.quote_name(model._meta.db_table)
        pk = connection.ops.quote_name(model._meta.pk.column)
        cursor.execute(f"SELECT COALESCE(MAX({pk}), 0) FROM {table}")
        (last,) = cursor.fetchone()
        return list(range(last + 1, last + 1 + count))


def next_id_sql(model: type[Model]) -> str:
    """PostgreSQL: ``nextval`` of the table's id sequence, named as a constant. Looking the
    sequence up per row (``pg_get_serial_sequence`` inside ``nextval``) made a million ids
    take 3.5 s instead of 0.35 s."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_get_serial_sequence(%s, %s)",
            [connection.ops.quote_name(model._meta.db_table), model._meta.pk.column],
        )
        (sequence,) = cursor.fetchone()
    return f"nextval('{sequence}'::regclass)"


def analyze(*models: type[Model]) -> None:
    """Refresh the planner's statistics after a bulk load (of these models, or all tables).

    Without them PostgreSQL plans the next queries for empty tables and can pick nested
    loops that take minutes instead of a hash join that takes milliseconds.
    """
    tables = ", ".join(connection.ops.quote_name(m._meta.db_table) for m in models)
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {tables}" if is_postgres() else "ANALYZE")


def check_deferred_constraints() -> None:
    """Run now the foreign-key checks Django defers to commit: a violation then surfaces
    at the write that caused it, and a caller timing its writes counts them (seconds for
    a million rows)."""
    if is_postgres():
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


@contextmanager
def foreign_keys_checked_in_bulk(
    *models: type[Model], rows: int, rebuild_indexes: bool = False
) -> Iterator[bool]:
    """Check the foreign keys of rows a bulk load writes into ``models`` with one join
    per constraint instead of one trigger call per row; with ``rebuild_indexes`` also
    build their secondary indexes once at the end instead of row by row.

    PostgreSQL checks a foreign key with a trigger per inserted row: about 5.5 us each on
    this machine, longer than the insert itself (1M rows: insert 3.4 s, checks 5.5 s,
    re-validating the constraint 0.5 s). The manual's bulk-load advice ("Populating a
    Database") is to drop the constraints and indexes, load, and re-create them, which
    validates a foreign key in one anti-join and builds an index in one sort. Re-creating
    reads the whole table, so a table's are dropped only when the load adds ``rows`` rows
    (an estimate will do: it only picks the cheaper way) and that is a tenth of what the
    table holds; smaller loads keep the per-row work. Indexes are only rebuilt on request:
    a load relying on a unique index (ON CONFLICT) must keep it.

    Everything is re-created with its own name and definition inside the caller's
    transaction, so a violation still aborts it and nothing unchecked is committed;
    meanwhile the tables and the tables they reference are locked against other sessions
    (ACCESS EXCLUSIVE) until that transaction ends. Those locks are only waited for
    briefly, and all or none are taken: a busy table (an agent mid-decision) means
    per-row work, never a deadlock.

    Yields whether the load goes the bulk way; if so the models' planner statistics are
    refreshed on exit, and the caller need not ANALYZE them again.
    """
    if not is_postgres() or not connection.in_atomic_block or rows < _BULK_CHECK_MIN_ROWS:
        yield False
        return
    dropped = _drop_for_bulk_load(models, rows, rebuild_indexes)
    yield bool(dropped)
    if not dropped:
        return
    with connection.cursor() as cursor:
        for kind, _drop, create in dropped:
            if kind == "index":
                cursor.execute(create)
    analyze(*models)  # the validating joins are planned from these statistics
    with connection.cursor() as cursor:
        for kind, _drop, create in dropped:
            if kind == "foreign key":
                cursor.execute(create)
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")  # Django's mode, as before


def _drop_for_bulk_load(models, rows: int, indexes: bool) -> list[tuple[str, str, str]]:
    """Drop the foreign keys (and indexes) worth re-creating; returns (kind, drop, create)
    statements, or nothing if the locks could not be had at once (then nothing was
    dropped and no lock is kept)."""
    tables = [connection.ops.quote_name(m._meta.db_table) for m in models]
    with connection.cursor() as cursor:
        cursor.execute(
            """
            WITH loaded AS (
                SELECT oid FROM pg_class
                WHERE oid = ANY(ARRAY(SELECT to_regclass(t) FROM unnest(%s::text[]) t))
                  AND %s >= %s * GREATEST(reltuples, 0)
            )
            SELECT 'foreign key', format('ALTER TABLE %%s DROP CONSTRAINT %%I',
                                         con.conrelid::regclass, con.conname),
                   format('ALTER TABLE %%s ADD CONSTRAINT %%I %%s', con.conrelid::regclass,
                          con.conname, pg_get_constraintdef(con.oid))
            FROM pg_constraint con JOIN loaded ON loaded.oid = con.conrelid
            WHERE con.contype = 'f'
            UNION ALL
            SELECT 'index',
                   CASE WHEN con.oid IS NULL
                        THEN format('DROP INDEX %%s', i.indexrelid::regclass)
                        ELSE format('ALTER TABLE %%s DROP CONSTRAINT %%I',
                                    i.indrelid::regclass, con.conname) END,
                   CASE WHEN con.oid IS NULL THEN pg_get_indexdef(i.indexrelid)
                        ELSE format('ALTER TABLE %%s ADD CONSTRAINT %%I %%s',
                                    i.indrelid::regclass, con.conname,
                                    pg_get_constraintdef(con.oid)) END
            FROM pg_index i JOIN loaded ON loaded.oid = i.indrelid
            LEFT JOIN pg_constraint con ON con.conindid = i.indexrelid
                                       AND con.conrelid = i.indrelid
            WHERE %s AND NOT i.indisprimary
              -- an index a foreign key of another table relies on stays
              AND NOT EXISTS (SELECT 1 FROM pg_constraint f
                              WHERE f.contype = 'f' AND f.conindid = i.indexrelid)
            ORDER BY 1, 2
            """,
            [tables, rows, _BULK_CHECK_SHARE, indexes],
        )
        dropped = cursor.fetchall()
        if not dropped:
            return []
        # Checks already queued in this transaction (deletes, earlier writes) must run
        # first: PostgreSQL refuses to drop a constraint with checks pending.
        check_deferred_constraints()
        cursor.execute("SELECT current_setting('lock_timeout')")
        (lock_timeout,) = cursor.fetchone()
        try:
            # A savepoint: if a lock is not granted in time, rolling back to it releases
            # the locks already taken, so no other session waits on us in a cycle.
            with transaction.atomic():
                cursor.execute(
                    "SELECT set_config('lock_timeout', %s, true)", [_BULK_CHECK_LOCK_WAIT]
                )
                for _kind, drop, _create in dropped:
                    cursor.execute(drop)
        except OperationalError as exc:
            if getattr(exc.__cause__, "sqlstate", None) not in (_LOCK_NOT_AVAILABLE, _DEADLOCK):
                raise
            log.info("tables busy, checking foreign keys row by row: %s", exc)
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")
            return []
        finally:
            cursor.execute("SELECT set_config('lock_timeout', %s, true)", [lock_timeout])
        return dropped

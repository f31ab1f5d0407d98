"""Set-based writes shared by the importers and the synthetic shop.

PostgreSQL gets ``COPY ... FROM STDIN`` through psycopg, the fastest way in; other
databases (the SQLite default) get one ``executemany``. Callers hand over plain Python
values (``None`` for NULL) in the column order they name, and own the transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from django.db import connection
from django.db.models import Model

_SQLITE_BATCH = 50_000


def is_postgres() -> bool:
    return connection.vendor == "postgresql"


def copy_rows(model: type[Model], columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    """Write rows into ``model``'s table; returns how many were written.

    ``columns`` are database column names (``customer_id``, not ``customer``).
    """
    table = connection.ops.quote_name(model._meta.db_table)
    cols = ", ".join(connection.ops.quote_name(c) for c in columns)
    written = 0
    with connection.cursor() as cursor:
        if is_postgres():
            with cursor.cursor.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
                    written += 1
            return written
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


def reserve_ids(model: type[Model], count: int) -> list[int]:
    """Reserve ``count`` primary keys so parents and children can be written in one pass
    without reading the generated ids back.

    On PostgreSQL the values come from the table's own sequence, so they never collide with
    concurrent inserts (they may have gaps). Elsewhere (SQLite) writers are serialised by
    the database lock, so ``max(id) + 1`` onwards is safe inside the caller's transaction.
    """
    if count <= 0:
        return []
    table = model._meta.db_table
    pk = model._meta.pk.column
    with connection.cursor() as cursor:
        if is_postgres():
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
                [connection.ops.quote_name(table), pk, count],
            )
            return [row[0] for row in cursor.fetchall()]
        cursor.execute(
            f"SELECT COALESCE(MAX({connection.ops.quote_name(pk)}), 0) "
            f"FROM {connection.ops.quote_name(table)}"
        )
        (last,) = cursor.fetchone()
        return list(range(last + 1, last + 1 + count))

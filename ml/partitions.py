"""Scores are stored as one PostgreSQL partition of ``ml_customerscore`` per scoring run.

A night's million scores are copied into a table of their own with no index and no
foreign key, then attached: PostgreSQL builds each index in one sort and checks each
foreign key with one anti-join, where the same rows loaded into the shared table cost
7.8 s of per-row foreign-key triggers (each locking a customer row) on top of the
index upkeep. Pruning a run is dropping its table, not a million-row DELETE that leaves
dead tuples behind. Other databases (the SQLite default) keep one plain table.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd
from django.db import connection, transaction

from core.bulk import analyze, copy_frame, copy_frame_into, is_postgres
from ml.models import CustomerScore

PARENT = CustomerScore._meta.db_table


def _partition(run_id: int) -> str:
    return f"{PARENT}_run{int(run_id)}"


def scores_write(*, run_id: int, frame: pd.DataFrame) -> int:
    """Store a run's scores (columns named by database column, ``run_id`` included),
    checked against their customers and run before this returns, with fresh planner
    statistics."""
    if not is_postgres():
        written = copy_frame(CustomerScore, frame)
        analyze(CustomerScore)
        return written
    name = _partition(run_id)
    with transaction.atomic(), connection.cursor() as cursor:
        # A table of this name can only be left over from a database flushed under it
        # (tests) or restored without its runs: nothing of a live run is in it.
        cursor.execute(f"DROP TABLE IF EXISTS {name}")
        cursor.execute(f"CREATE TABLE {name} (LIKE {PARENT} INCLUDING DEFAULTS)")
        # Lets ATTACH see that every row belongs here without reading them.
        cursor.execute(f"ALTER TABLE {name} ADD CONSTRAINT {name}_run CHECK (run_id = {run_id})")
        written = copy_frame_into(name, frame)
        cursor.execute(
            f"ALTER TABLE {PARENT} ATTACH PARTITION {name} FOR VALUES IN ({int(run_id)})"
        )
        cursor.execute(f"ALTER TABLE {name} DROP CONSTRAINT {name}_run")
        # The pipeline joins these scores next; stale statistics made that join a
        # per-customer nested loop (minutes at 1M customers).
        cursor.execute(f"ANALYZE {name}")
    return written


def scores_table(run_id: int) -> str | None:
    """The table holding this run's scores and no other run's (its partition), which a
    reader may split into ranges of blocks; None on other databases, and for a run whose
    rows went through the ORM into the default partition."""
    if not is_postgres():
        return None
    name = _partition(run_id)
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [name])
        (exists,) = cursor.fetchone()
    return name if exists else None


def scores_drop(*, run_ids: Iterable[int]) -> None:
    """Remove the scores of these runs (their partitions; rows that went through the
    ORM into the default partition are deleted by the runs' cascade)."""
    if not is_postgres():
        CustomerScore.objects.filter(run_id__in=list(run_ids)).delete()
        return
    with transaction.atomic(), connection.cursor() as cursor:
        for run_id in run_ids:
            cursor.execute(f"DROP TABLE IF EXISTS {_partition(run_id)}")

"""The core every way in shares: parse chunks, stage the good rows, check references,
merge. Files and API batches differ only in how a row is named in an error (a line
number or a record index) and in what happens when some rows are bad.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from django.utils import timezone

from core.bulk import analyze, copy_frame_into
from core.sql import roomy_queries
from customers.importing import merge
from customers.importing.fields import ParseOptions, parse_chunk


@dataclass
class Loaded:
    counts: dict[str, int]
    problems: pd.DataFrame  # row (sequence number), field, reason; one per bad cell
    rows: int


class _Rollback(Exception):
    def __init__(self, loaded: Loaded):
        self.loaded = loaded


class Rejected(Exception):
    """Nothing was written because some rows are bad and the caller wanted all or nothing."""

    def __init__(self, loaded: Loaded):
        super().__init__(f"{len(loaded.problems)} problem(s)")
        self.loaded = loaded


def _frame(rows, field: str, reason: str) -> pd.DataFrame:
    return pd.DataFrame({"row": np.asarray(rows, dtype=np.int64), "field": field, "reason": reason})


def load(
    kind: str,
    chunks: Iterable[pd.DataFrame],
    *,
    columns: dict[str, str],
    options: ParseOptions,
    keep_going: bool,
    known_problems: pd.DataFrame | None = None,
    dry_run: bool = False,
    currency: str = "EUR",
    progress: Callable[[int], None] | None = None,
) -> Loaded:
    """Stage and merge raw text chunks of ``kind`` in one transaction.

    ``columns`` maps field -> the chunk's column. Rows are numbered 0, 1, ... across
    chunks; problems refer to those numbers. With ``keep_going`` the good rows are
    merged; otherwise any problem raises :class:`Rejected` and nothing stays written.
    ``known_problems`` (row, field, reason) are rows the caller found bad before parsing.
    """
    try:
        with roomy_queries():  # one transaction; the merges sort and hash a whole file
            loaded = _stage_and_merge(
                kind, chunks, columns, options, keep_going, known_problems, currency, progress
            )
            if dry_run:
                raise _Rollback(loaded)
            return loaded
    except _Rollback as rollback:
        return rollback.loaded
    finally:
        merge.drop_staging()


def _stage_and_merge(
    kind, chunks, columns, options, keep_going, known, currency, progress
) -> Loaded:
    staging = merge.create_staging(kind)
    problems: list[pd.DataFrame] = []
    bad_orders: list[pd.Series] = []
    known = _frame([], "", "") if known is None else known
    rows = 0
    for chunk in chunks:
        parsed, errors = parse_chunk(chunk, kind=kind, columns=columns, options=options)
        position = errors["position"].to_numpy(dtype=np.int64)
        bad = np.zeros(len(chunk), dtype=bool)
        bad[position] = True
        here = known[(known["row"] >= rows) & (known["row"] < rows + len(chunk))]
        if len(here):
            bad[here["row"].to_numpy(dtype=np.int64) - rows] = True
            problems.append(here)
        if kind == "orders" and bad.any():
            bad_orders.append(parsed.loc[bad, "order_id"])
        if len(errors):
            field_of = {column: name for name, column in columns.items()}
            problems.append(
                pd.DataFrame(
                    {
                        "row": position + rows,
                        "field": errors["column"].map(field_of),
                        "reason": errors["reason"],
                    }
                )
            )
        good = parsed[~bad].copy()
        if "quantity" in good:  # NaN in bad rows made it float; the column is an integer
            good["quantity"] = good["quantity"].astype("Int64")
        good.insert(0, "line", np.flatnonzero(~bad) + rows)
        if kind in ("transactions", "events"):
            good["key"] = merge.content_key(good, kind)
        copy_frame_into(staging, good)
        rows += len(chunk)
        if progress:
            progress(len(chunk))
    for lines, field, reason in merge.reference_errors(kind):
        problems.append(_frame(lines, field, reason))
        merge.drop_lines(lines)
    if bad_orders:  # an order is stored whole or not at all
        siblings = merge.drop_orders(pd.concat(bad_orders).dropna().unique().tolist())
        problems.append(_frame(siblings, "order_id", "another line of this order is invalid"))
    if kind == "orders":
        oversized = merge.oversized_orders()
        if len(oversized):
            merge.drop_orders(oversized["order_id"].tolist())
            problems.append(
                pd.DataFrame(
                    {"row": oversized["line"].astype(np.int64), "field": "order_id",
                     "reason": oversized["reason"]}
                )
            )  # fmt: skip
    found = (
        pd.concat(problems, ignore_index=True).sort_values("row", kind="stable")
        if problems
        else _frame([], "", "")
    )
    if len(found) and not keep_going:
        raise Rejected(Loaded({}, found, rows))
    counts = merge.merge(kind, now=timezone.now(), currency=currency)
    analyze(*merge.TARGETS[kind])
    return Loaded(counts, found, rows)

"""Import a CSV file of shop data: streamed, validated per chunk, merged set-based.

The whole file is one transaction. Chunks are parsed with pandas, good rows go into a
temporary staging table (COPY on PostgreSQL), and a few INSERT ... SELECT ... ON CONFLICT
statements merge them, so a million-line file costs a handful of SQL statements rather
than a million. A file with bad rows writes nothing unless ``skip_bad_rows``; then the
bad rows go to a reject file with the reason per line.

Line numbers count the header as line 1 and assume one record per line (no line breaks
inside quoted fields).
"""

from __future__ import annotations

import csv
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from django.db import transaction
from django.utils import timezone
from tqdm import tqdm

from customers.bulk import copy_frame_into
from customers.importing import merge
from customers.importing.fields import KINDS, ParseOptions, parse_chunk

CHUNK_ROWS = 100_000
SHOWN_ERRORS = 20


@dataclass
class ImportResult:
    kind: str
    rows: int = 0
    rejected: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)  # the first SHOWN_ERRORS, in words
    error_count: int = 0
    ignored_columns: list[str] = field(default_factory=list)
    reject_file: str | None = None
    dry_run: bool = False


class ImportFailed(Exception):
    """Nothing was written; ``result.errors`` says which lines and columns, and why."""

    def __init__(self, message: str, result: ImportResult):
        super().__init__(message)
        self.result = result


class _Rollback(Exception):
    pass


def _columns(header: list[str], kind: str, mapping: dict[str, str]) -> tuple[dict, list[str]]:
    fields = KINDS[kind]
    columns, ignored = {}, []
    for column in header:
        name = mapping.get(column, column)
        if name in fields:
            columns[name] = column
        else:
            ignored.append(column)
    unknown_targets = sorted(set(mapping.values()) - set(fields))
    if unknown_targets:
        raise ValueError(
            f"--map names unknown field(s) {', '.join(unknown_targets)}; "
            f"{kind} fields are: {', '.join(fields)}"
        )
    missing = [n for n, spec in fields.items() if spec.required and n not in columns]
    if missing:
        raise ValueError(
            f"the file has no column for required field(s) {', '.join(missing)} "
            f"(columns: {', '.join(header)}); rename with --map column=field"
        )
    return columns, ignored


def import_file(
    *,
    path: str | Path,
    kind: str,
    mapping: dict[str, str] | None = None,
    delimiter: str = ",",
    date_format: str | None = None,
    skip_bad_rows: bool = False,
    reject_file: str | Path | None = None,
    dry_run: bool = False,
    currency: str = "EUR",
    progress: bool | None = None,
) -> ImportResult:
    """Import ``path`` as ``kind`` (customers, products, orders, events, transactions)."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; choose one of {', '.join(KINDS)}")
    path = Path(path)
    header = list(pd.read_csv(path, sep=delimiter, nrows=0, dtype=str).columns)
    columns, ignored = _columns(header, kind, mapping or {})
    result = ImportResult(kind=kind, ignored_columns=ignored, dry_run=dry_run)
    options = ParseOptions(date_format=date_format)
    rejects: list[pd.DataFrame] = []
    show_progress = sys.stderr.isatty() if progress is None else progress
    try:
        with transaction.atomic():
            staging = merge.create_staging(kind)
            reader = pd.read_csv(
                path,
                sep=delimiter,
                dtype=str,
                keep_default_na=False,
                chunksize=CHUNK_ROWS,
                skipinitialspace=True,
            )
            with tqdm(
                unit=" rows", disable=not show_progress, desc=f"{path.name}", file=sys.stderr
            ) as bar:
                for chunk in reader:
                    first_line = result.rows + 2
                    result.rows += len(chunk)
                    parsed, errors = parse_chunk(chunk, kind=kind, columns=columns, options=options)
                    bad = np.zeros(len(chunk), dtype=bool)
                    bad[errors["position"].to_numpy(dtype=int)] = True
                    if len(errors):
                        lines = errors["position"].to_numpy(dtype=int) + first_line
                        _record(result, lines, errors["column"], errors["reason"])
                        rejects.append(_rejected(chunk, errors, first_line))
                    good = parsed[~bad].copy()
                    good.insert(0, "line", np.flatnonzero(~bad) + first_line)
                    if kind in ("transactions", "events"):
                        good["key"] = merge.content_key(good, kind)
                    copy_frame_into(staging, good)
                    bar.update(len(chunk))
            # Checks that need the database (unknown customers, ...), set-based.
            for lines, field_name, reason in merge.reference_errors(kind):
                column = pd.Series([columns[field_name]] * len(lines))
                _record(result, lines, column, pd.Series([reason] * len(lines)))
                rejects.append(pd.DataFrame({"line": lines, "reason": column + ": " + reason}))
                merge.drop_lines(lines)
            result.rejected = len({int(x) for r in rejects for x in r["line"]})
            if result.error_count and not skip_bad_rows:
                raise ImportFailed(
                    f"{result.error_count} problem(s) in {path.name}; nothing was imported "
                    "(use --skip-bad-rows to import the good rows)",
                    result,
                )
            result.counts = merge.merge(kind, now=timezone.now(), currency=currency)
            if dry_run:
                raise _Rollback
    except _Rollback:
        pass
    finally:
        merge.drop_staging()
    if rejects and skip_bad_rows and not dry_run:
        target = (
            Path(reject_file) if reject_file else path.with_suffix(path.suffix + ".rejects.csv")
        )
        _write_rejects(target, path, rejects, delimiter)
        result.reject_file = str(target)
    return result


def _record(result: ImportResult, lines, columns: pd.Series, reasons: pd.Series) -> None:
    result.error_count += len(lines)
    room = SHOWN_ERRORS - len(result.errors)
    for line, column, reason in list(zip(lines, columns, reasons, strict=True))[: max(room, 0)]:
        result.errors.append(f"line {int(line)}, column {column!r}: {reason}")


def _rejected(chunk: pd.DataFrame, errors: pd.DataFrame, first_line: int) -> pd.DataFrame:
    reasons = (
        (errors["column"] + ": " + errors["reason"]).groupby(errors["position"]).agg("; ".join)
    )
    return pd.DataFrame(
        {"line": reasons.index.to_numpy() + first_line, "reason": reasons.to_numpy()}
    )


def _write_rejects(target: Path, source: Path, rejects: list[pd.DataFrame], delimiter: str) -> None:
    """The original rows of rejected lines, with the line number and the reason."""
    table = pd.concat(rejects).groupby("line")["reason"].agg("; ".join)
    with target.open("w", newline="") as out:
        writer = csv.writer(out, delimiter=delimiter)
        with source.open(newline="") as original:
            rows = csv.reader(original, delimiter=delimiter)
            writer.writerow([*next(rows), "line", "reason"])
            wanted = set(table.index)
            for line, row in enumerate(rows, start=2):
                if line in wanted:
                    writer.writerow([*row, line, table[line]])

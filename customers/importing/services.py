"""Import a CSV file of shop data: streamed, validated per chunk, merged set-based.

The whole file is one transaction (``customers.importing.load``): chunks are parsed with
pandas, good rows go into a temporary staging table (COPY on PostgreSQL), and a few
INSERT ... SELECT ... ON CONFLICT statements merge them, so a million-line file costs a
handful of SQL statements rather than a million. A file with bad rows writes nothing
unless ``skip_bad_rows``; then the bad rows go to a reject file with the reason per line.

Line numbers count the header as line 1 and assume one record per line (no line breaks
inside quoted fields).
"""

from __future__ import annotations

import csv
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from customers.importing.fields import KINDS, ParseOptions
from customers.importing.load import Loaded, Rejected, load

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
    chunks = pd.read_csv(
        path,
        sep=delimiter,
        dtype=str,
        keep_default_na=False,
        chunksize=CHUNK_ROWS,
        skipinitialspace=True,
    )
    show = sys.stderr.isatty() if progress is None else progress
    with tqdm(unit=" rows", disable=not show, desc=path.name, file=sys.stderr) as bar:
        try:
            loaded = load(
                kind,
                chunks,
                columns=columns,
                options=ParseOptions(date_format=date_format),
                keep_going=skip_bad_rows,
                dry_run=dry_run,
                currency=currency,
                progress=bar.update,
            )
        except Rejected as rejected:
            _describe(result, rejected.loaded, columns)
            raise ImportFailed(
                f"{result.error_count} problem(s) in {path.name}; nothing was imported "
                "(use --skip-bad-rows to import the good rows)",
                result,
            ) from None
    _describe(result, loaded, columns)
    result.counts = loaded.counts
    if len(loaded.problems) and not dry_run:
        target = Path(reject_file) if reject_file else path.with_name(path.name + ".rejects.csv")
        _write_rejects(target, path, loaded.problems, columns, delimiter)
        result.reject_file = str(target)
    return result


def _describe(result: ImportResult, loaded: Loaded, columns: dict[str, str]) -> None:
    problems = loaded.problems
    result.rows = loaded.rows
    result.error_count = len(problems)
    result.rejected = problems["row"].nunique()
    for row in problems.head(SHOWN_ERRORS).itertuples():
        column = columns.get(row.field, row.field)
        result.errors.append(f"line {row.row + 2}, column {column!r}: {row.reason}")


def _write_rejects(
    target: Path, source: Path, problems: pd.DataFrame, columns: dict[str, str], delimiter: str
) -> None:
    """The original rows of rejected lines, with the line number and the reasons."""
    named = problems["field"].map(lambda f: columns.get(f, f)) + ": " + problems["reason"]
    reasons = named.groupby(problems["row"] + 2).agg("; ".join)
    with target.open("w", newline="") as out:
        writer = csv.writer(out, delimiter=delimiter)
        with source.open(newline="") as original:
            rows = csv.reader(original, delimiter=delimiter)
            writer.writerow([*next(rows), "line", "reason"])
            for line, row in enumerate(rows, start=2):
                if line in reasons.index:
                    writer.writerow([*row, line, reasons[line]])

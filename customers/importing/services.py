"""Import a CSV file of shop data: streamed, validated per chunk, merged set-based.

The whole file is one transaction (``customers.importing.load``): chunks are parsed with
pandas, good rows go into a temporary staging table (COPY on PostgreSQL), and a few
INSERT ... SELECT ... ON CONFLICT statements merge them, so a million-line file costs a
handful of SQL statements rather than a million. A file with bad rows writes nothing
unless ``skip_bad_rows``; then the bad rows go to a reject file with the reason per line.

Before parsing, one pass over the text checks what the CSV parser would hide: bytes that
are not in the file's encoding, NUL bytes (the parser cuts a value at them), rows with
fewer fields than the header (it fills them with blanks) and a last line without a line
break, which is what a file cut off in transfer looks like. Such rows are bad rows like
any other.

Line numbers count the header as line 1 and assume one record per line (no line breaks
inside quoted fields).
"""

from __future__ import annotations

import codecs
import csv
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from customers.importing.fields import KINDS, ParseOptions
from customers.importing.load import Loaded, Rejected, load

CHUNK_ROWS = 100_000
SHOWN_ERRORS = 20
SCAN_BYTES = 1 << 22

CUT_OFF = "the file ends inside this line (no line break after it): it may be cut off"
SHORT_ROW = "has {found} fields but the header has {expected}: it may be cut off"
NUL_BYTE = "contains a NUL byte"
NOT_ENCODED = (
    "{name}, line {line}, is not {encoding} text ({reason}); "
    "give the file's encoding with --encoding, e.g. --encoding latin-1"
)


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


def _scan(path: Path, *, encoding: str, delimiter: str) -> pd.DataFrame:
    """Rows the CSV parser would silently alter: (row, column, reason), row 0 being the
    first line after the header. Raises ValueError at the first undecodable byte."""
    decoder = codecs.getincrementaldecoder(encoding)()
    found: list[tuple[int, str, str]] = []
    header: list[str] = []
    line, carry = 1, ""
    with path.open("rb") as source:
        while True:
            data = source.read(SCAN_BYTES)
            try:
                text = carry + decoder.decode(data, final=not data)
            except UnicodeDecodeError as exc:
                at = line + carry.count("\n") + data[: exc.start].count(b"\n")
                raise ValueError(
                    NOT_ENCODED.format(name=path.name, line=at, encoding=encoding, reason=exc)
                ) from None
            end = text.rfind("\n") + 1
            lines, carry = text[:end], text[end:]
            if lines and not header:
                header = next(csv.reader([lines[: lines.index("\n")]], delimiter=delimiter))
                lines, line = lines[lines.index("\n") + 1 :], 2
            found += _check_lines(lines, first=line, header=header, delimiter=delimiter)
            line += lines.count("\n")
            if not data:
                break
    if carry.strip() and header:
        found += _check_lines(carry + "\n", first=line, header=header, delimiter=delimiter)
        found.append((line, "", CUT_OFF))
    rows = pd.DataFrame(found, columns=["line", "field", "reason"])
    return pd.DataFrame({"row": rows["line"] - 2, "field": rows["field"], "reason": rows["reason"]})


def _check_lines(text: str, *, first: int, header: list[str], delimiter: str) -> list:
    """Whole lines (each ending in a line break) checked column-wise with numpy; only the
    few suspect lines are parsed."""
    if not text:
        return []
    data = np.frombuffer(text.encode(), dtype=np.uint8)
    ends = np.flatnonzero(data == ord("\n"))
    starts = np.r_[0, ends[:-1] + 1]

    def per_line(positions: np.ndarray) -> np.ndarray:
        return np.bincount(np.searchsorted(ends, positions), minlength=len(ends))

    # Delimiters between quotes are part of a value: count only those after an even
    # number of quotes (an escaped quote "" counts twice).
    quotes = np.flatnonzero(data == ord('"'))
    delimiters = np.flatnonzero(data == ord(delimiter))
    fields = per_line(delimiters[np.searchsorted(quotes, delimiters) % 2 == 0]) + 1
    # A line starting inside quotes, or leaving them open, is part of a record running
    # over several lines: its fields are left to the parser.
    whole = (np.searchsorted(quotes, starts) % 2 == 0) & (per_line(quotes) % 2 == 0)
    nul = per_line(np.flatnonzero(data == 0)) > 0
    blank = ends - starts <= 1
    suspect = np.flatnonzero(~blank & ((whole & (fields < len(header))) | nul))
    if not len(suspect):
        return []
    lines = text.split("\n")
    found = []
    for index, values in zip(
        suspect,
        csv.reader((lines[i].rstrip("\r") for i in suspect), delimiter=delimiter),
        strict=True,
    ):
        if whole[index] and len(values) < len(header):
            found.append(
                (first + index, "", SHORT_ROW.format(found=len(values), expected=len(header)))
            )
        for position, value in enumerate(values):
            if "\x00" in value:
                column = header[position] if position < len(header) else f"#{position + 1}"
                found.append((first + index, column, f"{value[:40]!r} {NUL_BYTE}"))
    return found


def import_file(
    *,
    path: str | Path,
    kind: str,
    mapping: dict[str, str] | None = None,
    delimiter: str = ",",
    encoding: str = "utf-8",
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
    if len(delimiter) != 1:
        raise ValueError(f"the delimiter must be one character, not {delimiter!r}")
    path = Path(path)
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise ValueError(f"unknown encoding {encoding!r}") from None
    header = list(pd.read_csv(path, sep=delimiter, nrows=0, dtype=str, encoding=encoding).columns)
    columns, ignored = _columns(header, kind, mapping or {})
    altered = _scan(path, encoding=encoding, delimiter=delimiter)
    result = ImportResult(kind=kind, ignored_columns=ignored, dry_run=dry_run)
    chunks = pd.read_csv(
        path,
        sep=delimiter,
        dtype=str,
        keep_default_na=False,
        chunksize=CHUNK_ROWS,
        skipinitialspace=True,
        encoding=encoding,
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
                known_problems=altered,
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
        _write_rejects(target, path, loaded.problems, columns, delimiter, encoding)
        result.reject_file = str(target)
    return result


def _describe(result: ImportResult, loaded: Loaded, columns: dict[str, str]) -> None:
    problems = loaded.problems
    result.rows = loaded.rows
    result.error_count = len(problems)
    result.rejected = problems["row"].nunique()
    for row in problems.head(SHOWN_ERRORS).itertuples():
        column = columns.get(row.field, row.field)
        where = f"line {row.row + 2}, column {column!r}" if column else f"line {row.row + 2}"
        result.errors.append(f"{where}: {row.reason}")


def _write_rejects(
    target: Path,
    source: Path,
    problems: pd.DataFrame,
    columns: dict[str, str],
    delimiter: str,
    encoding: str,
) -> None:
    """The original rows of rejected lines, with the line number and the reasons, in the
    source's encoding."""
    column = problems["field"].map(lambda f: columns.get(f, f))
    named = column.where(column == "", column + ": ") + problems["reason"]
    reasons = named.groupby(problems["row"] + 2).agg("; ".join)
    with target.open("w", newline="", encoding=encoding) as out:
        writer = csv.writer(out, delimiter=delimiter)
        with source.open(newline="", encoding=encoding) as original:
            rows = csv.reader(original, delimiter=delimiter)
            writer.writerow([*next(rows), "line", "reason"])
            for line, row in enumerate(rows, start=2):
                if line in reasons.index:
                    writer.writerow([*row, line, reasons[line]])

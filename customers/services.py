"""Bulk upserts of shop data from API batches.

A batch goes through the same loading core as a CSV file (customers.importing.load):
parsed column-wise, staged, merged with ON CONFLICT, idempotent by external id. What is
API-specific lives here: JSON shape and type checks, duplicate ids inside one batch,
nested order lines, and errors named by record index and field.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from django.conf import settings

from customers.importing.fields import KINDS, ParseOptions
from customers.importing.load import Rejected, load

# API record fields per kind, and the loader field each becomes.
ORDER_FIELDS = {
    "external_id": "order_id",
    "customer": "customer",
    "placed_at": "placed_at",
    "status": "status",
    "currency": "currency",
    "sales_channel": "sales_channel",
}
LINE_FIELDS = ("sku", "quantity", "unit_price")
KEYS = {"customers": "external_id", "products": "sku", "orders": "external_id",
        "events": "external_id"}  # fmt: skip


@dataclass
class BatchResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[dict] = field(default_factory=list)  # {"index", "field", "message"}
    stored: bool = True  # False when atomic and any record was bad

    def as_dict(self) -> dict:
        return {
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "errors": self.errors,
        }


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class _Rows:
    """Flat loader rows built from records, remembering which record and line each is."""

    def __init__(self) -> None:
        self.rows: list[dict[str, str]] = []
        self.record: list[int] = []
        self.line: list[int] = []
        self.errors: list[dict] = []

    def error(self, index: int, name: str, message: str) -> None:
        self.errors.append({"index": index, "field": name, "message": message})

    def scalar(self, index: int, name: str, value, field: str, kind: str) -> str | None:
        if isinstance(value, (list, dict)):
            self.error(index, name, f"expected a single value, got {type(value).__name__}")
            return None
        allowed = _json_types(KINDS[kind][field].parser.openapi)
        given = _JSON_TYPES.get(type(value), "")
        if value is not None and given not in allowed:
            self.error(index, name, f"expected {' or '.join(sorted(allowed))}, got {given}")
            return None
        return _text(value)


_JSON_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string"}


def _json_types(schema: dict) -> set[str]:
    """The JSON types a field's documented schema allows (an integer is also a number)."""
    types = {schema["type"]} if "type" in schema else set()
    for option in schema.get("anyOf", []):
        types |= _json_types(option)
    return types | {"integer"} if "number" in types else types


def _flatten(kind: str, records: list) -> _Rows:
    out = _Rows()
    allowed = set(ORDER_FIELDS) | {"lines"} if kind == "orders" else set(KINDS[kind])
    key = KEYS[kind]
    seen: set[str] = set()
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            out.error(index, "", "each record must be a JSON object")
            continue
        for name in sorted(set(record) - allowed):
            out.error(index, name, f"unknown field; {kind} fields are {', '.join(sorted(allowed))}")
        field = ORDER_FIELDS if kind == "orders" else {n: n for n in allowed}
        values = {
            n: out.scalar(index, n, v, field[n], kind)
            for n, v in record.items()
            if n in allowed - {"lines"}
        }
        if any(v is None for v in values.values()) or set(record) - allowed:
            continue
        # Compared as stored: the loader strips surrounding blanks from every value.
        identity = values.get(key, "").strip()
        if identity:
            if identity in seen:
                out.error(index, key, f"duplicate {key} {identity!r} in this batch")
                continue
            seen.add(identity)
        if kind != "orders":
            out.rows.append(values)
            out.record.append(index)
            out.line.append(-1)
            continue
        lines = record.get("lines")
        if not isinstance(lines, list) or not lines:
            out.error(index, "lines", "an order needs a list of at least one line")
            continue
        head = {ORDER_FIELDS[n]: v for n, v in values.items()}
        for position, line in enumerate(lines):
            if not isinstance(line, dict) or set(line) - set(LINE_FIELDS):
                out.error(index, f"lines[{position}]", f"a line has only {', '.join(LINE_FIELDS)}")
                continue
            parts = {
                n: out.scalar(index, f"lines[{position}].{n}", v, n, kind) for n, v in line.items()
            }
            if any(v is None for v in parts.values()):
                continue
            out.rows.append(head | parts)
            out.record.append(index)
            out.line.append(position)
    return out


def upsert_batch(*, kind: str, records: list, atomic: bool = False) -> BatchResult:
    """Create or update up to ``API_MAX_BATCH`` records of ``kind``; resending a batch
    changes nothing. Bad records are reported by index and field; the good ones are
    stored unless ``atomic``, in which case nothing is."""
    if kind not in KEYS:
        raise ValueError(f"unknown kind {kind!r}")
    if not isinstance(records, list):
        raise ValueError('send a JSON list of records (or {"records": [...]})')
    if len(records) > settings.API_MAX_BATCH:
        raise ValueError(f"at most {settings.API_MAX_BATCH} records per request")
    flat = _flatten(kind, records)
    result = BatchResult(errors=list(flat.errors))
    if atomic and result.errors:
        result.stored = False
        return result
    columns = list(KINDS[kind])
    frame = pd.DataFrame(flat.rows, columns=columns).fillna("")
    # Required fields are always checked, so a batch missing one everywhere is refused.
    required = {n for n, spec in KINDS[kind].items() if spec.required}
    present = {n: n for n in columns if n in required or any(n in row for row in flat.rows)}
    try:
        loaded = load(kind, [frame], columns=present, options=ParseOptions(), keep_going=not atomic)
    except Rejected as rejected:
        loaded, result.stored = rejected.loaded, False
    record = np.asarray(flat.record, dtype=np.int64)
    line = np.asarray(flat.line, dtype=np.int64)
    for problem in loaded.problems.itertuples():
        name = {"order_id": "external_id"}.get(problem.field, problem.field)
        if line[problem.row] >= 0 and problem.field in LINE_FIELDS:
            name = f"lines[{line[problem.row]}].{problem.field}"
        result.errors.append(
            {"index": int(record[problem.row]), "field": name, "message": problem.reason}
        )
    result.errors.sort(key=lambda e: e["index"])
    if result.stored:
        result.created = loaded.counts.get("created", 0)
        result.updated = loaded.counts.get("updated", 0)
        result.unchanged = loaded.counts.get("unchanged", 0)
    return result

"""The audit trail's one writer: typed actions only, one event or many rows in one write,
no other code writing rows, the table refusing untyped actions, and the migration that
typed the rows stored before."""

from __future__ import annotations

import ast
import datetime as dt
import os
from pathlib import Path

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.test.utils import CaptureQueriesContext

from retention.models import AuditEntry, Intervention
from retention.services import audit
from retention.services.audit import (
    RULE,
    SCHEDULE,
    Action,
    Actor,
    UnknownAction,
    audit_write,
)

AT = dt.datetime(2026, 7, 1, 10, 0, tzinfo=dt.UTC)
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("action", "message"),
    [
        ("forged", "audit action 'forged' is not a member of AuditEntry.Action"),
        (None, "audit action None is not a member of AuditEntry.Action"),
        ("approved", "audit action 'approved' is given as str: pass AuditEntry.Action.APPROVED"),
        (
            Intervention.State.BLOCKED,
            "audit action 'blocked' is given as Intervention.State: pass AuditEntry.Action.BLOCKED",
        ),
        (Action.LEGACY, audit.LEGACY_ACTION),
        ([Action.QUEUED, "queued"], "is given as str: pass AuditEntry.Action.QUEUED"),
    ],
    ids=["unknown text", "none", "a member's text", "another choice set", "legacy", "one row"],
)
def test_the_writer_refuses_an_action_outside_the_set_and_writes_nothing(
    admin_user, action, message
):
    rows = 2 if isinstance(action, list) else 1
    stored = AuditEntry.objects.count()
    with pytest.raises(UnknownAction) as refused:
        audit_write(
            actor=Actor.agent(admin_user, via="admin"),
            action=action,
            at=AT,
            from_state=["queued"] * rows,
        )
    assert message in str(refused.value)
    assert AuditEntry.objects.count() == stored


@pytest.fixture
def empty_audit(db):
    """Start from an empty audit table inside the test's transaction (undone after it):
    rows that shared fixtures committed earlier, such as a trained champion's promotion,
    are not what these tests wrote."""
    AuditEntry.objects.all().delete()


def test_one_event_is_one_row_holding_every_field(admin_user, empty_audit):
    written = audit_write(
        actor=Actor.agent(admin_user, via="bot", chat_id=42),
        action=Action.CHAT_LINKED,
        at=AT.astimezone(dt.timezone(dt.timedelta(hours=2))),  # the same instant in Berlin
        from_state=Intervention.State.PROPOSED,
        detail={"from": ("percent_off", "10"), "note": "by phone"},
    )
    entry = AuditEntry.objects.get()
    assert written == 1
    assert (entry.at, entry.actor, entry.actor_kind, entry.via, entry.chat_id) == (
        AT,
        admin_user,
        "agent",
        "bot",
        "42",
    )
    assert (entry.action, entry.from_state, entry.to_state) == ("chat_linked", "proposed", "")
    assert (entry.alert_id, entry.intervention_id) == (None, None)
    assert entry.detail == {"from": ["percent_off", "10"], "note": "by phone"}


def test_many_rows_take_values_per_row_and_shared_ones_in_one_write(empty_audit):
    written = audit_write(
        actor=SCHEDULE,
        action=[Action.BLOCKED, Action.QUEUED, Action.QUEUED],
        at=AT,
        from_state="approved",
        to_state=("blocked", "queued", "queued"),
        detail=[{"reason": "opted out"}, None, {"channel": "sms"}],
    )
    rows = AuditEntry.objects.order_by("id").values_list(
        "action", "from_state", "to_state", "detail", "actor_kind", "via"
    )
    assert written == 3
    assert list(rows) == [
        ("blocked", "approved", "blocked", {"reason": "opted out"}, "schedule", "task"),
        ("queued", "approved", "queued", {}, "schedule", "task"),
        ("queued", "approved", "queued", {"channel": "sms"}, "schedule", "task"),
    ]


def test_an_empty_id_list_writes_nothing(empty_audit):
    assert audit_write(actor=RULE, action=Action.PROPOSED, at=AT, intervention_id=[]) == 0
    assert not AuditEntry.objects.exists()


def test_values_per_row_of_different_lengths_are_refused(empty_audit):
    with pytest.raises(ValueError, match="audit rows: to_state has 1 values for 2 rows"):
        audit_write(
            actor=RULE, action=Action.PROPOSED, at=AT, from_state=["", ""], to_state=["proposed"]
        )
    assert not AuditEntry.objects.exists()


@pytest.mark.django_db
def test_the_table_refuses_an_action_outside_the_set():
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO retention_auditentry (at, actor_kind, via, chat_id, action,"
            " from_state, to_state, detail) VALUES (%s, 'rule', '', '', 'forged', '', '', '{}')",
            [AT],
        )


@pytest.mark.django_db
def test_the_audit_log_filters_by_the_actions_choices_without_reading_the_table(client, admin_user):
    audit_write(actor=RULE, action=[Action.PROPOSED, Action.HELD_OUT], at=AT)
    client.force_login(admin_user)
    with CaptureQueriesContext(connection) as queries:
        page = client.get("/admin/retention/auditentry/").content.decode()
    assert all(f"?action__exact={value}" in page for value in Action.values)
    assert Action.COUPON_REDEEMED.label in page  # offered though no row has it
    assert not [q for q in queries if "DISTINCT" in q["sql"] and '"action"' in q["sql"]]
    held_out = client.get("/admin/retention/auditentry/?action__exact=held_out").content.decode()
    assert "1 audit entry" in held_out


# --- Only the writer writes ---------------------------------------------------------------

_CREATING = {"create", "bulk_create", "get_or_create", "update_or_create"}
_SKIPPED = {"tests", "migrations", "node_modules", "var"}


def _writes(tree: ast.AST) -> list[int]:
    """Lines that write audit rows other than through ``audit_write``: building an
    ``AuditEntry``, creating through its manager or an ``audit`` relation, handing the
    model to a COPY/insert helper, or naming its table in SQL."""
    return [node.lineno for node in ast.walk(tree) if _is_write(node)]


def _is_write(node: ast.AST) -> bool:
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str) and "retention_auditentry" in node.value
    if not isinstance(node, ast.Call):
        return False
    *receiver, name = ast.unparse(node.func).split(".")
    creating = name in _CREATING and ("AuditEntry" in receiver or receiver[-1:] == ["audit"])
    copying = ("copy" in name or "insert" in name) and any(
        ast.unparse(arg) == "AuditEntry" for arg in node.args
    )
    return name == "AuditEntry" or creating or copying


def _sources():
    """The project's Python files, without tests, migrations and installed packages."""
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if not d.startswith((".", "_")) and d not in _SKIPPED]
        yield from (Path(folder, f) for f in files if f.endswith(".py"))


def test_audit_rows_are_written_only_by_the_writer():
    writer = Path(audit.__file__).resolve()
    scanned, offending = 0, []
    for path in _sources():
        scanned += 1
        lines = _writes(ast.parse(path.read_text(), str(path)))
        if path == writer:
            assert len(lines) == 1, lines  # its one COPY: the scan sees writes
        else:
            offending += [f"{path.relative_to(ROOT)}:{line}" for line in lines]
    assert scanned > 50
    assert offending == []


def test_the_scan_sees_each_way_of_writing_around_the_writer():
    source = """
AuditEntry.objects.bulk_create([AuditEntry(action="x")])
alert.audit.create(action="x")
copy_frame(AuditEntry, frame)
cursor.execute("INSERT INTO retention_auditentry (action) VALUES ('x')")
AuditEntry.objects.filter(action="x").count()
"""
    assert sorted(_writes(ast.parse(source))) == [2, 2, 3, 4, 5]


# --- The migration that typed the stored rows ---------------------------------------------

MIGRATION = ("retention", "0012_typed_audit_actions")


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_migration_keeps_typed_rows_marks_others_legacy_and_reverses_exactly():
    executor = MigrationExecutor(connection)
    (before,) = [
        p for p in executor.loader.graph.node_map[MIGRATION].parents if p[0] == "retention"
    ]
    stored = [
        ("approved", {"note": "kept"}),
        ("Approve by phone", {"note": "typed by hand"}),
        ("imported", ["not", "an", "object"]),
    ]
    try:
        executor.migrate([before.key])
        old = executor.loader.project_state([before.key]).apps.get_model("retention", "AuditEntry")
        old.objects.bulk_create(
            old(at=AT, actor_kind="rule", action=action, detail=detail) for action, detail in stored
        )
        MigrationExecutor(connection).migrate([MIGRATION])
        typed = list(AuditEntry.objects.order_by("id").values_list("action", "detail"))
        assert typed == [
            ("approved", {"note": "kept"}),
            ("legacy", {"note": "typed by hand", "legacy_action": "Approve by phone"}),
            ("legacy", {"legacy_detail": ["not", "an", "object"], "legacy_action": "imported"}),
        ]
        MigrationExecutor(connection).migrate([before.key])
        assert list(old.objects.order_by("id").values_list("action", "detail")) == stored
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())

"""Alerts: raised in bulk from a scoring run, then acknowledged, assigned, actioned,
dismissed, escalated or resolved (won back when the customer orders again)."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pandas as pd
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Subquery

from customers.bulk import analyze, foreign_keys_checked_in_bulk, is_postgres
from customers.models import Order
from ml.models import ChurnDefinition, ScoringRun
from ml.selectors import active_definition, run_frame
from retention.models import Alert, RiskRule, Severity
from retention.rules import condition_of, matches
from retention.services.audit import CUSTOMER, SCHEDULE, Actor, audit_bulk, audit_record
from retention.signals import alerts_changed
from retention.sql import placeholders, staged, timestamp_param

ALREADY_CLOSED = "this alert is already closed"


class AlertClosed(Exception):
    """The alert was closed before this action reached it (by another agent, or won back)."""


def rule_matches(rule: RiskRule, frame: pd.DataFrame) -> pd.Index:
    """Customer ids in ``frame`` (a scoring run's features and scores) the rule matches."""
    conditions = [condition_of(c) for c in rule.conditions.all()]
    return frame.index[matches(frame, conditions)]


def alerts_raise(
    *, run: ScoringRun, now: dt.datetime, frame: pd.DataFrame | None = None
) -> dict[str, int]:
    """One open alert per matching customer and active rule, in bulk; ``frame`` is the
    run's frame (``ml.selectors.run_frame``) if the caller has read it already.

    Safe to repeat: customers with an open alert of the rule are skipped, and so are
    those whose alert of it closed within the cooldown. The partial unique index on open
    alerts stays as the guard (a second run at the same moment fails instead of
    duplicating; the nightly task's lock prevents that run). Returns the new alerts per
    rule name.
    """
    frame = run_frame(run) if frame is None else frame
    rules = list(RiskRule.objects.filter(is_active=True).prefetch_related("conditions"))
    raised = dict.fromkeys((rule.name for rule in rules), 0)
    if not rules:
        return raised
    matched = pd.concat(
        [
            pd.DataFrame({"customer_id": rule_matches(rule, frame), "rule_id": rule.pk})
            for rule in rules
        ],
        ignore_index=True,
    )
    if matched.empty:
        return raised
    with transaction.atomic():
        with foreign_keys_checked_in_bulk(
            Alert, rows=len(matched), rebuild_indexes=True
        ) as analyzed_on_exit:
            counts = _insert_alerts(rules, run, matched.astype("int64"), now)
        if counts:
            if not analyzed_on_exit:
                analyze(Alert)  # the proposals join these next
            _announce([])
    by_id = {rule.pk: rule.name for rule in rules}
    return raised | {by_id[rule_id]: n for rule_id, n in counts.items()}


def _announce(alert_ids: list[int]) -> None:
    transaction.on_commit(lambda: alerts_changed.send(sender=Alert, alert_ids=alert_ids))


_MATCHED, _RULES = "retention_matched", "retention_raising_rules"


def _insert_alerts(
    rules: list[RiskRule], run: ScoringRun, matched: pd.DataFrame, now: dt.datetime
) -> dict[int, int]:
    """Stage the (customer, rule) pairs, then insert every alert with one INSERT … SELECT
    that copies the run's score and reasons; nothing per customer passes through Python.

    One statement for all rules, because a statement's NOT EXISTS sees the alerts as they
    were when it began: rule by rule, the second rule's check read the first rule's
    100,000s of new alerts, unindexed during a bulk load and unknown to the planner,
    which chose a nested loop that ran for over 20 minutes at 1M customers.
    Returns the new alerts per rule id.
    """
    settings = pd.DataFrame(
        {
            "rule_id": [rule.pk for rule in rules],
            "severity": [rule.severity for rule in rules],
            "queue": [rule.queue for rule in rules],
            "assignee_id": pd.array([rule.assignee_id for rule in rules], dtype="Int64"),
            "cooldown_from": [
                timestamp_param(now - dt.timedelta(days=rule.cooldown_days)) for rule in rules
            ],
        }
    )
    rule_columns = (
        "rule_id BIGINT PRIMARY KEY, severity VARCHAR(8), queue VARCHAR(50),"
        f" assignee_id BIGINT, cooldown_from {_timestamp_type()}"
    )
    with (
        staged(
            _MATCHED,
            matched,
            "customer_id BIGINT, rule_id BIGINT, PRIMARY KEY (customer_id, rule_id)",
        ),
        staged(_RULES, settings, rule_columns),
        connection.cursor() as cursor,
    ):
        insert = f"""
            INSERT INTO retention_alert
                (customer_id, rule_id, severity, state, queue, assigned_to_id, as_of,
                 raised_at, probability, tier, value_at_risk, reasons, resolution, note)
            SELECT m.customer_id, m.rule_id, r.severity, 'open', r.queue, r.assignee_id,
                   %s, %s, s.probability, s.tier, s.value_at_risk, s.reasons, '', ''
            FROM {_MATCHED} m
            JOIN {_RULES} r ON r.rule_id = m.rule_id
            JOIN ml_customerscore s ON s.run_id = %s AND s.customer_id = m.customer_id
            WHERE NOT EXISTS (
                SELECT 1 FROM retention_alert a
                WHERE a.customer_id = m.customer_id AND a.rule_id = m.rule_id
                  AND (a.state IN ({placeholders(Alert.OPEN_STATES)})
                       OR a.closed_at >= r.cooldown_from)
            )
            RETURNING rule_id
        """
        params = [run.as_of, now, run.pk, *Alert.OPEN_STATES]
        if is_postgres():  # counted in the server: a million ids need not travel
            cursor.execute(
                f"WITH raised AS ({insert}) SELECT rule_id, COUNT(*) FROM raised GROUP BY 1",
                params,
            )
            counts = dict(cursor.fetchall())
        else:  # SQLite has no INSERT inside WITH
            cursor.execute(insert, params)
            counts = dict(Counter(rule_id for (rule_id,) in cursor.fetchall()))
    return counts


def _timestamp_type() -> str:
    return "TIMESTAMPTZ" if is_postgres() else "TIMESTAMP"


def _closable(alert_id: int) -> Alert:
    alert = Alert.objects.select_for_update().get(pk=alert_id)
    if alert.state not in Alert.OPEN_STATES:
        raise AlertClosed(ALREADY_CLOSED)
    return alert


def alert_acknowledge(*, alert_id: int, actor: Actor, now: dt.datetime) -> Alert:
    with transaction.atomic():
        alert = _closable(alert_id)
        if alert.state != Alert.State.OPEN:
            return alert
        alert.state, alert.acknowledged_at = Alert.State.ACKNOWLEDGED, now
        if alert.assigned_to_id is None and actor.user is not None:
            alert.assigned_to = actor.user
        alert.save(update_fields=["state", "acknowledged_at", "assigned_to"])
        audit_record(
            actor=actor,
            action="acknowledged",
            at=now,
            alert=alert,
            from_state=Alert.State.OPEN,
            to_state=alert.state,
        )
    return alert


def alert_assign(*, alert_id: int, assignee, actor: Actor, now: dt.datetime) -> Alert:
    """Give the alert to ``assignee`` (None: back to its queue); assigning acknowledges."""
    with transaction.atomic():
        alert = _closable(alert_id)
        before = alert.state
        alert.assigned_to = assignee
        if assignee is not None and alert.state == Alert.State.OPEN:
            alert.state, alert.acknowledged_at = Alert.State.ACKNOWLEDGED, now
        alert.save(update_fields=["assigned_to", "state", "acknowledged_at"])
        _announce([alert.pk])
        audit_record(
            actor=actor,
            action="assigned",
            at=now,
            alert=alert,
            from_state=before,
            to_state=alert.state,
            detail={"assignee": getattr(assignee, "username", None)},
        )
    return alert


def alert_mark_actioned(*, alert_id: int, actor: Actor, now: dt.datetime) -> Alert:
    with transaction.atomic():
        alert = _closable(alert_id)
        before = alert.state
        alert.state = Alert.State.ACTIONED
        alert.acknowledged_at = alert.acknowledged_at or now
        alert.save(update_fields=["state", "acknowledged_at"])
        audit_record(
            actor=actor,
            action="actioned",
            at=now,
            alert=alert,
            from_state=before,
            to_state=alert.state,
        )
    return alert


_CLOSED_FIELDS = ["state", "resolution", "closed_at", "note"]


def _close(alert: Alert, *, actor: Actor, now: dt.datetime, dismiss: bool, note: str) -> None:
    """Close one locked, open alert in memory and audit it; the caller saves."""
    before = alert.state
    alert.state = Alert.State.DISMISSED if dismiss else Alert.State.RESOLVED
    alert.resolution = "" if dismiss else Alert.Resolution.HANDLED
    alert.closed_at, alert.note = now, note
    audit_record(
        actor=actor,
        action="dismissed" if dismiss else "resolved",
        at=now,
        alert=alert,
        from_state=before,
        to_state=alert.state,
        detail={"note": note} if note else None,
    )


def alert_close(
    *, alert_id: int, actor: Actor, now: dt.datetime, dismiss: bool, note: str = ""
) -> Alert:
    """Dismiss (nothing to do) or resolve (handled) an alert; either starts its cooldown."""
    with transaction.atomic():
        alert = _closable(alert_id)
        _close(alert, actor=actor, now=now, dismiss=dismiss, note=note)
        alert.save(update_fields=_CLOSED_FIELDS)
    return alert


def alerts_dismiss_open(*, ids, actor: Actor, now: dt.datetime, note: str) -> int:
    """Dismiss those of these alerts still open (their offer was dismissed, so nothing is
    left to do), each audited; closed ones are left as they are. Returns how many."""
    with transaction.atomic():
        alerts = list(
            Alert.objects.select_for_update().filter(pk__in=list(ids), state__in=Alert.OPEN_STATES)
        )
        for alert in alerts:
            _close(alert, actor=actor, now=now, dismiss=True, note=note)
        Alert.objects.bulk_update(alerts, _CLOSED_FIELDS)
    return len(alerts)


def alerts_resolve_won_back(*, now: dt.datetime, definition: ChurnDefinition | None = None) -> int:
    """Close every open alert whose customer has placed a qualifying order since it was
    raised, recording the order: the customer was won back."""
    statuses = (definition or active_definition()).qualifying_statuses
    later = Order.objects.filter(
        customer_id=OuterRef("customer_id"),
        placed_at__gt=OuterRef("raised_at"),
        placed_at__lte=now,
        status__in=statuses,
    ).order_by("placed_at")
    with transaction.atomic():
        won = Alert.objects.filter(state__in=Alert.OPEN_STATES).filter(Exists(later))
        ids = list(won.values_list("pk", flat=True))
        if not ids:
            return 0
        Alert.objects.filter(pk__in=ids).update(
            state=Alert.State.RESOLVED,
            resolution=Alert.Resolution.WON_BACK,
            closed_at=now,
            won_back_order=Subquery(later.values("pk")[:1]),
        )
        audit_bulk(
            actor=CUSTOMER,
            action="won_back",
            at=now,
            alert_ids=ids,
            to_state=Alert.State.RESOLVED,
        )
    return len(ids)


def alerts_escalate(*, now: dt.datetime) -> list[int]:
    """Mark high-severity alerts nobody acknowledged within their rule's time as escalated;
    returns their ids so the chat surfaces can notify supervisors."""
    waiting = Alert.objects.filter(
        state=Alert.State.OPEN, severity=Severity.HIGH, escalated_at__isnull=True
    )
    with transaction.atomic():
        ids = []
        for rule in RiskRule.objects.filter(pk__in=waiting.values("rule_id")):
            due = waiting.filter(
                rule=rule, raised_at__lte=now - dt.timedelta(hours=rule.escalate_after_hours)
            )
            ids += due.select_for_update(skip_locked=True).values_list("pk", flat=True)
        Alert.objects.filter(pk__in=ids).update(escalated_at=now)
        if ids:
            _announce(ids)
        audit_bulk(
            actor=SCHEDULE,
            action="escalated",
            at=now,
            alert_ids=ids,
            from_state=Alert.State.OPEN,
            to_state=Alert.State.OPEN,
        )
    return ids


def alerts_assign_customer(*, customer_id: int, assignee, actor: Actor, now: dt.datetime) -> int:
    """Take (or hand over) a customer's whole case: every open alert of theirs, each
    audited as one assignment. Returns how many were assigned."""
    ids = Alert.objects.filter(customer_id=customer_id, state__in=Alert.OPEN_STATES)
    done = 0
    for alert_id in ids.values_list("pk", flat=True):
        try:
            alert_assign(alert_id=alert_id, assignee=assignee, actor=actor, now=now)
            done += 1
        except AlertClosed:
            continue  # closed meanwhile by someone else: nothing to take
    return done

"""Cases (the ``Alert`` model): rule hits folded into one open case per customer after a
scoring run, then acknowledged, assigned, actioned, dismissed, escalated or resolved (won
back when the customer orders again, or left to the automatic win-back once lost)."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pandas as pd
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Subquery

from core.bulk import analyze, foreign_keys_checked_in_bulk, is_postgres
from core.sql import placeholders, staged, timestamp_param
from customers.models import Order
from ml.models import ChurnDefinition, ScoringRun, Stage
from ml.selectors import active_definition, run_frame
from retention.models import Alert, CaseReason, RiskRule, Severity
from retention.rules import condition_of, matches
from retention.services.audit import CUSTOMER, SCHEDULE, Action, Actor, audit_write
from retention.signals import alerts_changed

ALREADY_CLOSED = "this alert is already closed"
SEVERITY_RANK = {Severity.LOW.value: 1, Severity.MEDIUM.value: 2, Severity.HIGH.value: 3}


class AlertClosed(Exception):
    """The alert was closed before this action reached it (by another agent, or won back)."""


def rule_matches(rule: RiskRule, frame: pd.DataFrame) -> pd.Index:
    """Customer ids in ``frame`` (a scoring run's features and scores) the rule matches;
    lost customers only if the rule includes them (they are the automatic win-back's)."""
    conditions = [condition_of(c) for c in rule.conditions.all()]
    mask = matches(frame, conditions)
    if not rule.include_lost and "stage" in frame:
        mask &= (frame["stage"] != Stage.LOST).to_numpy()
    return frame.index[mask]


def alerts_raise(
    *, run: ScoringRun, now: dt.datetime, frame: pd.DataFrame | None = None
) -> dict[str, int]:
    """Fold the night's rule hits into one open case per customer, in bulk; ``frame`` is
    the run's frame (``ml.selectors.run_frame``) if the caller has read it already.

    A customer without an open case gets one, titled and routed by their highest-priority
    rule; a customer with one gets the new rules added to it (and its title and severity
    raised if they outrank it). Safe to repeat: a rule already listed on the open case is
    skipped, and so is one listed on a case that closed within the rule's cooldown. Open,
    untouched cases of customers now lost are closed for the automatic win-back unless a
    rule on them includes lost customers, and so are actioned cases whose offers all ended
    without an order, so the customer can have a new case once the rules' cooldowns pass.
    The partial unique index on open cases stays as the guard. Returns, per rule name, the
    customers it newly listed.
    """
    frame = run_frame(run) if frame is None else frame
    rules = list(RiskRule.objects.filter(is_active=True).prefetch_related("conditions"))
    raised = dict.fromkeys((rule.name for rule in rules), 0)
    hits = [
        pd.DataFrame({"customer_id": rule_matches(rule, frame), "rule_id": rule.pk})
        for rule in rules
    ]
    matched = pd.concat(hits, ignore_index=True) if hits else pd.DataFrame()
    with transaction.atomic():
        _close_lost(run, now)
        _close_ended(now)
        _restage(run)
        if not matched.empty:
            with foreign_keys_checked_in_bulk(
                Alert, CaseReason, rows=len(matched), rebuild_indexes=True
            ) as analyzed_on_exit:
                counts = _fold(rules, run, matched.astype("int64"), now)
            if counts and not analyzed_on_exit:
                analyze(Alert, CaseReason)  # the proposals join these next
        else:
            counts = {}
    by_id = {rule.pk: rule.name for rule in rules}
    return raised | {by_id[rule_id]: n for rule_id, n in counts.items()}


def _announce(alert_ids: list[int]) -> None:
    transaction.on_commit(lambda: alerts_changed.send(sender=Alert, alert_ids=alert_ids))


_MATCHED, _RULES, _HITS = "retention_matched", "retention_raising_rules", "retention_new_hits"


def _fold(
    rules: list[RiskRule], run: ScoringRun, matched: pd.DataFrame, now: dt.datetime
) -> dict[int, int]:
    """Stage the (customer, rule) pairs, keep those neither listed on an open case nor
    cooling down, open a case for each customer without one, list the rules, and raise
    the title and severity of open cases the new rules outrank. Set-based: a handful of
    statements whatever the number of customers; the cases copy the run's score and
    reasons in SQL, so nothing per customer passes through Python.

    The new hits are computed once into a table of their own, because a statement's
    NOT EXISTS sees the cases as they were when it began, and rule by rule the second
    rule's check read the first rule's 100,000s of new rows unindexed during a bulk load
    (a nested loop that ran for over 20 minutes at 1M customers). Returns the new
    reasons per rule id.
    """
    settings = pd.DataFrame(
        {
            "rule_id": [rule.pk for rule in rules],
            "severity": [rule.severity for rule in rules],
            "severity_rank": [SEVERITY_RANK[rule.severity] for rule in rules],
            "priority": [rule.priority for rule in rules],
            "queue": [rule.queue for rule in rules],
            "assignee_id": pd.array([rule.assignee_id for rule in rules], dtype="Int64"),
            "cooldown_from": [
                timestamp_param(now - dt.timedelta(days=rule.cooldown_days)) for rule in rules
            ],
        }
    )
    rule_columns = (
        "rule_id BIGINT PRIMARY KEY, severity VARCHAR(8), severity_rank INTEGER,"
        " priority INTEGER, queue VARCHAR(50), assignee_id BIGINT,"
        f" cooldown_from {_timestamp_type()}"
    )
    open_states = placeholders(Alert.OPEN_STATES)
    with (
        staged(
            _MATCHED,
            matched,
            "customer_id BIGINT, rule_id BIGINT, PRIMARY KEY (customer_id, rule_id)",
        ),
        staged(_RULES, settings, rule_columns),
        connection.cursor() as cursor,
    ):
        cursor.execute(f"DROP TABLE IF EXISTS {_HITS}")
        cursor.execute(
            f"""
            CREATE TEMPORARY TABLE {_HITS} AS
            SELECT m.customer_id, m.rule_id, r.priority, r.severity_rank,
                   ROW_NUMBER() OVER (PARTITION BY m.customer_id
                                      ORDER BY r.priority DESC, m.rule_id) AS place,
                   MAX(r.severity_rank) OVER (PARTITION BY m.customer_id) AS worst
            FROM {_MATCHED} m
            JOIN {_RULES} r ON r.rule_id = m.rule_id
            WHERE NOT EXISTS (
                SELECT 1 FROM retention_casereason h
                JOIN retention_alert a ON a.id = h.alert_id
                WHERE a.customer_id = m.customer_id AND h.rule_id = m.rule_id
                  AND (a.state IN ({open_states}) OR a.closed_at >= r.cooldown_from)
            )
            """,
            [*Alert.OPEN_STATES],
        )
        if is_postgres():
            cursor.execute(f"ANALYZE {_HITS}")
        _outrank(cursor)
        cursor.execute(
            f"""
            INSERT INTO retention_alert
                (customer_id, rule_id, severity, state, queue, assigned_to_id, as_of,
                 raised_at, probability, tier, value_at_risk, reasons, stage, priority,
                 resolution, note)
            SELECT h.customer_id, h.rule_id,
                   CASE h.worst WHEN 3 THEN 'high' WHEN 2 THEN 'medium' ELSE 'low' END,
                   'open', r.queue, r.assignee_id, %s, %s, s.probability, s.tier,
                   s.value_at_risk, s.reasons, s.stage, 0, '', ''
            FROM {_HITS} h
            JOIN {_RULES} r ON r.rule_id = h.rule_id
            JOIN ml_customerscore s ON s.run_id = %s AND s.customer_id = h.customer_id
            WHERE h.place = 1 AND NOT EXISTS (
                SELECT 1 FROM retention_alert a
                WHERE a.customer_id = h.customer_id AND a.state IN ({open_states})
            )
            """,
            [run.as_of, now, run.pk, *Alert.OPEN_STATES],
        )
        if cursor.rowcount:
            analyze(Alert)  # the next join finds the new cases by customer
        insert = f"""
            INSERT INTO retention_casereason (alert_id, rule_id, as_of)
            SELECT a.id, h.rule_id, %s
            FROM {_HITS} h
            JOIN retention_alert a
              ON a.customer_id = h.customer_id AND a.state IN ({open_states})
            RETURNING rule_id
        """
        params = [run.as_of, *Alert.OPEN_STATES]
        if is_postgres():  # counted in the server: a million ids need not travel
            cursor.execute(
                f"WITH listed AS ({insert}) SELECT rule_id, COUNT(*) FROM listed GROUP BY 1",
                params,
            )
            counts = dict(cursor.fetchall())
        else:  # SQLite has no INSERT inside WITH
            cursor.execute(insert, params)
            counts = dict(Counter(rule_id for (rule_id,) in cursor.fetchall()))
        cursor.execute(f"DROP TABLE IF EXISTS {_HITS}")
    return counts


def _outrank(cursor) -> None:
    """Open cases whose new rules outrank what they list already take the best new rule
    as their title and the worst severity; queue and assignee stay where agents found
    them."""
    open_states = placeholders(Alert.OPEN_STATES)
    cursor.execute(
        f"""
        UPDATE retention_alert SET
            rule_id = CASE WHEN best.priority > lead.priority THEN best.rule_id
                           ELSE retention_alert.rule_id END,
            severity = CASE
                WHEN best.worst > (CASE retention_alert.severity WHEN 'high' THEN 3
                                   WHEN 'medium' THEN 2 ELSE 1 END)
                THEN CASE best.worst WHEN 3 THEN 'high' WHEN 2 THEN 'medium' ELSE 'low' END
                ELSE retention_alert.severity END
        FROM {_HITS} best, retention_riskrule lead
        WHERE best.place = 1
          AND retention_alert.customer_id = best.customer_id
          AND retention_alert.state IN ({open_states})
          AND lead.id = retention_alert.rule_id
          AND (best.priority > lead.priority
               OR best.worst > (CASE retention_alert.severity WHEN 'high' THEN 3
                                WHEN 'medium' THEN 2 ELSE 1 END))
        """,
        [*Alert.OPEN_STATES],
    )


def _close_lost(run: ScoringRun, now: dt.datetime) -> int:
    """Close the open cases nobody holds (unacknowledged, or actioned: the offer is out)
    whose customer the run finds lost, unless a rule they list includes lost customers:
    the automatic win-back takes them, not an agent's queue."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT a.id, a.state FROM retention_alert a
            JOIN ml_customerscore s ON s.run_id = %s AND s.customer_id = a.customer_id
            WHERE a.state IN (%s, %s) AND s.stage = %s AND NOT EXISTS (
                SELECT 1 FROM retention_casereason h
                JOIN retention_riskrule r ON r.id = h.rule_id
                WHERE h.alert_id = a.id AND r.include_lost
            )
            """,
            [run.pk, Alert.State.OPEN, Alert.State.ACTIONED, Stage.LOST],
        )
        found = cursor.fetchall()
    return _resolve(found, Alert.Resolution.LOST, Action.LEFT_TO_WIN_BACK, now, stage=Stage.LOST)


# An intervention in one of these may still bring the customer back.
_UNDER_WAY = ("proposed", "approved", "edited", "queued", "sent", "delivered")


def _close_ended(now: dt.datetime) -> int:
    """Close the actioned cases whose offers have all ended (expired, blocked, failed,
    dismissed) without the customer ordering: nothing more will come of them."""
    under_way = placeholders(_UNDER_WAY)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT a.id, a.state FROM retention_alert a
            WHERE a.state = %s
              AND EXISTS (SELECT 1 FROM retention_intervention i WHERE i.alert_id = a.id)
              AND NOT EXISTS (
                SELECT 1 FROM retention_intervention i
                WHERE i.alert_id = a.id AND i.state IN ({under_way})
              )
            """,
            [Alert.State.ACTIONED, *_UNDER_WAY],
        )
        found = cursor.fetchall()
    return _resolve(found, Alert.Resolution.OFFER_ENDED, Action.OFFER_ENDED, now)


def _resolve(found: list[tuple[int, str]], resolution: str, action: Action, now, **also) -> int:
    """Resolve these (id, state) cases, audited per state they left."""
    if not found:
        return 0
    ids = [pk for pk, _ in found]
    for start in range(0, len(ids), 10_000):
        Alert.objects.filter(pk__in=ids[start : start + 10_000]).update(
            state=Alert.State.RESOLVED,
            resolution=resolution,
            closed_at=now,
            planned_on=None,
            **also,
        )
    for before in {state for _, state in found}:
        audit_write(
            actor=SCHEDULE,
            action=action,
            at=now,
            alert_id=[pk for pk, state in found if state == before],
            from_state=before,
            to_state=Alert.State.RESOLVED,
        )
    return len(ids)


def _restage(run: ScoringRun) -> None:
    """Open cases show their customer's stage as of this run (the console filters by it);
    only cases whose stage changed are written."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE retention_alert SET stage = s.stage
            FROM ml_customerscore s
            WHERE s.run_id = %s AND s.customer_id = retention_alert.customer_id
              AND retention_alert.state IN ({placeholders(Alert.OPEN_STATES)})
              AND retention_alert.stage <> s.stage
            """,
            [run.pk, *Alert.OPEN_STATES],
        )


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
        audit_write(
            actor=actor,
            action=Action.ACKNOWLEDGED,
            at=now,
            alert_id=alert.pk,
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
        audit_write(
            actor=actor,
            action=Action.ASSIGNED,
            at=now,
            alert_id=alert.pk,
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
        alert.handled_at = alert.handled_at or now
        alert.save(update_fields=["state", "acknowledged_at", "handled_at"])
        audit_write(
            actor=actor,
            action=Action.ACTIONED,
            at=now,
            alert_id=alert.pk,
            from_state=before,
            to_state=alert.state,
        )
    return alert


_CLOSED_FIELDS = ["state", "resolution", "closed_at", "note", "handled_at"]


def _close(
    alerts: list[Alert], *, actor: Actor, now: dt.datetime, dismiss: bool, note: str
) -> None:
    """Close locked, open alerts and audit each, in one write of each kind."""
    before = [alert.state for alert in alerts]
    for alert in alerts:
        alert.state = Alert.State.DISMISSED if dismiss else Alert.State.RESOLVED
        alert.resolution = "" if dismiss else Alert.Resolution.HANDLED
        alert.closed_at, alert.note = now, note
        alert.handled_at = alert.handled_at or now
    Alert.objects.bulk_update(alerts, _CLOSED_FIELDS)
    audit_write(
        actor=actor,
        action=Action.DISMISSED if dismiss else Action.RESOLVED,
        at=now,
        alert_id=[alert.pk for alert in alerts],
        from_state=before,
        to_state=Alert.State.DISMISSED if dismiss else Alert.State.RESOLVED,
        detail={"note": note} if note else None,
    )


def alert_close(
    *, alert_id: int, actor: Actor, now: dt.datetime, dismiss: bool, note: str = ""
) -> Alert:
    """Dismiss (nothing to do) or resolve (handled) an alert; either starts its cooldown."""
    with transaction.atomic():
        alert = _closable(alert_id)
        _close([alert], actor=actor, now=now, dismiss=dismiss, note=note)
    return alert


def alerts_dismiss_open(*, ids, actor: Actor, now: dt.datetime, note: str) -> int:
    """Dismiss those of these alerts still open (their offer was dismissed, so nothing is
    left to do), each audited; closed ones are left as they are. Returns how many."""
    with transaction.atomic():
        alerts = list(
            Alert.objects.select_for_update().filter(pk__in=list(ids), state__in=Alert.OPEN_STATES)
        )
        _close(alerts, actor=actor, now=now, dismiss=True, note=note)
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
        audit_write(
            actor=CUSTOMER,
            action=Action.WON_BACK,
            at=now,
            alert_id=ids,
            to_state=Alert.State.RESOLVED,
        )
    return len(ids)


def alerts_escalate(*, now: dt.datetime) -> list[int]:
    """Mark high-severity cases on a to-do list (those pushed to chat) that nobody
    acknowledged within their rule's time as escalated; returns their ids so the chat
    surfaces can notify supervisors. Watched cases wait for capacity, not for an agent,
    so they do not escalate."""
    waiting = Alert.objects.filter(
        state=Alert.State.OPEN,
        severity=Severity.HIGH,
        escalated_at__isnull=True,
        planned_on__isnull=False,
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
        audit_write(
            actor=SCHEDULE,
            action=Action.ESCALATED,
            at=now,
            alert_id=ids,
            from_state=Alert.State.OPEN,
            to_state=Alert.State.OPEN,
        )
    return ids

"""What agents work today: each case's priority (the expected incremental value of the best
offer proposed for the customer), and a plan that puts the top cases of every queue and
agent on a to-do list within their daily capacity. The rest are watched: visible, never
pushed to chat, and back in the running at the next plan.

A case is on one list: its agent's if it is assigned, else its queue's. The plan is
set-based (a window function ranks every list at once), and re-planning the same day is
safe: what was done that day counts against the capacity, so to-do plus done never exceeds
it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd
from django.db import connection, transaction
from django.utils import timezone

from core.sql import placeholders, staged, timestamp_param
from retention.models import (
    CAPACITY_TOO_LOW,
    DEFAULT_DAILY_CAPACITY,
    AgentCapacity,
    Alert,
    Intervention,
    Queue,
)
from retention.selectors import day_bounds
from retention.services.audit import Action, Actor, audit_write
from retention.signals import alerts_changed

CAPACITY_FIELD = "daily_capacity"
NO_LIST = "name a queue or an agent"


class CapacityRefused(ValueError):
    """A capacity that cannot be stored; ``field`` names the input at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def cases_prioritise() -> int:
    """Set each waiting case's priority to the highest expected net value among the
    undecided treatment offers proposed for it (``best_offers``' value at risk times
    response less the expected cost of the offer), and to 0 where none is left: a
    control-arm customer, one no campaign targets, or one whose offer was decided. Only
    changed rows are written. Returns how many changed."""
    waiting = placeholders(Alert.WAITING_STATES)
    offered = (
        "SELECT alert_id, MAX(expected_net_value) AS value FROM retention_intervention"
        " WHERE state = %s AND arm = %s AND alert_id IS NOT NULL GROUP BY alert_id"
    )
    proposed = [Intervention.State.PROPOSED, Intervention.Arm.TREATMENT]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE retention_alert SET priority = best.value
            FROM ({offered}) best
            WHERE retention_alert.id = best.alert_id
              AND retention_alert.state IN ({waiting})
              AND retention_alert.priority <> best.value
            """,
            [*proposed, *Alert.WAITING_STATES],
        )
        changed = cursor.rowcount
        cursor.execute(
            f"""
            UPDATE retention_alert SET priority = 0
            WHERE state IN ({waiting}) AND priority <> 0 AND NOT EXISTS (
                SELECT 1 FROM retention_intervention i
                WHERE i.alert_id = retention_alert.id AND i.state = %s AND i.arm = %s
            )
            """,
            [*Alert.WAITING_STATES, *proposed],
        )
        return changed + cursor.rowcount


# A list's key in SQL: (agent id or 0, queue name or '' for an agent's list).
_AGENT_KEY = "COALESCE({a}.assigned_to_id, 0)"
_QUEUE_KEY = "CASE WHEN {a}.assigned_to_id IS NULL THEN {a}.queue ELSE '' END"
_SLOTS = "retention_plan_slots"


@dataclass
class Plan:
    to_do: int
    watching: int


def cases_plan(*, day: dt.date, now: dt.datetime) -> Plan:
    """Put the top cases of every queue and agent by priority on the day's to-do list,
    as many as their capacity less what was done that day; only cases worth something
    (priority above 0) qualify. Every other waiting case is watched. Queues seen for the
    first time get a row with the default capacity, so the admin lists them. Announces
    the change, so the chat surfaces push the new to-do cases."""
    agent, queue = _AGENT_KEY.format(a="a"), _QUEUE_KEY.format(a="a")
    waiting = placeholders(Alert.WAITING_STATES)
    after, until = (timestamp_param(t) for t in day_bounds(day))
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT {agent} AS agent_id, {queue} AS queue,
                   SUM(CASE WHEN a.state IN ({waiting}) AND a.priority > 0 THEN 1 ELSE 0 END),
                   SUM(CASE WHEN a.handled_at > %s AND a.handled_at <= %s THEN 1 ELSE 0 END)
            FROM retention_alert a
            WHERE (a.state IN ({waiting}) AND a.priority > 0)
               OR (a.handled_at > %s AND a.handled_at <= %s)
            GROUP BY 1, 2
            """,
            [*Alert.WAITING_STATES, after, until, *Alert.WAITING_STATES, after, until],
        )
        lists = pd.DataFrame(cursor.fetchall(), columns=["agent_id", "queue", "waiting", "done"])
        capacity = _capacities(lists)
        lists["slots"] = (capacity - lists["done"].astype(int)).clip(lower=0)
        cursor.execute(
            f"UPDATE retention_alert SET planned_on = NULL"
            f" WHERE state IN ({waiting}) AND planned_on IS NOT NULL",
            [*Alert.WAITING_STATES],
        )
        planned = 0
        if not lists.empty:
            with staged(
                _SLOTS,
                lists[["agent_id", "queue", "slots"]],
                "agent_id BIGINT, queue VARCHAR(50), slots INTEGER, PRIMARY KEY (agent_id, queue)",
            ):
                cursor.execute(
                    f"""
                    UPDATE retention_alert SET planned_on = %s WHERE id IN (
                        SELECT id FROM (
                            SELECT a.id, s.slots, ROW_NUMBER() OVER (
                                PARTITION BY s.agent_id, s.queue ORDER BY a.priority DESC, a.id
                            ) AS place
                            FROM retention_alert a
                            JOIN {_SLOTS} s ON s.agent_id = {agent} AND s.queue = {queue}
                            WHERE a.state IN ({waiting}) AND a.priority > 0
                        ) ranked
                        WHERE place <= slots
                    )
                    """,
                    [day, *Alert.WAITING_STATES],
                )
                planned = cursor.rowcount
        watched = Alert.objects.filter(state__in=Alert.WAITING_STATES, planned_on__isnull=True)
        transaction.on_commit(lambda: alerts_changed.send(sender=Alert, alert_ids=[]))
        return Plan(to_do=planned, watching=watched.count())


def _capacities(lists: pd.DataFrame) -> pd.Series:
    """Each list's daily capacity: its queue's or agent's row, else the default (and a
    queue without a row gets one)."""
    names = sorted(set(lists.loc[lists["agent_id"] == 0, "queue"]))
    Queue.objects.bulk_create([Queue(name=n) for n in names], ignore_conflicts=True)
    queues = dict(Queue.objects.filter(name__in=names).values_list("name", "daily_capacity"))
    agents = dict(
        AgentCapacity.objects.filter(user_id__in=lists["agent_id"].tolist()).values_list(
            "user_id", "daily_capacity"
        )
    )
    by_queue = lists["queue"].map(queues)
    by_agent = lists["agent_id"].map(agents)
    return (
        by_agent.where(lists["agent_id"] != 0, by_queue).fillna(DEFAULT_DAILY_CAPACITY).astype(int)
    )


def _capacity(raw: object) -> int:
    """``raw`` (a form's or a request's value) as a capacity, or CapacityRefused."""
    if isinstance(raw, bool):
        raise CapacityRefused(CAPACITY_FIELD, CAPACITY_TOO_LOW)
    try:
        value = int(str(raw).strip())
    except ValueError:
        raise CapacityRefused(CAPACITY_FIELD, f"{raw!r} is not a whole number") from None
    if value < 1:
        raise CapacityRefused(CAPACITY_FIELD, CAPACITY_TOO_LOW)
    return value


def capacity_set(
    *,
    daily_capacity: object,
    actor: Actor,
    now: dt.datetime,
    queue: str | None = None,
    agent=None,
) -> Queue | AgentCapacity:
    """Set how many cases a queue (by name, created if new) or an agent works a day, then
    plan the day again so the change shows at once. Audited; a capacity below 1 or not a
    whole number raises :class:`CapacityRefused` naming ``daily_capacity``."""
    value = _capacity(daily_capacity)
    if (queue is None) == (agent is None):
        raise CapacityRefused("queue", NO_LIST)
    with transaction.atomic():
        if queue is not None:
            row, _ = Queue.objects.select_for_update().get_or_create(name=queue.strip())
            named = {"queue": row.name}
        else:
            row, _ = AgentCapacity.objects.select_for_update().get_or_create(user=agent)
            named = {"agent": agent.get_username()}
        before, row.daily_capacity = row.daily_capacity, value
        row.save(update_fields=["daily_capacity"])
        audit_write(
            actor=actor,
            action=Action.CAPACITY_CHANGED,
            at=now,
            detail={**named, "from": before, "to": value},
        )
        cases_plan(day=timezone.localdate(now), now=now)
    return row

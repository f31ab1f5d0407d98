"""Who did what: the actor every service takes, and the one writer of the append-only
audit rows.

Every row goes through :func:`audit_write`, a single event or thousands at once, so there
is one place that knows the table's columns and one check that the action is a member of
``AuditEntry.Action``: readers can filter on the members and trust that nothing else is
stored.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from core.bulk import copy_frame
from retention.models import AuditEntry


@dataclass(frozen=True)
class Actor:
    """The cause of a change: an agent (with the surface and chat they used), a rule, a
    scheduled run or a provider's receipt."""

    kind: str
    user: Any = None
    via: str = ""
    chat_id: str = ""

    @classmethod
    def agent(cls, user, *, via: str, chat_id: str = "") -> Actor:
        return cls(AuditEntry.Actor.AGENT, user, via, str(chat_id or ""))


SCHEDULE = Actor(AuditEntry.Actor.SCHEDULE, via="task")
CUSTOMER = Actor(AuditEntry.Actor.CUSTOMER, via="task")
RULE = Actor(AuditEntry.Actor.RULE, via="task")
PROVIDER = Actor(AuditEntry.Actor.PROVIDER, via="api")

Action = AuditEntry.Action

UNKNOWN_ACTION = "audit action {action!r} is not a member of AuditEntry.Action"
ACTION_AS_TEXT = "audit action {action!r} is given as {kind}: pass AuditEntry.Action.{name}"
LEGACY_ACTION = "audit action 'legacy' marks rows stored before typed actions; write a real one"
ROWS_DISAGREE = "audit rows: {field} has {got} values for {rows} rows"


class UnknownAction(ValueError):
    """An audit write named an action that is not a member of ``AuditEntry.Action``."""


# A field is either one value for every row or a sequence with one value per row.
PerRow = Sequence | np.ndarray | pd.Series | pd.Index


def audit_write(
    *,
    actor: Actor,
    action: Action | PerRow,
    at: dt.datetime,
    alert_id: int | PerRow | None = None,
    intervention_id: int | PerRow | None = None,
    from_state: str | PerRow = "",
    to_state: str | PerRow = "",
    detail: dict | PerRow | None = None,
) -> int:
    """Write audit rows, all by ``actor`` at ``at``; returns how many.

    Every other field is either one value for all rows or a sequence with one value per
    row (the ids of the interventions moved, their states before, ...). There are as many
    rows as those sequences are long, or one when every field is a single value, so an
    empty id list writes nothing. The rows go in with one COPY, in the given order: one
    event and a nightly batch of a million take the same path.

    ``action`` must be a member of ``AuditEntry.Action`` (its text is not enough), else
    :class:`UnknownAction` is raised and nothing is written.
    """
    fields = {
        "action": action,
        "alert_id": alert_id,
        "intervention_id": intervention_id,
        "from_state": from_state,
        "to_state": to_state,
        "detail": detail,
    }
    per_row = {name: value for name, value in fields.items() if _is_per_row(value)}
    rows = len(next(iter(per_row.values()))) if per_row else 1
    for name, value in per_row.items():
        if len(value) != rows:
            raise ValueError(ROWS_DISAGREE.format(field=name, got=len(value), rows=rows))
    for each in per_row.get("action", [action]):
        _check(each)
    if rows == 0:
        return 0
    frame = pd.DataFrame(
        {
            "at": _utc(at),
            "actor_kind": str(actor.kind),
            "actor_id": getattr(actor.user, "pk", None),
            "via": actor.via,
            "chat_id": actor.chat_id,
            "alert_id": _ids(alert_id),
            "intervention_id": _ids(intervention_id),
            "action": _texts(action),
            "from_state": _texts(from_state),
            "to_state": _texts(to_state),
            "detail": _json(detail),
        },
        index=pd.RangeIndex(rows),
    )
    return copy_frame(AuditEntry, frame)


def _utc(at: dt.datetime) -> pd.Timestamp:
    """Naive UTC, as Django itself stores a time: SQLite keeps it as text and compares
    text, so a row written with an offset would not equal the same time from the ORM."""
    moment = pd.Timestamp(at)
    return moment.tz_convert(None) if moment.tz is not None else moment


def _is_per_row(value: Any) -> bool:
    return not isinstance(value, str | dict | int | np.integer) and value is not None


def _check(action: Any) -> None:
    if not isinstance(action, Action):
        if isinstance(action, str) and action in Action.values:
            kind = type(action).__qualname__
            raise UnknownAction(
                ACTION_AS_TEXT.format(action=str(action), kind=kind, name=Action(action).name)
            )
        raise UnknownAction(UNKNOWN_ACTION.format(action=action))
    if action == Action.LEGACY:
        raise UnknownAction(LEGACY_ACTION)


def _ids(value: Any) -> Any:
    return pd.array(list(value), dtype="Int64") if _is_per_row(value) else value


def _texts(value: Any) -> Any:
    """Plain text (a choice member's value), so every row holds the same type."""
    return [str(v) for v in value] if _is_per_row(value) else str(value)


def _json(value: Any) -> Any:
    if _is_per_row(value):
        return [json.dumps(v or {}) for v in value]
    return json.dumps(value or {})


MODEL_ACTIONS = {"promoted": Action.MODEL_PROMOTED, "rolled_back": Action.MODEL_ROLLED_BACK}


def champion_change_record(
    *, version, previous, action: str, user, via: str, at: dt.datetime
) -> None:
    """Audit a change of champion model: who (a user, or training and commands as a
    scheduled run), which version replaced which, and the new champion's holdout AUC."""
    actor = Actor.agent(user, via=via) if user is not None else Actor(SCHEDULE.kind, via=via)
    metrics = version.metrics or {}
    audit_write(
        actor=actor,
        action=MODEL_ACTIONS[action],
        at=at,
        detail={
            "version": version.pk,
            "algorithm": version.algorithm,
            "auc": metrics.get("auc"),
            "previous": getattr(previous, "pk", None),
        },
    )

"""Who did what: the actor every service takes, and the append-only audit rows."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pandas as pd

from customers.bulk import copy_frame
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


def audit_entry(
    *,
    actor: Actor,
    action: str,
    at: dt.datetime,
    alert_id: int | None = None,
    intervention_id: int | None = None,
    from_state: str = "",
    to_state: str = "",
    detail: dict | None = None,
) -> AuditEntry:
    """An unsaved audit row, for callers that write many with ``bulk_create``."""
    return AuditEntry(
        at=at,
        actor_kind=actor.kind,
        actor=actor.user,
        via=actor.via,
        chat_id=actor.chat_id,
        alert_id=alert_id,
        intervention_id=intervention_id,
        action=action,
        from_state=from_state,
        to_state=to_state,
        detail=detail or {},
    )


def audit_record(*, alert=None, intervention=None, **fields) -> AuditEntry:
    entry = audit_entry(
        alert_id=getattr(alert, "pk", None),
        intervention_id=getattr(intervention, "pk", None),
        **fields,
    )
    entry.save()
    return entry


def audit_bulk(
    *,
    actor: Actor,
    action: str,
    at: dt.datetime,
    intervention_ids=(),
    alert_ids=(),
    from_state: str | pd.Series = "",
    to_state: str | pd.Series = "",
) -> int:
    """One audit row per id, written with COPY: for transitions done to thousands of rows at
    once (proposals after a scoring run, a batch of sends)."""
    ids = pd.Series(list(intervention_ids) or list(alert_ids), dtype="int64")
    if ids.empty:
        return 0
    frame = pd.DataFrame(
        {
            "at": pd.Timestamp(at),
            "actor_kind": actor.kind,
            "actor_id": getattr(actor.user, "pk", None),
            "via": actor.via,
            "chat_id": actor.chat_id,
            "intervention_id": ids if len(intervention_ids) else None,
            "alert_id": ids if len(alert_ids) else None,
            "action": action,
            "from_state": from_state,
            "to_state": to_state,
            "detail": "{}",
        }
    )
    return copy_frame(AuditEntry, frame)


MODEL_ACTIONS = {"promoted": "model_promoted", "rolled_back": "model_rolled_back"}


def champion_change_record(
    *, version, previous, action: str, user, via: str, at: dt.datetime
) -> AuditEntry:
    """Audit a change of champion model: who (a user, or training and commands as a
    scheduled run), which version replaced which, and the new champion's holdout AUC."""
    actor = Actor.agent(user, via=via) if user is not None else Actor(SCHEDULE.kind, via=via)
    metrics = version.metrics or {}
    return audit_record(
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

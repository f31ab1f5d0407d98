"""The nightly pipeline: score everyone, then turn the scores into alerts and proposed
interventions. Each step is idempotent for a day, so a re-run only finishes what is left."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import asdict

from ml.models import ScoringRun
from ml.selectors import run_frame
from ml.services import score_customers
from retention.services.alerts import alerts_raise, alerts_resolve_won_back
from retention.services.interventions import interventions_propose


def after_scoring(*, run: ScoringRun, now: dt.datetime) -> dict:
    """Alerts, then proposals from the alerts just raised (campaigns target rules)."""
    started = time.perf_counter()
    frame = run_frame(run)  # read once for both
    won_back = alerts_resolve_won_back(now=now)
    raised = alerts_raise(run=run, now=now, frame=frame)
    alerts_seconds = time.perf_counter() - started
    proposed = interventions_propose(run=run, now=now, frame=frame)
    return {
        "run": run.pk,
        "as_of": run.as_of.isoformat(),
        "won_back": won_back,
        "alerts": raised,
        "interventions": {name: asdict(p) for name, p in proposed.items()},
        "seconds": {
            "alerts": round(alerts_seconds, 2),
            "interventions": round(time.perf_counter() - started - alerts_seconds, 2),
        },
    }


def nightly_pipeline(*, as_of: dt.date, now: dt.datetime) -> dict:
    run = score_customers(as_of=as_of)
    return after_scoring(run=run, now=now)

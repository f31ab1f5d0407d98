"""The nightly pipeline: score everyone, then fold the scores into cases, propose
interventions, rank the cases by what acting on them is worth and plan each queue's day
within its capacity. Each step is idempotent for a day, so a re-run only finishes what is
left."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import asdict

from core.bulk import analyze
from ml.models import ScoringRun
from ml.selectors import run_frame
from ml.services import score_customers
from retention.models import Alert
from retention.services.alerts import alerts_raise, alerts_resolve_won_back
from retention.services.cases import cases_plan, cases_prioritise
from retention.services.interventions import interventions_propose


def after_scoring(*, run: ScoringRun, now: dt.datetime) -> dict:
    """Cases, then proposals for them (campaigns target rules, tiers and stages), then
    each case's priority from its best proposal and the day's to-do lists."""
    started = time.perf_counter()
    frame = run_frame(run)  # read once for both
    won_back = alerts_resolve_won_back(now=now)
    raised = alerts_raise(run=run, now=now, frame=frame)
    cases_seconds = time.perf_counter() - started
    proposed = interventions_propose(run=run, now=now, frame=frame)
    proposals_seconds = time.perf_counter() - started - cases_seconds
    cases_prioritise()
    plan = cases_plan(day=run.as_of, now=now)
    # Today's lists are read all day from the cases the night rewrote: without fresh
    # statistics the planner takes a queue's partial index for the whole table and sorts
    # the queue on every page view.
    analyze(Alert)
    return {
        "run": run.pk,
        "as_of": run.as_of.isoformat(),
        "won_back": won_back,
        "alerts": raised,
        "interventions": {name: asdict(p) for name, p in proposed.items()},
        "plan": asdict(plan),
        "seconds": {
            "cases": round(cases_seconds, 2),
            "interventions": round(proposals_seconds, 2),
            "plan": round(time.perf_counter() - started - cases_seconds - proposals_seconds, 2),
        },
    }


def nightly_pipeline(*, as_of: dt.date, now: dt.datetime) -> dict:
    run = score_customers(as_of=as_of)
    return after_scoring(run=run, now=now)

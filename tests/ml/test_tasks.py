"""The scheduled ml jobs on a real worker: safe twice, never two at once."""

import datetime as dt

import pytest

from core.locks import lock_acquire, lock_release
from ml.models import ModelVersion, ScoringRun
from ml.services import train_models
from ml.tasks import retrain, score_all
from tests.ml.history import simulated_shop

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture
def shop(transactional_db):
    simulated_shop(customers=800, start="2024-07-01", end="2026-06-30", seed=3)


def test_nightly_scoring_runs_once_per_day_and_skips_while_locked(shop, live_worker):
    train_models(as_of=dt.date(2026, 6, 30), algorithms=["recency_baseline"])

    first = score_all.delay("2026-06-30").get(timeout=120)
    assert ScoringRun.objects.get(pk=first["run"]).status == ScoringRun.Status.DONE
    assert score_all.delay("2026-06-30").get(timeout=60) == first
    assert ScoringRun.objects.count() == 1

    token = lock_acquire(name="ml.score", ttl=dt.timedelta(minutes=5))
    try:
        assert "skipped" in score_all.delay("2026-07-01").get(timeout=60)
    finally:
        lock_release(name="ml.score", token=token)
    assert ScoringRun.objects.count() == 1


def test_weekly_retraining_trains_once_per_day(shop, live_worker, settings):
    result = retrain.delay("2026-06-30").get(timeout=300)
    assert ModelVersion.objects.get(pk=result["best"]).status == ModelVersion.Status.CHAMPION
    trained = ModelVersion.objects.count()
    assert "already trained" in retrain.delay("2026-06-30").get(timeout=60)["skipped"]
    assert ModelVersion.objects.count() == trained

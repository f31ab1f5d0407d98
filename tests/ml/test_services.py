import datetime as dt
import json

import numpy as np
import pytest
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command

from customers.models import Customer
from ml.features import FEATURE_NAMES
from ml.models import ChurnDefinition, CustomerScore, ModelVersion, ScoringRun
from ml.selectors import NotReady, active_definition, latest_scores, run_frame, score_history
from ml.services import (
    cutoff_data,
    gate_and_promote,
    load_model,
    promote,
    rollback,
    score_customers,
    train_models,
    with_baseline,
)
from tests.ml.history import simulated_shop

AS_OF = dt.date(2026, 6, 30)
FAST = ["recency_baseline", "logistic_regression", "lightgbm"]


@pytest.fixture(scope="module")
def trained_once(django_db_setup, django_db_blocker):
    """One shop and one training for the module (training is the slow part); each test
    still runs in its own transaction, so what a test changes is rolled back."""
    with django_db_blocker.unblock():
        simulated_shop(customers=3000, start="2024-07-01", end="2026-06-30", seed=7)
        result = train_models(as_of=AS_OF, algorithms=FAST)
    yield result
    with django_db_blocker.unblock():
        for model in (CustomerScore, ScoringRun, ModelVersion, ChurnDefinition, Customer):
            model.objects.all().delete()


@pytest.fixture
def trained(trained_once, db):
    for version in trained_once.candidates:
        version.refresh_from_db()
    return trained_once


@pytest.fixture
def shop(trained):
    ModelVersion.objects.all().delete()


def test_training_registers_candidates_with_holdout_metrics_and_a_champion(trained):
    versions = ModelVersion.objects.order_by("id")
    assert [v.algorithm for v in versions] == FAST
    best = trained.best
    assert trained.promoted and best.status == ModelVersion.Status.CHAMPION
    assert best.holdout_cutoff == AS_OF - dt.timedelta(days=90)
    assert max(dt.date.fromisoformat(c) for c in best.training_cutoffs) == AS_OF - dt.timedelta(
        days=180
    )
    assert {"auc", "pr_auc", "brier", "log_loss", "top_decile_lift", "calibration"} <= set(
        best.metrics
    )
    assert best.metrics["validation_folds"] == 3 and best.metrics["validation_auc_std"] > 0
    baseline = versions.get(algorithm="recency_baseline")
    assert best.metrics["auc"] > baseline.metrics["auc"]
    assert best.library_versions["lightgbm"] and len(best.checksum) == 64
    model = load_model(best)
    assert model.features == best.features


def test_a_tampered_artefact_is_refused(trained):
    version = trained.best
    version.artifact = bytes(version.artifact) + b"x"
    with pytest.raises(ValueError, match="checksum"):
        load_model(version)


def test_gate_keeps_a_better_champion_and_rollback_restores_the_previous(trained):
    first = trained.best
    assert first.status == ModelVersion.Status.CHAMPION
    # A worse candidate (recency only) must not replace the champion.
    again = train_models(as_of=AS_OF, algorithms=["recency_baseline"])
    assert not again.promoted and "vs champion" in again.gate
    first.refresh_from_db()
    assert first.status == ModelVersion.Status.CHAMPION

    # Promoted by hand, then rolled back: the first champion returns, only one at a time.
    promote(version=again.best)
    assert ModelVersion.objects.filter(status="champion").get() == again.best
    assert rollback() == first
    assert ModelVersion.objects.filter(status="champion").get() == first
    with pytest.raises(ValueError, match="no predecessor"):
        rollback()


def test_recency_alone_is_always_trained():
    assert with_baseline(["lightgbm"]) == ["recency_baseline", "lightgbm"]
    assert with_baseline(["lightgbm", "recency_baseline"]) == ["recency_baseline", "lightgbm"]


def test_the_gate_never_promotes_a_model_below_recency_alone(trained):
    baseline = ModelVersion.objects.get(algorithm="recency_baseline")
    candidate = ModelVersion.objects.get(algorithm="lightgbm")
    candidate.metrics["auc"] = baseline.metrics["auc"] - 0.01
    ModelVersion.objects.update(status=ModelVersion.Status.RETIRED)
    holdout = cutoff_data(as_of=AS_OF - dt.timedelta(days=90), definition=active_definition())
    promoted, gate = gate_and_promote(candidate=candidate, baseline=baseline, holdout=holdout)
    assert promoted and ModelVersion.objects.get(status="champion") == baseline
    assert "is below recency alone's" in gate


def test_scoring_writes_one_row_per_customer_with_tier_value_and_reasons(trained):
    run = score_customers(as_of=AS_OF)
    assert run.status == ScoringRun.Status.DONE
    scores = CustomerScore.objects.filter(run=run)
    assert (
        scores.count()
        == run.customers_scored
        == (
            Customer.objects.filter(
                orders__placed_at__lt=dt.datetime(2026, 7, 1, tzinfo=dt.UTC), orders__status="paid"
            )
            .distinct()
            .count()
        )
    )
    probabilities = np.array(scores.values_list("probability", flat=True))
    assert ((probabilities >= 0) & (probabilities <= 1)).all()
    assert sum(run.tier_counts.values()) == run.customers_scored
    definition = ChurnDefinition.objects.get(is_active=True)
    for s in scores.order_by("?")[:200]:
        assert s.tier == definition.tier(s.probability)
        assert s.value_at_risk == pytest.approx(s.probability * s.expected_spend, abs=0.02)
        assert 1 <= len(s.reasons) <= 3 and all(isinstance(r, str) and r for r in s.reasons)
    new = scores.filter(source=CustomerScore.Source.BGNBD)
    assert new.exists()
    assert all("too little history" in s.reasons[0] for s in new[:20])
    assert set(run.drift) >= {"recency_days", "__score__"}
    assert latest_scores().count() == run.customers_scored
    customer = scores.first().customer_id
    assert [s.run_id for s in score_history(customer)] == [run.pk]
    kept = run_frame(run)
    assert len(kept) == run.customers_scored and set(FEATURE_NAMES) < set(kept.columns)
    stored = scores.get(customer_id=customer)
    assert kept.loc[customer, "probability"] == stored.probability
    assert kept.loc[customer, "tier"] == stored.tier
    assert kept.loc[customer, "stage"] == stored.stage != ""
    assert sum(run.stage_counts.values()) == run.customers_scored


def test_scoring_leaves_out_customers_whose_data_was_erased(trained):
    buyers = Customer.objects.filter(orders__status="paid").distinct().order_by("pk")
    erased = list(buyers.values_list("pk", flat=True)[:3])
    Customer.objects.filter(pk__in=erased).update(erased_at=dt.datetime(2026, 6, 1, tzinfo=dt.UTC))
    run = score_customers(as_of=AS_OF)
    assert run.customers_scored > 0
    assert not CustomerScore.objects.filter(run=run, customer_id__in=erased).exists()
    assert not set(erased) & set(run_frame(run).index)


def test_scoring_the_same_day_twice_does_nothing_new_and_old_runs_are_pruned(trained):
    first = score_customers(as_of=AS_OF)
    assert score_customers(as_of=AS_OF) == first
    later = [score_customers(as_of=AS_OF + dt.timedelta(days=d), keep_runs=2) for d in (1, 2)]
    assert list(ScoringRun.objects.order_by("as_of")) == later
    assert not CustomerScore.objects.filter(run=first).exists()
    assert not default_storage.exists(first.frame.name)


def test_scoring_refuses_without_a_champion_or_after_the_definition_changed(shop):
    with pytest.raises(NotReady, match="no champion"):
        score_customers(as_of=AS_OF)
    train_models(as_of=AS_OF, algorithms=["recency_baseline"])
    definition = ChurnDefinition.objects.get(is_active=True)
    definition.horizon_days = 60
    definition.save()
    with pytest.raises(NotReady, match="definition changed"):
        score_customers(as_of=AS_OF)
    with pytest.raises(CommandError, match="definition changed"):
        call_command("score", "--as-of", "2026-06-30")


def test_backtest_command_prints_json_per_model_and_names_the_champion(shop, capsys):
    call_command(
        "backtest",
        "--as-of",
        "2026-03-31",
        "--horizon-days",
        "90",
        "--algorithms",
        "recency_baseline,lightgbm",
        "--json",
    )
    results = json.loads(capsys.readouterr().out)
    assert {r["model"] for r in results} == {"recency_baseline", "lightgbm"}
    assert all({"auc", "pr_auc", "brier", "champion"} <= set(r) for r in results)
    assert all(r["validation_folds"] == 3 and r["validation_auc_std"] > 0 for r in results)
    assert sum(r["champion"] for r in results) == 1
    with pytest.raises(CommandError, match="data ends"):
        call_command("backtest", "--as-of", "2026-06-01", "--horizon-days", "90")

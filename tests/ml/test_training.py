import pickle

import numpy as np
import pandas as pd
import pytest

from ml import explain, metrics, training
from ml.training import ALGORITHMS, BASELINE, Dataset

FEATURES = ["recency_days", "orders_90d", "noise"]


def make_data(n: int, cutoff: str, seed: int) -> Dataset:
    """Churn driven by recency (strongly) and recent orders (less); 'noise' is irrelevant."""
    rng = np.random.default_rng(seed)
    recency = rng.exponential(60, n)
    orders = rng.poisson(2, n).astype(float)
    noise = rng.normal(size=n)
    logit = -1.5 + 0.03 * recency - 0.4 * orders
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    X = pd.DataFrame({"recency_days": recency, "orders_90d": orders, "noise": noise})
    X.loc[rng.random(n) < 0.05, "orders_90d"] = np.nan  # models must cope with gaps
    return Dataset(X, y, np.arange(n) + seed * n, np.full(n, np.datetime64(cutoff, "D")))


@pytest.fixture(scope="module")
def trained():
    train = make_data(6000, "2025-01-01", 1)
    for later in (make_data(6000, "2025-02-01", 2),):
        train = Dataset(
            pd.concat([train.X, later.X], ignore_index=True),
            np.concatenate([train.y, later.y]),
            np.concatenate([train.customer_ids, later.customer_ids]),
            np.concatenate([train.cutoffs, later.cutoffs]),
        )
    return training.train_zoo(train, features=FEATURES, seed=0), make_data(5000, "2025-04-01", 3)


def test_every_algorithm_of_the_zoo_trains_and_beats_chance(trained):
    models, holdout = trained
    assert [m.algorithm for m in models] == list(ALGORITHMS)
    for model in models:
        p = model.predict_proba(holdout.X)
        assert p.shape == (len(holdout.y),)
        assert np.all((p >= 0) & (p <= 1))
        assert metrics.evaluate(holdout.y, p)["auc"] > 0.7, model.algorithm


def test_hyper_parameters_are_chosen_by_the_mean_over_the_validation_folds(trained):
    models, _ = trained
    lgbm = next(m for m in models if m.algorithm == "lightgbm")
    assert len(lgbm.search) == 3
    assert all(len(s["fold_aucs"]) == training.VALIDATION_FOLDS for s in lgbm.search)
    best = max(lgbm.search, key=lambda s: s["inner_auc"])
    # Early stopping on each fold's validation rows sets the final number of trees.
    assert lgbm.params == {**best["params"], "n_estimators": round(np.mean(best["fold_trees"]))}
    assert 0 < lgbm.params["n_estimators"] < training.MAX_TREES
    assert lgbm.validation_auc == pytest.approx(np.mean(best["fold_aucs"]))
    assert lgbm.validation_folds == 3 and lgbm.validation_auc_std > 0
    assert 0 < lgbm.validation_brier < 0.25


def test_lightgbm_grids_grow_with_the_rows_and_hold_known_directions():
    small = training._lightgbm_grid(1_500, FEATURES)
    large = training._lightgbm_grid(60_000, FEATURES)
    assert max(g["num_leaves"] for g in small) < min(g["num_leaves"] for g in large)
    assert max(g["min_child_samples"] for g in small) < min(g["min_child_samples"] for g in large)
    assert all(g["monotone_constraints"] == [1, -1, 0] for g in small + large)
    assert "monotone_constraints" not in training._lightgbm_grid(1_500, ["noise"])[0]


def test_lightgbm_churn_never_falls_as_silence_grows_or_rises_with_orders(trained):
    models, holdout = trained
    lgbm = next(m for m in models if m.algorithm == "lightgbm")
    inner = explain._uncalibrated(lgbm.estimator)
    rows = holdout.X.iloc[:200]
    longer = inner.predict(rows.assign(recency_days=rows["recency_days"] + 30), raw_score=True)
    more = inner.predict(rows.assign(orders_90d=rows["orders_90d"] + 1), raw_score=True)
    now = inner.predict(rows, raw_score=True)
    assert (longer >= now - 1e-12).all() and (more <= now + 1e-12).all()


def same_customers_a_month_apart(n: int) -> Dataset:
    data = make_data(n, "2025-01-01", 1)
    later = make_data(n, "2025-02-01", 1)  # the same customers a month later
    return Dataset(
        pd.concat([data.X, later.X], ignore_index=True),
        np.concatenate([data.y, later.y]),
        np.concatenate([data.customer_ids, later.customer_ids]),
        np.concatenate([data.cutoffs, later.cutoffs]),
    )


def test_validation_customers_are_never_fitted_in_their_fold():
    data = same_customers_a_month_apart(9000)
    folds = training.validation_folds(data)
    assert len(folds) == 3
    for fit, validate in folds:
        assert validate.sum() > 2500
        assert not set(data.customer_ids[fit]) & set(data.customer_ids[validate])
        assert data.cutoffs[fit].max() <= data.cutoffs[validate].min()


def test_small_data_is_validated_over_several_deals_of_its_customers():
    data = same_customers_a_month_apart(3000)  # one deal validates 3,000 rows
    folds = training.validation_folds(data)
    assert len(folds) == 2 * 3  # two deals reach MIN_VALIDATION_ROWS
    first, second = folds[:3], folds[3:]
    for (fit, validate), (fit_again, validate_again) in zip(first, second, strict=True):
        # Fold k of each deal validates the same cut-off on other customers.
        assert data.cutoffs[validate].min() == data.cutoffs[validate_again].min()
        assert not np.array_equal(validate, validate_again)
        for f, v in ((fit, validate), (fit_again, validate_again)):
            assert not set(data.customer_ids[f]) & set(data.customer_ids[v])
            assert data.cutoffs[f].max() <= data.cutoffs[v].min()
    model = training.train_candidate(
        training.ZOO["logistic_regression"], data, features=FEATURES, seed=0
    )
    assert model.validation_folds == 3 and all(s["deals"] == 2 for s in model.search)


def validated(name, mean, std, brier=0.15):
    return training.TrainedModel(
        name,
        {},
        [],
        None,
        validation_auc=mean,
        validation_auc_std=std,
        validation_folds=3,
        validation_brier=brier,
    )


def test_the_simplest_model_within_one_standard_error_is_chosen():
    close = [validated("lightgbm", 0.80, 0.02), validated("logistic_regression", 0.797, 0.01)]
    assert training.choose(close).algorithm == "logistic_regression"
    apart = [validated("lightgbm", 0.85, 0.005), validated("logistic_regression", 0.80, 0.005)]
    assert training.choose(apart).algorithm == "lightgbm"


def test_simplicity_never_costs_more_than_the_acceptance_allows():
    # Noisy folds (one standard error 0.017) no longer excuse trailing by 0.01 AUC...
    noisy = [validated("random_forest", 0.80, 0.03), validated("logistic_regression", 0.79, 0.03)]
    assert training.choose(noisy).algorithm == "random_forest"
    # ...nor a Brier score more than BRIER_GIVE worse than the best model's.
    worse = [
        validated("ensemble", 0.80, 0.03, brier=0.150),
        validated("lightgbm", 0.799, 0.03, brier=0.153),
        validated("logistic_regression", 0.798, 0.03, brier=0.1515),
    ]
    assert training.choose(worse).algorithm == "logistic_regression"
    worse[2].validation_brier = 0.1525
    assert training.choose(worse).algorithm == "ensemble"


def test_calibrated_models_are_close_to_the_observed_churn_rate(trained):
    models, holdout = trained
    for model in models:
        p = model.predict_proba(holdout.X)
        assert abs(p.mean() - holdout.y.mean()) < 0.05, model.algorithm


def test_the_baseline_only_looks_at_recency(trained):
    models, holdout = trained
    baseline = next(m for m in models if m.algorithm == BASELINE)
    assert baseline.features == ["recency_days"]
    shuffled = holdout.X.assign(orders_90d=0.0, noise=99.0)
    assert np.allclose(baseline.predict_proba(holdout.X), baseline.predict_proba(shuffled))


def test_trained_models_survive_pickling_for_the_registry(trained):
    models, holdout = trained
    for model in models:
        clone = pickle.loads(pickle.dumps(model))
        assert np.allclose(clone.predict_proba(holdout.X), model.predict_proba(holdout.X))


def test_each_model_explains_recency_as_the_main_reason_for_long_silent_customers(trained):
    models, holdout = trained
    reference = holdout.X.median()
    silent = holdout.X.assign(recency_days=400.0, orders_90d=0.0)
    for model in models:
        contrib = explain.contributions(model, silent, reference=reference)
        assert contrib.shape == (len(silent), len(model.features))
        top = explain.top_reasons(contrib, model.features, k=1)
        share = np.mean([bool(r) and r[0][0] == "recency_days" for r in top])
        assert share > 0.8, (model.algorithm, share)


def test_lightgbm_contributions_add_up_to_its_raw_score(trained):
    models, holdout = trained
    lgbm = next(m for m in models if m.algorithm == "lightgbm")
    inner = explain._uncalibrated(lgbm.estimator)
    full = inner.predict(holdout.X[FEATURES], pred_contrib=True)
    raw = inner.predict(holdout.X[FEATURES], raw_score=True)
    assert np.allclose(full.sum(axis=1), raw)


def test_it_refuses_unknown_algorithms():
    with pytest.raises(ValueError, match="unknown algorithms: xgboost"):
        training.train_zoo(
            make_data(100, "2025-01-01", 1), features=FEATURES, algorithms=["xgboost"]
        )


def test_metrics_report_lift_capture_and_calibration():
    y = np.array([1, 1, 0, 0, 0, 0, 0, 0, 0, 0] * 10)
    p = np.where(y == 1, 0.9, 0.1)
    m = metrics.evaluate(y, p, threshold=0.5)
    assert m["auc"] == 1.0 and m["precision"] == 1.0 and m["recall"] == 1.0
    assert m["top_decile_lift"] == pytest.approx(5.0)
    assert m["top_decile_capture"] == pytest.approx(0.5)
    assert len(m["calibration"]) == 10
    with pytest.raises(ValueError, match="both churned and retained"):
        metrics.evaluate(np.zeros(5), np.zeros(5))


def test_the_ensemble_stacks_its_tuned_members_and_is_explained_through_them(trained):
    models, holdout = trained
    by_name = {m.algorithm: m for m in models}
    ensemble = by_name[training.ENSEMBLE]
    assert ensemble.params == {m: by_name[m].params for m in training.ENSEMBLE_MEMBERS}
    stacker = ensemble.estimator
    assert [name for name, _ in stacker.members_] == list(training.ENSEMBLE_MEMBERS)
    assert (stacker.weights_ >= 0).all() and stacker.weights_.sum() > 0.5

    probability, contrib = explain.predict_and_explain(
        ensemble, holdout.X, reference=holdout.X.median()
    )
    np.testing.assert_allclose(probability, ensemble.predict_proba(holdout.X), atol=1e-9)
    # Members' contributions times their weights add up to the ensemble's log-odds.
    log_odds = np.log(probability / (1 - probability))
    assert np.ptp(log_odds - contrib.sum(axis=1)) < 1e-4
    np.testing.assert_allclose(
        explain.contributions(ensemble, holdout.X, reference=holdout.X.median()), contrib
    )

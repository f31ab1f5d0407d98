import lightgbm as lgb
import numpy as np
import pandas as pd

from ml.explain import _lightgbm


def test_lightgbm_path_contributions_sum_to_the_raw_score_and_agree_with_treeshap():
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(4000, 6)), columns=[f"f{i}" for i in range(6)])
    logit = 2 * X["f0"] - 1.5 * X["f1"] * (X["f2"] > 0) + 0.5 * X["f3"]
    y = (logit + rng.logistic(size=len(X)) > 0).astype(int)
    model = lgb.LGBMClassifier(n_estimators=80, num_leaves=15, verbose=-1).fit(X, y)

    raw_from_leaves, paths = _lightgbm(model, X, chunk=1500)  # chunks change nothing
    shap = model.predict(X, pred_contrib=True)
    raw = model.predict(X, raw_score=True)
    np.testing.assert_allclose(raw_from_leaves, raw, atol=1e-9)
    # Additive: the raw score is the contributions plus one constant (the roots' values),
    # up to the float32 the contributions are kept in.
    assert np.ptp(raw - paths.sum(axis=1, dtype=np.float64)) < 1e-5
    leading = paths.argmax(axis=1)
    shap_top2 = np.argsort(-shap[:, :-1], axis=1)[:, :2]
    assert (leading == shap_top2[:, 0]).mean() > 0.75
    assert (shap_top2 == leading[:, None]).any(axis=1).mean() > 0.9
    assert np.abs(paths[:, 4:]).mean() < np.abs(paths[:, 0]).mean() / 5  # noise features


def test_one_pass_scoring_gives_the_calibrated_models_own_probabilities():
    from sklearn.calibration import CalibratedClassifierCV

    from ml.explain import predict_and_explain
    from ml.training import TrainedModel

    rng = np.random.default_rng(1)
    X = pd.DataFrame(rng.normal(size=(3000, 4)), columns=[f"f{i}" for i in range(4)])
    y = (X["f0"] - X["f1"] + rng.logistic(size=len(X)) > 0).astype(int)
    for method in ("isotonic", "sigmoid"):
        inner = lgb.LGBMClassifier(n_estimators=40, num_leaves=7, verbose=-1)
        estimator = CalibratedClassifierCV(inner, method=method, cv=3, ensemble=False)
        model = TrainedModel("lightgbm", {}, list(X.columns), estimator.fit(X, y))
        probability, contrib = predict_and_explain(model, X, reference=X.median())
        np.testing.assert_allclose(probability, model.predict_proba(X), atol=1e-9)
        assert contrib.shape == X.shape

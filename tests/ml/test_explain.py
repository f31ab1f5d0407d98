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

    paths = _lightgbm(model, X, chunk=1500)  # chunking must not change anything
    shap = model.predict(X, pred_contrib=True)
    raw = model.predict(X, raw_score=True)
    # Additive: the raw score is the contributions plus one constant (the roots' values).
    assert np.ptp(raw - paths.sum(axis=1)) < 1e-6
    leading = paths.argmax(axis=1)
    shap_top2 = np.argsort(-shap[:, :-1], axis=1)[:, :2]
    assert (leading == shap_top2[:, 0]).mean() > 0.75
    assert (shap_top2 == leading[:, None]).any(axis=1).mean() > 0.9
    assert np.abs(paths[:, 4:]).mean() < np.abs(paths[:, 0]).mean() / 5  # noise features

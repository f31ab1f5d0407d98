"""Quality of churn probabilities, in the numbers a retention team acts on.

AUC says whether the ranking is right; Brier and log loss whether the probabilities can be
taken at face value (they feed value at risk); precision/recall at the alert threshold,
top-decile lift and capture say what a campaign aimed at the riskiest tenth would catch.
"""

from __future__ import annotations

import numpy as np
from sklearn import metrics as skm


def calibration_table(y: np.ndarray, p: np.ndarray, *, bins: int = 10) -> list[dict[str, float]]:
    """Mean predicted vs observed churn per decile of predicted probability (lowest first)."""
    order = np.argsort(p, kind="stable")
    rows = []
    for chunk in np.array_split(order, bins):
        if chunk.size == 0:
            continue
        rows.append(
            {
                "n": int(chunk.size),
                "predicted": float(p[chunk].mean()),
                "observed": float(y[chunk].mean()),
            }
        )
    return rows


def roc_points(y: np.ndarray, p: np.ndarray, *, most: int = 60) -> list[list[float]]:
    """The ROC curve as at most ``most`` (false positive rate, true positive rate) pairs,
    rounded to 4 places: enough to draw it, small enough to keep with every version."""
    fpr, tpr, _ = skm.roc_curve(y, p, drop_intermediate=True)
    if fpr.size > most:
        keep = np.unique(np.linspace(0, fpr.size - 1, most).round().astype(int))
        fpr, tpr = fpr[keep], tpr[keep]
    return [[round(float(f), 4), round(float(t), 4)] for f, t in zip(fpr, tpr, strict=True)]


def evaluate(y, p, *, threshold: float = 0.5) -> dict[str, object]:
    """All metrics for one model on one labelled cut-off."""
    y = np.asarray(y, dtype=int)
    p = np.clip(np.asarray(p, dtype=float), 1e-7, 1 - 1e-7)
    if y.size == 0 or y.min() == y.max():
        raise ValueError("evaluation needs both churned and retained customers")
    flagged = p >= threshold
    top = np.argsort(-p, kind="stable")[: max(1, y.size // 10)]
    base_rate = float(y.mean())
    return {
        "n": int(y.size),
        "churn_rate": base_rate,
        "auc": float(skm.roc_auc_score(y, p)),
        "pr_auc": float(skm.average_precision_score(y, p)),
        "brier": float(skm.brier_score_loss(y, p)),
        "log_loss": float(skm.log_loss(y, p)),
        "threshold": threshold,
        "precision": float(skm.precision_score(y, flagged, zero_division=0)),
        "recall": float(skm.recall_score(y, flagged, zero_division=0)),
        "f1": float(skm.f1_score(y, flagged, zero_division=0)),
        "top_decile_lift": float(y[top].mean() / base_rate) if base_rate else 0.0,
        "top_decile_capture": float(y[top].sum() / y.sum()),
        "calibration": calibration_table(y, p),
        "roc": roc_points(y, p),
    }

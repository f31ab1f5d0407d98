import json

import numpy as np
import pandas as pd
import pytest

from ml.features import FEATURE_NAMES
from ml.models import ChurnDefinition, RiskTier
from ml.reasons import NOTHING_POINTS_TO_LEAVING, as_json_lists, reason_texts


def frame(**values):
    base = dict.fromkeys(FEATURE_NAMES, 0.0)
    return pd.DataFrame([{**base, **row} for row in values["rows"]])


def test_reasons_name_the_strongest_pushes_in_plain_words():
    f = frame(
        rows=[
            {"recency_days": 74.2, "gap_mean_days": 21.0, "last_rating": 2.0, "visits_30d": 0},
            {"recency_days": 5.0, "gap_mean_days": np.nan, "spend_trend": -0.6, "logins_30d": 1},
        ]
    )
    names = ["recency_days", "last_rating", "visits_30d", "spend_trend", "logins_30d"]
    contrib = np.array(
        [
            [1.5, 0.7, 0.2, -0.1, 0.0],
            [-0.3, -0.2, -0.1, 0.9, 0.4],
        ]
    )
    texts = reason_texts(f, contrib, names, horizon_days=90)
    assert texts.iloc[0].tolist() == [
        "no order for 74 days; usually orders every 21",
        "last review 2.0 of 5 stars",
        "no visits in the last 30 days",
    ]
    # Only features that push towards churn are reasons; 60% trend down = 4x less.
    assert texts.iloc[1].tolist()[:2] == [
        "spent 75% less in the last 90 days than in the 90 before",
        "1 login in the last 30 days",
    ]
    assert texts.iloc[1].isna().tolist() == [False, False, True]
    lists = as_json_lists(texts).map(json.loads)
    assert lists.iloc[1] == texts.iloc[1].dropna().tolist()
    assert lists.iloc[0][0].startswith("no order for 74 days")


def test_a_customer_nothing_pushes_towards_churn_is_told_so():
    names = ["recency_days", "spend_trend"]
    f = frame(rows=[{"recency_days": 3, "spend_trend": 0.5}])
    texts = reason_texts(f, np.array([[-0.4, 0.0]]), names, horizon_days=90)
    assert texts.iloc[0].tolist()[0] == NOTHING_POINTS_TO_LEAVING
    assert texts.iloc[0].isna().tolist() == [False, True]
    assert as_json_lists(texts).map(json.loads).iloc[0] == [NOTHING_POINTS_TO_LEAVING]


def test_missing_values_read_as_what_they_mean():
    f = frame(rows=[{"overdue_ratio": np.nan, "days_since_login": np.nan, "last_rating": np.nan}])
    names = ["overdue_ratio", "days_since_login", "last_rating"]
    texts = reason_texts(f, np.array([[0.3, 0.2, 0.1]]), names, horizon_days=90)
    assert texts.iloc[0].tolist() == [
        "has ordered only once, so there is no rhythm yet",
        "has never logged in",
        "has never written a review",
    ]


def test_every_template_renders_a_typical_customer_without_nan_text():
    f = frame(rows=[dict.fromkeys(FEATURE_NAMES, 3.0) | {"bgnbd_p_alive": 0.4}])
    f["spend_trend"] = -0.2
    contrib = np.ones((1, len(FEATURE_NAMES)))
    for j, name in enumerate(FEATURE_NAMES):
        only = np.zeros_like(contrib)
        only[0, j] = 1.0
        text = reason_texts(f, only, FEATURE_NAMES, horizon_days=90).iloc[0, 0]
        assert isinstance(text, str) and "nan" not in text.lower() and "<NA>" not in text, name


def test_unknown_feature_has_no_template():
    with pytest.raises(ValueError, match="mystery"):
        reason_texts(frame(rows=[{}]), np.ones((1, 1)), ["mystery"], horizon_days=90)


@pytest.mark.parametrize(
    ("probability", "tier"),
    [
        (0.95, RiskTier.HIGH),
        (0.7, RiskTier.HIGH),
        (0.69, RiskTier.MEDIUM),
        (0.4, RiskTier.MEDIUM),
        (0.39, RiskTier.LOW),
        (0.0, RiskTier.LOW),
    ],
)
def test_tiers_follow_the_admins_thresholds(probability, tier):
    definition = ChurnDefinition(high_threshold=0.7, medium_threshold=0.4)
    assert definition.tiers(np.array([probability]))[0] == tier
    assert definition.tier(probability) == tier


def test_spend_trend_reads_right_at_its_extremes():
    f = frame(rows=[{"spend_trend": -1.0}, {"spend_trend": 1.0}, {"spend_trend": 0.2}])
    texts = reason_texts(f, np.ones((3, 1)), ["spend_trend"], horizon_days=90)["reason_1"]
    assert texts.tolist() == [
        "spent 100% less in the last 90 days than in the 90 before",
        "all their spend is from the last 90 days",
        "spent 50% more in the last 90 days than in the 90 before",
    ]

"""Lifecycle stages from the churn probability, P(alive) and recency, with thresholds an
admin edits on the churn definition."""

import numpy as np
import pytest
from django.core.exceptions import ValidationError

from ml.models import STAGE_DAYS, STAGE_ORDER, STAGE_SHARE, ChurnDefinition
from ml.selectors import active_definition
from ml.stages import StageThresholds, stages

THRESHOLDS = StageThresholds(
    at_risk_from=0.5, lapsing_after_days=120, lost_after_days=365, lost_below_p_alive=0.1
)


def test_each_customer_gets_the_stage_its_probability_p_alive_and_recency_say():
    got = stages(
        THRESHOLDS,
        probability=np.array([0.2, 0.6, 0.6, 0.9, 0.2, 0.99, 0.7]),
        p_alive=np.array([0.9, 0.9, 0.9, 0.05, 0.9, np.nan, 0.5]),
        recency_days=np.array([10, 30, 150, 40, 400, 10, np.nan]),
    )
    assert got.tolist() == [
        "active",  # unlikely to churn
        "at_risk",  # likely to churn, ordered recently
        "lapsing",  # likely to churn and quiet for a while already
        "lost",  # the purchase pattern has almost surely stopped
        "lost",  # no order for over a year, whatever the model says
        "at_risk",  # no P(alive): staged by probability and recency
        "at_risk",  # no recency: never lapsing or lost by it
    ]


@pytest.mark.django_db
def test_thresholds_no_customer_could_be_staged_by_are_refused_naming_the_field():
    bad = {
        "at_risk_from": (1.0, STAGE_SHARE),
        "lost_below_p_alive": (0.0, STAGE_SHARE),
        "lapsing_after_days": (0, STAGE_DAYS),
        "lost_after_days": (100, STAGE_ORDER),
    }
    for field, (value, message) in bad.items():
        definition = ChurnDefinition(is_active=False, **{field: value})
        with pytest.raises(ValidationError) as refused:
            definition.full_clean()
        assert refused.value.message_dict[field] == [message]
    ChurnDefinition(is_active=False, lapsing_after_days=60, lost_after_days=200).full_clean()


@pytest.mark.django_db
def test_the_admin_refuses_stage_thresholds_out_of_order(client, admin_user):
    client.force_login(admin_user)
    definition = active_definition()
    form = {
        "name": definition.name,
        "horizon_days": 90,
        "qualifying_statuses": '["paid"]',
        "min_orders": 1,
        "min_history_days": 30,
        "high_threshold": 0.7,
        "medium_threshold": 0.4,
        "at_risk_from": 0.5,
        "lapsing_after_days": 200,
        "lost_after_days": 150,
        "lost_below_p_alive": 0.1,
        "is_active": "on",
    }
    page = client.post(f"/admin/ml/churndefinition/{definition.pk}/change/", form)
    assert page.status_code == 200 and STAGE_ORDER in page.content.decode()
    definition.refresh_from_db()
    assert definition.lost_after_days == 365

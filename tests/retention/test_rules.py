import numpy as np
import pandas as pd
import pytest
from django.core.exceptions import ValidationError

from retention.models import RiskRule, RuleCondition
from retention.rules import Condition, matches
from retention.services.alerts import rule_matches
from tests.factories import customer, scored_run

pytestmark = pytest.mark.django_db


def frame(**columns) -> pd.DataFrame:
    return pd.DataFrame(columns, index=range(1, len(next(iter(columns.values()))) + 1))


def test_conditions_compare_with_values_tiers_the_shop_average_and_other_fields():
    f = frame(
        spend_90d=[10.0, 50.0, 90.0],
        tier=["low", "medium", "high"],
        recency_days=[5.0, 40.0, 80.0],
        days_since_review=[10.0, 30.0, np.nan],
    )
    assert matches(f, [Condition("spend_90d", "<", "shop_average")]).tolist() == [1, 0, 0]
    assert matches(f, [Condition("tier", ">=", value=1.0)]).tolist() == [0, 1, 1]
    after_review = Condition("recency_days", ">", "field", other_field="days_since_review")
    assert matches(f, [after_review]).tolist() == [0, 1, 0]  # never reviewed: no match
    assert not matches(f, []).any()


@pytest.mark.smoke
def test_an_unknown_field_or_a_bad_value_is_a_form_error():
    rule = RiskRule.objects.create(name="test rule")
    with pytest.raises(ValidationError) as unknown:
        RuleCondition(rule=rule, field="shoe_size", operator=">", value="3").full_clean()
    assert "field" in unknown.value.message_dict
    with pytest.raises(ValidationError) as bad:
        RuleCondition(rule=rule, field="recency_days", operator=">", value="ninety").full_clean()
    assert "not a number" in str(bad.value.message_dict["value"])
    with pytest.raises(ValidationError) as tier:
        RuleCondition(rule=rule, field="tier", operator="=", value="purple").full_clean()
    assert "low, medium, high" in str(tier.value.message_dict["value"])
    RuleCondition(rule=rule, field="tier", operator="=", value="High").full_clean()


def test_the_admin_rejects_a_rule_with_a_bad_condition_and_previews_matches(client, admin_user):
    client.force_login(admin_user)
    form = {
        "name": "Silent big spenders",
        "severity": "medium",
        "priority": 100,
        "cooldown_days": 14,
        "escalate_after_hours": 24,
        "queue": "shared",
        "is_active": "on",
        "conditions-TOTAL_FORMS": 1,
        "conditions-INITIAL_FORMS": 0,
        "conditions-0-field": "spend_365d",
        "conditions-0-operator": ">",
        "conditions-0-compare_to": "value",
        "conditions-0-value": "lots",
    }
    response = client.post("/admin/retention/riskrule/add/", form)
    assert response.status_code == 200 and "is not a number" in response.content.decode()
    assert not RiskRule.objects.filter(name="Silent big spenders").exists()

    scored_run([{"customer": customer(f"c{i}"), "spend_365d": 100.0 * i} for i in range(5)])
    form["conditions-0-value"] = "250"
    assert client.post("/admin/retention/riskrule/add/", form).status_code == 302
    rule = RiskRule.objects.get(name="Silent big spenders")
    page = client.get(f"/admin/retention/riskrule/{rule.pk}/change/").content.decode()
    assert "2 of 5 customers scored" in page


def test_default_rules_are_shipped_and_match_what_they_say():
    names = set(RiskRule.objects.values_list("name", flat=True))
    assert names >= {
        "High churn risk",
        "No login for 30 days",
        "90-day spend below the shop average",
        "Bad review, no order since",
    }
    happy = customer("happy")
    unhappy = customer("unhappy")
    run = scored_run(
        [
            {"customer": happy, "last_rating": 5, "recency_days": 40, "days_since_review": 30},
            {"customer": unhappy, "last_rating": 1, "recency_days": 40, "days_since_review": 30},
        ]
    )
    from ml.selectors import run_frame

    bad_review = RiskRule.objects.get(name="Bad review, no order since")
    assert list(rule_matches(bad_review, run_frame(run))) == [unhappy.pk]

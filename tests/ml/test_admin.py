import datetime as dt

import pytest
from django.urls import reverse

from ml.models import ModelVersion
from ml.services import score_customers, train_models
from tests.ml.history import simulated_shop


@pytest.fixture
def scored(db):
    simulated_shop(customers=600, start="2024-07-01", end="2026-06-30", seed=5)
    result = train_models(as_of=dt.date(2026, 6, 30), algorithms=["recency_baseline"])
    score_customers(as_of=dt.date(2026, 6, 30))
    return result.best


@pytest.mark.parametrize("page", ["churndefinition", "modelversion", "scoringrun", "customerscore"])
def test_ml_pages_open_for_an_admin_and_show_metrics(client, admin_user, scored, page):
    client.force_login(admin_user)
    response = client.get(reverse(f"admin:ml_{page}_changelist"))
    assert response.status_code == 200
    detail = client.get(reverse("admin:ml_modelversion_change", args=[scored.pk]))
    assert b"observed" in detail.content  # the calibration table
    assert "± " in detail.content.decode()  # validation AUC mean ± spread over the folds


def test_agents_cannot_promote_models(client, agent_user, scored):
    client.force_login(agent_user)
    response = client.get(reverse("admin:ml_modelversion_changelist"))
    assert response.status_code == 403


def test_admin_action_promotes_through_the_service(client, admin_user, scored):
    client.force_login(admin_user)
    other = train_models(as_of=dt.date(2026, 6, 30), algorithms=["decision_tree"]).best
    client.post(
        reverse("admin:ml_modelversion_changelist"),
        {"action": "make_champion", "_selected_action": [other.pk]},
    )
    assert ModelVersion.objects.get(status="champion") == other
    client.post(
        reverse("admin:ml_modelversion_changelist"),
        {"action": "roll_back", "_selected_action": [other.pk]},
    )
    assert ModelVersion.objects.get(status="champion") == scored

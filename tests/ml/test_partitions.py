"""Scores live in one partition per scoring run on PostgreSQL (ml/partitions.py)."""

import datetime as dt

import pandas as pd
import pytest
from django.db import IntegrityError, connection

from customers.synthetic.services import generate_shop
from ml.models import CustomerScore, ScoringRun
from ml.partitions import scores_drop, scores_table, scores_write
from ml.selectors import run_scores
from tests.factories import customer, scored_run

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif("connection.vendor != 'postgresql'", reason="PostgreSQL partitions"),
]


def partitions() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = 'ml_customerscore'::regclass"
        )
        return {name for (name,) in cursor.fetchall()}


def score_row(run_id: int, customer_id: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "run_id": [run_id],
            "customer_id": [customer_id],
            "probability": [0.5],
            "tier": ["medium"],
            "expected_spend": [10.0],
            "value_at_risk": [5.0],
            "source": ["model"],
            "reasons": ['["no order for 74 days"]'],
        }
    )


def test_each_run_gets_a_partition_of_its_own_and_dropping_it_removes_its_scores():
    run = scored_run([{"customer": customer("a")}, {"customer": customer("b")}])
    assert f"ml_customerscore_run{run.pk}" in partitions()
    assert CustomerScore.objects.filter(run=run).count() == 2
    scores_drop(run_ids=[run.pk])
    assert f"ml_customerscore_run{run.pk}" not in partitions()
    assert not CustomerScore.objects.filter(run=run).exists()


def test_a_score_for_an_unknown_customer_is_refused_at_the_write():
    run = scored_run([{"customer": customer("a")}])
    other = ScoringRun.objects.create(as_of=run.as_of, model_version=run.model_version)
    with pytest.raises(IntegrityError, match="customer"):
        scores_write(run_id=other.pk, frame=score_row(other.pk, 987654321))
    assert f"ml_customerscore_run{other.pk}" not in partitions()


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_runs_scores_stream_back_exactly_from_its_partition_or_the_default_one():
    people = [customer(f"c{i}") for i in range(5)]
    run = scored_run(
        [{"customer": p, "probability": 0.2 * i + 1e-12} for i, p in enumerate(people)]
    )
    by_orm = ScoringRun.objects.create(as_of=run.as_of, model_version=run.model_version)
    CustomerScore.objects.bulk_create(
        CustomerScore(
            run=by_orm,
            customer=p,
            probability=0.7 + 1e-8,
            tier="high",
            expected_spend=1.0,
            value_at_risk=0.7 + 1e-8,
        )
        for p in people[:2]
    )
    assert scores_table(run.pk) == f"ml_customerscore_run{run.pk}"
    assert scores_table(by_orm.pk) is None
    assert not connection.in_atomic_block  # so the reads stream over their own connections
    for each in (run, by_orm):
        read = run_scores(each)
        stored = CustomerScore.objects.filter(run=each)
        assert sorted(zip(read.index, read["probability"], read["tier"], strict=True)) == sorted(
            stored.values_list("customer_id", "probability", "tier")
        )


def test_replacing_the_synthetic_shop_forgets_the_runs_that_scored_its_customers():
    run = scored_run([{"customer": customer("a")}, {"customer": customer("b")}])
    generate_shop(customers=50, days=120, seed=1, end=dt.date(2026, 6, 30), replace=True)
    assert not ScoringRun.objects.exists()  # else ``score`` took the day as already scored
    assert f"ml_customerscore_run{run.pk}" not in partitions()

"""Two agents deciding the same offer at the same moment, on the database the suite runs on
(PostgreSQL, and SQLite in the smoke run): one acts, the other is told who did."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.contrib.auth.models import Group, User
from django.db import connections

from core.roles import AGENT
from retention.models import AuditEntry, Intervention, OutboxMessage
from retention.services.audit import Actor
from retention.services.interventions import AlreadyDecided, intervention_approve
from retention.services.pipeline import after_scoring
from tests.factories import NOW, campaign, customer, scored_run

pytestmark = [pytest.mark.smoke, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

PAIRS = 10


def _approve(intervention_id: int, user: User, start: threading.Barrier) -> str:
    start.wait()
    try:
        intervention_approve(
            intervention_id=intervention_id, actor=Actor.agent(user, via="admin"), now=NOW
        )
        return "approved"
    except AlreadyDecided as decided:
        return str(decided)
    finally:
        connections.close_all()


def test_the_slower_of_two_agents_approving_at_once_is_told_who_decided(agent_user):
    other = User.objects.create_user("other-agent", is_staff=True)
    other.groups.add(Group.objects.get(name=AGENT))
    people = [customer(f"race-{i}") for i in range(2 * PAIRS)]
    campaign(control_share=0.05)
    after_scoring(run=scored_run([{"customer": c, "probability": 0.9} for c in people]), now=NOW)
    ids = list(Intervention.objects.filter(state="proposed").values_list("pk", flat=True)[:PAIRS])
    assert len(ids) == PAIRS
    with ThreadPoolExecutor(2) as pool:
        for pk in ids:
            start = threading.Barrier(2)
            results = list(
                pool.map(
                    lambda user, pk=pk, start=start: _approve(pk, user, start), [agent_user, other]
                )
            )
            assert results.count("approved") == 1, results
            told = next(r for r in results if r != "approved")
            winner = ["shop-agent", "other-agent"][results.index("approved")]
            assert told.startswith(f"already queued by {winner} at "), results
            assert OutboxMessage.objects.filter(intervention_id=pk).count() == 1
            assert AuditEntry.objects.filter(intervention_id=pk, action="approved").count() == 1

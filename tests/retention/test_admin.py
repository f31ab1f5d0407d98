import pytest

from retention.models import Intervention, MessageTemplate
from retention.services.pipeline import after_scoring
from tests.factories import NOW, campaign, customer, scored_run

pytestmark = pytest.mark.django_db


def test_admins_approve_and_dismiss_offers_in_bulk_through_the_services(client, admin_user):
    people = [customer(f"c{i}") for i in range(12)]
    campaign(control_share=0.3)
    after_scoring(run=scored_run([{"customer": c, "probability": 0.9} for c in people]), now=NOW)
    proposed = list(Intervention.objects.filter(state="proposed").values_list("pk", flat=True))
    client.force_login(admin_user)
    url = "/admin/retention/intervention/"
    client.post(url, {"action": "approve_selected", "_selected_action": proposed[:3]})
    client.post(
        url,
        {
            "action": "dismiss_selected",
            "_selected_action": proposed[3:5],
            "apply": "1",
            "reason": "called already",
        },
    )
    states = dict(Intervention.objects.values_list("pk", "state"))
    assert [states[pk] for pk in proposed[:5]] == ["queued"] * 3 + ["dismissed"] * 2
    approved = Intervention.objects.get(pk=proposed[0])
    assert approved.audit.filter(action="approved", actor=admin_user, via="admin").exists()
    page = client.get(f"{url}{proposed[0]}/change/").content.decode()
    assert "queued" in page and "approved" in page


def test_message_templates_show_a_rendered_preview(client, admin_user):
    client.force_login(admin_user)
    template = MessageTemplate.objects.get(channel="email", offer_type="")
    page = client.get(f"/admin/retention/messagetemplate/{template.pk}/change/").content.decode()
    assert "Hi Anna" in page and "7F3A9C2E41B8D605" in page


def test_agents_see_alerts_but_cannot_edit_rules_or_campaigns(client, agent_user):
    client.force_login(agent_user)
    assert client.get("/admin/retention/alert/").status_code == 200
    assert client.get("/admin/retention/riskrule/add/").status_code == 403
    assert client.get("/admin/retention/campaign/add/").status_code == 403

"""Cases, second step: one open case per customer becomes a constraint, the lists agents
work get their partial indexes, every queue in use gets a row with the default capacity,
lost customers get their automatic, low-cost win-back campaign, and the roles get the new
models' permissions."""

import datetime as dt

from django.db import migrations, models

from core.roles import sync_roles

WIN_BACK = "Win back lost customers (automatic)"
CHEAP_OFFERS = ("product_recommendation", "free_shipping")


def queues_and_win_back(apps, schema_editor):
    Queue = apps.get_model("retention", "Queue")
    RiskRule = apps.get_model("retention", "RiskRule")
    Alert = apps.get_model("retention", "Alert")
    Campaign = apps.get_model("retention", "Campaign")
    Offer = apps.get_model("retention", "Offer")
    names = {"shared"}
    names |= set(RiskRule.objects.values_list("queue", flat=True))
    names |= set(Alert.objects.values_list("queue", flat=True).distinct())
    Queue.objects.bulk_create([Queue(name=n) for n in sorted(names)], ignore_conflicts=True)
    campaign, created = Campaign.objects.get_or_create(
        name=WIN_BACK,
        defaults={
            "goal": "Customers the model finds lost get one cheap offer by e-mail, sent "
            "without an agent (their cases never reach agents' queues unless a rule or "
            "campaign includes lost customers).",
            "status": "active",
            "approval_mode": "automatic",
            "target_stage": "lost",
            "channels": ["email"],
            "control_share": 0.2,
            "starts_on": dt.date.today(),
            "window_days": 30,
        },
    )
    if created:
        campaign.offers.set(Offer.objects.filter(offer_type__in=CHEAP_OFFERS, is_active=True))


def drop_stage_campaigns(apps, schema_editor):
    """Going back before stages: a campaign that targets only a stage (the win-back made
    above, or one an admin made since) has no target the older schema allows. Its offers
    go with it; one that already made interventions stops the reversal at their key."""
    Campaign = apps.get_model("retention", "Campaign")
    ids = list(
        Campaign.objects.filter(target_rule__isnull=True, target_tier="")
        .exclude(target_stage="")
        .values_list("pk", flat=True)
    )
    Campaign.offers.through.objects.filter(campaign_id__in=ids).delete()
    if ids:
        schema_editor.execute(
            f"DELETE FROM {Campaign._meta.db_table} WHERE id IN ({', '.join(['%s'] * len(ids))})",
            ids,
        )


class Migration(migrations.Migration):

    dependencies = [
        ('retention', '0013_cases'),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name='alert',
            name='one_open_alert_per_rule',
        ),
        migrations.RemoveIndex(
            model_name='alert',
            name='alert_queue',
        ),
        migrations.RemoveIndex(
            model_name='alert',
            name='alert_cooldown',
        ),
        migrations.RemoveIndex(
            model_name='alert',
            name='alert_assignee',
        ),
        migrations.AddIndex(
            model_name='alert',
            index=models.Index(models.F('queue'), models.OrderBy(models.F('priority'), descending=True), condition=models.Q(('assigned_to__isnull', True), ('state__in', ['open', 'acknowledged'])), name='case_queue'),
        ),
        migrations.AddIndex(
            model_name='alert',
            index=models.Index(models.F('assigned_to'), models.OrderBy(models.F('priority'), descending=True), condition=models.Q(('assigned_to__isnull', False)), name='case_agent'),
        ),
        migrations.AddIndex(
            model_name='alert',
            index=models.Index(condition=models.Q(('planned_on__isnull', False), ('state__in', ['open', 'acknowledged'])), fields=['planned_on'], name='case_to_do'),
        ),
        migrations.AddIndex(
            model_name='alert',
            index=models.Index(condition=models.Q(('handled_at__isnull', False)), fields=['handled_at'], name='case_handled'),
        ),
        migrations.AddIndex(
            model_name='alert',
            index=models.Index(fields=['customer', '-closed_at'], name='case_cooldown'),
        ),
        migrations.AddConstraint(
            model_name='alert',
            constraint=models.UniqueConstraint(condition=models.Q(('state__in', ['open', 'acknowledged', 'actioned'])), fields=('customer',), name='one_open_case_per_customer'),
        ),
        migrations.RunPython(queues_and_win_back, drop_stage_campaigns),
        migrations.RunPython(sync_roles, migrations.RunPython.noop),
    ]

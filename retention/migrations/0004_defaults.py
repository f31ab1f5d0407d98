"""Shipped defaults: four rules, the offer catalogue, message templates, the contact
policy, the workflow's schedules, and the agents' new permissions. Admins edit all of it."""

import json

from django.db import migrations

from core.roles import sync_roles

RULES = [
    # name, severity, priority, description, conditions (field, op, compare_to, value, other)
    (
        "High churn risk",
        "high",
        300,
        "The model puts the customer in the high-risk tier.",
        [("tier", "=", "value", "high", "")],
    ),
    (
        "Bad review, no order since",
        "high",
        250,
        "Last review rated 2 or less and no order after it.",
        [
            ("last_rating", "<=", "value", "2", ""),
            ("recency_days", ">", "field", "", "days_since_review"),
        ],
    ),
    (
        "No login for 30 days",
        "medium",
        200,
        "Used to log in, has not for a month, and is at least at medium risk.",
        [("days_since_login", ">", "value", "30", ""), ("tier", ">=", "value", "medium", "")],
    ),
    (
        "90-day spend below the shop average",
        "low",
        100,
        "Spent less than the average customer in the last 90 days and is at least at "
        "medium risk (without the risk condition this would flag most of the shop).",
        [("spend_90d", "<", "shop_average", "", ""), ("tier", ">=", "value", "medium", "")],
    ),
]

OFFERS = [
    # type, name, value, unit cost, min order, expected response
    ("percent_off", "10% off the next order", 10, 0, 0, 0.08),
    ("fixed_amount", "10 off an order of 40 or more", 10, 0, 40, 0.07),
    ("free_shipping", "Free shipping", 0, 4.90, 0, 0.05),
    ("loyalty_points", "500 bonus loyalty points", 500, 0.01, 0, 0.04),
    ("product_recommendation", "Personal product picks", 0, 0, 0, 0.02),
]

EMAIL_BODY = """Hi {{ first_name }},

we have missed you at {{ shop }}. As a thank you for being our customer: {{ offer }}.
{% if coupon %}
Your personal code: {{ coupon.code }}{% if coupon.min_order_value %} (orders from {{ coupon.min_order_value }}){% endif %}
Valid until {{ coupon.expires_at|date:"j F Y" }}.
{% endif %}{% if products %}
Picked for you:
{% for product in products %}- {{ product.name }} ({{ product.price }})
{% endfor %}{% endif %}
See you soon,
{{ shop }}"""

TEMPLATES = [
    ("email", "", "{{ first_name }}, {{ offer }} at {{ shop }}", EMAIL_BODY),
    (
        "sms",
        "",
        "",
        "{{ shop }}: {{ offer }}{% if coupon %} with code {{ coupon.code }}, valid until "
        '{{ coupon.expires_at|date:"j M" }}{% endif %}. Reply STOP to opt out.',
    ),
    ("webhook", "", "{{ offer }}", "{{ offer }}{% if coupon %} (code {{ coupon.code }}){% endif %}"),
]

SCHEDULES = [
    # name, task, crontab (minute, hour) or None for every minute / hourly
    ("Nightly retention pipeline", "retention.tasks.nightly_pipeline_task", ("30", "2")),
    ("Outbox flush", "retention.tasks.flush_outbox_task", ("*", "*")),
    ("Alert escalation", "retention.tasks.escalate_alerts_task", ("5", "*")),
    ("Campaign outcomes", "retention.tasks.evaluate_campaigns_task", ("0", "5")),
]
# The pipeline scores first, so the bare nightly scoring entry would score twice.
SUPERSEDED = "Nightly churn scoring"


def create(apps, schema_editor):
    RiskRule = apps.get_model("retention", "RiskRule")
    RuleCondition = apps.get_model("retention", "RuleCondition")
    Offer = apps.get_model("retention", "Offer")
    MessageTemplate = apps.get_model("retention", "MessageTemplate")
    ContactPolicy = apps.get_model("retention", "ContactPolicy")
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")

    for name, severity, priority, description, conditions in RULES:
        rule, created = RiskRule.objects.get_or_create(
            name=name,
            defaults={"severity": severity, "priority": priority, "description": description},
        )
        if created:
            for field, op, compare_to, value, other in conditions:
                RuleCondition.objects.create(
                    rule=rule,
                    field=field,
                    operator=op,
                    compare_to=compare_to,
                    value=value,
                    other_field=other,
                )
    for offer_type, name, value, unit_cost, min_order, response in OFFERS:
        Offer.objects.get_or_create(
            name=name,
            defaults={
                "offer_type": offer_type,
                "value": value,
                "unit_cost": unit_cost,
                "min_order_value": min_order,
                "expected_response": response,
            },
        )
    for channel, offer_type, subject, body in TEMPLATES:
        MessageTemplate.objects.get_or_create(
            channel=channel, offer_type=offer_type, defaults={"subject": subject, "body": body}
        )
    ContactPolicy.objects.get_or_create(pk=1)

    for name, task, (minute, hour) in SCHEDULES:
        crontab, _ = CrontabSchedule.objects.get_or_create(
            minute=minute,
            hour=hour,
            day_of_week="*",
            day_of_month="*",
            month_of_year="*",
            timezone="UTC",
        )
        PeriodicTask.objects.get_or_create(
            name=name, defaults={"task": task, "crontab": crontab, "kwargs": json.dumps({})}
        )
    PeriodicTask.objects.filter(name=SUPERSEDED).update(enabled=False)


def remove(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(name__in=[s[0] for s in SCHEDULES]).delete()
    PeriodicTask.objects.filter(name=SUPERSEDED).update(enabled=True)


class Migration(migrations.Migration):
    dependencies = [
        ("retention", "0003_workflow"),
        ("ml", "0003_scoring_run_frame"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [
        migrations.RunPython(create, remove),
        migrations.RunPython(sync_roles, migrations.RunPython.noop),
    ]

"""Agents may make their own link codes; beat pushes pending alert cards every minute."""

import json

from django.db import migrations

from core.roles import sync_roles

NAME = "Alert cards to chats"


def schedule(apps, schema_editor):
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    every_minute, _ = CrontabSchedule.objects.get_or_create(
        minute="*", hour="*", day_of_week="*", day_of_month="*", month_of_year="*", timezone="UTC"
    )
    PeriodicTask.objects.get_or_create(
        name=NAME,
        defaults={
            "task": "bots.tasks.push_alert_cards_task",
            "crontab": every_minute,
            "kwargs": json.dumps({}),
        },
    )


def unschedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("bots", "0001_chat_links"),
        ("retention", "0005_coupon_order_reference"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [
        migrations.RunPython(schedule, unschedule),
        migrations.RunPython(sync_roles, migrations.RunPython.noop),
    ]

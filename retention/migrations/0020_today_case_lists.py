"""The console's Today reads cases through todays_queue: the agent's waiting cases get a
partial index of their own (case_agent also holds every closed case the agent ever had),
and the two indexes of the old alert and offer queue, which nothing reads any more, go."""

from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('customers', '0004_customer_erased_at'),
        ('retention', '0019_model_audit_actions'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='alert',
            name='alert_open_value',
        ),
        migrations.RemoveIndex(
            model_name='intervention',
            name='intervention_proposed_value',
        ),
        migrations.AddIndex(
            model_name='alert',
            index=models.Index(models.F('assigned_to'), models.OrderBy(models.F('priority'), descending=True), condition=models.Q(('assigned_to__isnull', False), ('state__in', ['open', 'acknowledged'])), name='case_agent_waiting'),
        ),
    ]

"""Cases: one open alert per customer listing every rule that matched (CaseReason), with a
priority, a to-do plan and when it was handled; queues and agents with a daily capacity;
rules and campaigns that may target lifecycle stages and include lost customers.

Existing data: every alert lists its own rule; a customer's several open alerts fold into
the one of their highest-priority rule (the others close as merged, audited, their rules
and offers moving onto it); open cases get their priority from their proposed offers. The
one-open-case constraint follows in 0014, once the data satisfies it."""

import django.core.validators
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models
from django.utils import timezone

OPEN = ("open", "acknowledged", "actioned")
FOLD = "retention_case_fold"


def fold(apps, schema_editor):
    postgres = schema_editor.connection.vendor == "postgresql"
    now = timezone.now()
    marks = ", ".join(["%s"] * len(OPEN))
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO retention_casereason (alert_id, rule_id, as_of)"
            " SELECT id, rule_id, as_of FROM retention_alert"
        )
        cursor.execute(f"DROP TABLE IF EXISTS {FOLD}")
        cursor.execute(
            f"""
            CREATE TEMPORARY TABLE {FOLD} AS
            SELECT id, state, keep FROM (
                SELECT a.id, a.state, FIRST_VALUE(a.id) OVER (
                    PARTITION BY a.customer_id ORDER BY r.priority DESC, a.raised_at, a.id
                ) AS keep
                FROM retention_alert a JOIN retention_riskrule r ON r.id = a.rule_id
                WHERE a.state IN ({marks})
            ) ranked
            WHERE id <> keep
            """,
            OPEN,
        )
        cursor.execute(
            f"""
            INSERT INTO retention_casereason (alert_id, rule_id, as_of)
            SELECT f.keep, a.rule_id, MIN(a.as_of)
            FROM {FOLD} f JOIN retention_alert a ON a.id = f.id
            WHERE NOT EXISTS (SELECT 1 FROM retention_casereason h
                              WHERE h.alert_id = f.keep AND h.rule_id = a.rule_id)
            GROUP BY f.keep, a.rule_id
            """
        )
        rank = "CASE {c} WHEN 'high' THEN 3 WHEN 'medium' THEN 2 ELSE 1 END"
        cursor.execute(
            f"""
            UPDATE retention_alert SET severity = (
                SELECT CASE MAX({rank.format(c="a.severity")})
                       WHEN 3 THEN 'high' WHEN 2 THEN 'medium' ELSE 'low' END
                FROM retention_alert a
                WHERE a.id = retention_alert.id
                   OR a.id IN (SELECT f.id FROM {FOLD} f WHERE f.keep = retention_alert.id)
            )
            WHERE id IN (SELECT keep FROM {FOLD})
            """
        )
        cursor.execute(
            f"""
            UPDATE retention_intervention
            SET alert_id = (SELECT f.keep FROM {FOLD} f WHERE f.id = retention_intervention.alert_id)
            WHERE alert_id IN (SELECT id FROM {FOLD})
            """
        )
        detail = "CAST('{\"into\": ' || f.keep || '}' AS jsonb)" if postgres else (
            "'{\"into\": ' || f.keep || '}'"
        )
        cursor.execute(
            f"""
            INSERT INTO retention_auditentry
                (at, actor_kind, via, chat_id, alert_id, action, from_state, to_state, detail)
            SELECT %s, 'schedule', 'migration', '', f.id, 'merged', f.state, 'resolved', {detail}
            FROM {FOLD} f
            """,
            [now],
        )
        cursor.execute(
            f"""
            UPDATE retention_alert
            SET state = 'resolved', resolution = 'merged', closed_at = %s,
                note = 'merged into case #' || (SELECT f.keep FROM {FOLD} f
                                               WHERE f.id = retention_alert.id)
            WHERE id IN (SELECT id FROM {FOLD})
            """,
            [now],
        )
        cursor.execute(f"DROP TABLE {FOLD}")
        cursor.execute(
            """
            UPDATE retention_alert SET priority = COALESCE((
                SELECT MAX(i.expected_net_value) FROM retention_intervention i
                WHERE i.alert_id = retention_alert.id AND i.state = 'proposed'
                  AND i.arm = 'treatment'), 0)
            WHERE state IN ('open', 'acknowledged')
            """
        )
        cursor.execute(
            "UPDATE retention_alert SET handled_at = COALESCE(closed_at, acknowledged_at)"
            " WHERE state IN ('actioned', 'dismissed') OR resolution = 'handled'"
        )


class Migration(migrations.Migration):

    dependencies = [
        ('customers', '0004_customer_erased_at'),
        ('retention', '0012_typed_audit_actions'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='AgentCapacity',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('daily_capacity', models.PositiveIntegerField(default=100, help_text='Cases assigned to the agent that they work a day', validators=[django.core.validators.MinValueValidator(1, 'must be at least 1: a list nobody may work today would never be worked')])),
            ],
            options={
                'verbose_name': 'agent capacity',
                'verbose_name_plural': 'agent capacities',
            },
        ),
        migrations.CreateModel(
            name='CaseReason',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('as_of', models.DateField(help_text='The scoring day the rule first matched')),
            ],
            options={
                'ordering': ['alert', '-rule__priority', 'rule__name'],
            },
        ),
        migrations.CreateModel(
            name='Queue',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(max_length=50, unique=True)),
                ('daily_capacity', models.PositiveIntegerField(default=100, help_text="Cases the queue's agents work a day; only this many are pushed to chat", validators=[django.core.validators.MinValueValidator(1, 'must be at least 1: a list nobody may work today would never be worked')])),
            ],
            options={
                'ordering': ['name'],
            },
        ),
        migrations.AlterModelOptions(
            name='alert',
            options={'ordering': ['-raised_at', '-id'], 'verbose_name': 'case', 'verbose_name_plural': 'cases'},
        ),
        migrations.RemoveConstraint(
            model_name='campaign',
            name='campaign_has_a_target',
        ),
        migrations.AddField(
            model_name='alert',
            name='handled_at',
            field=models.DateTimeField(blank=True, help_text='When someone acted on it (offer decided, closed)', null=True),
        ),
        migrations.AddField(
            model_name='alert',
            name='planned_on',
            field=models.DateField(blank=True, help_text="The day's plan that put it on a to-do list (within capacity); empty: watched", null=True),
        ),
        migrations.AddField(
            model_name='alert',
            name='priority',
            field=models.FloatField(default=0, help_text='Expected incremental value of the best offer proposed for the customer (0: no offer worth making)'),
        ),
        migrations.AddField(
            model_name='alert',
            name='stage',
            field=models.CharField(blank=True, choices=[('active', 'Active'), ('at_risk', 'At risk'), ('lapsing', 'Lapsing'), ('lost', 'Lost')], max_length=8),
        ),
        migrations.AddField(
            model_name='campaign',
            name='include_lost',
            field=models.BooleanField(default=False, help_text='Lost customers go to the automatic win-back, not to agents; tick to target them too'),
        ),
        migrations.AddField(
            model_name='campaign',
            name='target_stage',
            field=models.CharField(blank=True, choices=[('active', 'Active'), ('at_risk', 'At risk'), ('lapsing', 'Lapsing'), ('lost', 'Lost')], help_text='Or: every customer scored in this lifecycle stage', max_length=8),
        ),
        migrations.AddField(
            model_name='riskrule',
            name='include_lost',
            field=models.BooleanField(default=False, help_text='Lost customers go to the automatic win-back, not to agents; tick to open cases for them too'),
        ),
        migrations.AlterField(
            model_name='alert',
            name='resolution',
            field=models.CharField(blank=True, choices=[('won_back', 'Won back (ordered again)'), ('handled', 'Handled by an agent'), ('lost', 'Lost: left to the automatic win-back'), ('offer_ended', 'Its offers ended without an order'), ('merged', "Merged into the customer's case")], max_length=16),
        ),
        migrations.AlterField(
            model_name='riskrule',
            name='assignee',
            field=models.ForeignKey(blank=True, help_text='Assign every case this rule opens to this agent; empty leaves them in the queue', null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AlterField(
            model_name='riskrule',
            name='cooldown_days',
            field=models.PositiveSmallIntegerField(default=14, help_text='After a case listing this rule is closed, the rule does not list the same customer again for this many days'),
        ),
        migrations.AlterField(
            model_name='riskrule',
            name='escalate_after_hours',
            field=models.PositiveSmallIntegerField(default=24, help_text='High-severity cases on a to-do list not acknowledged within this many hours escalate'),
        ),
        migrations.AlterField(
            model_name='riskrule',
            name='priority',
            field=models.PositiveSmallIntegerField(default=100, help_text='Higher first: a case listing several rules is titled and routed by the highest (queues sort cases by the value of acting on them)'),
        ),
        migrations.AlterField(
            model_name='riskrule',
            name='queue',
            field=models.CharField(default='shared', help_text='Queue of agents that sees the cases', max_length=50),
        ),
        migrations.AlterField(
            model_name='rulecondition',
            name='value',
            field=models.CharField(blank=True, help_text='A number; for tier: high, medium or low; for stage: active, at risk, lapsing or lost', max_length=40),
        ),
        migrations.AddConstraint(
            model_name='campaign',
            constraint=models.CheckConstraint(condition=models.Q(('target_rule__isnull', False), models.Q(('target_tier', ''), _negated=True), models.Q(('target_stage', ''), _negated=True), _connector='OR'), name='campaign_has_a_target'),
        ),
        migrations.AddField(
            model_name='agentcapacity',
            name='user',
            field=models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='case_capacity', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AddField(
            model_name='casereason',
            name='alert',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='case_reasons', to='retention.alert'),
        ),
        migrations.AddField(
            model_name='casereason',
            name='rule',
            field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='case_reasons', to='retention.riskrule'),
        ),
        migrations.AddConstraint(
            model_name='queue',
            constraint=models.CheckConstraint(condition=models.Q(('daily_capacity__gte', 1)), name='queue_capacity_positive'),
        ),
        migrations.AddConstraint(
            model_name='agentcapacity',
            constraint=models.CheckConstraint(condition=models.Q(('daily_capacity__gte', 1)), name='agent_capacity_positive'),
        ),
        migrations.AddConstraint(
            model_name='casereason',
            constraint=models.UniqueConstraint(fields=('alert', 'rule'), name='one_reason_per_rule'),
        ),
        migrations.RunPython(fold, migrations.RunPython.noop),
    ]

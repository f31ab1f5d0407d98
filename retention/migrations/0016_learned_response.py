"""Offers' priors become strictly inside (0, 1) with a strength; campaigns get an
exploration share; interventions record whether their offer was explored and the uplift
expected of it."""

import django.core.validators
from django.db import migrations, models

import retention.models


def _clamp_priors(apps, schema_editor):
    Offer = apps.get_model("retention", "Offer")
    Offer.objects.filter(expected_response__lte=0).update(expected_response=0.001)
    Offer.objects.filter(expected_response__gte=1).update(expected_response=0.999)


class Migration(migrations.Migration):

    dependencies = [
        ('retention', '0015_case_audit_actions'),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name='offer',
            name='offer_response_is_a_share',
        ),
        migrations.AddField(
            model_name='campaign',
            name='exploration_share',
            field=models.FloatField(default=0.1, help_text='Share of targeted customers (0 to 0.5) who get a random eligible offer instead of the best one, so every offer keeps being measured on every kind of customer'),
        ),
        migrations.AddField(
            model_name='intervention',
            name='expected_uplift',
            field=models.FloatField(blank=True, help_text='Retention uplift in the window the offer was expected to bring (learned)', null=True),
        ),
        migrations.AddField(
            model_name='intervention',
            name='exploration',
            field=models.BooleanField(db_default=False, default=False, help_text='The offer was drawn at random among the eligible ones (exploration), not chosen as the best'),
        ),
        migrations.AddField(
            model_name='offer',
            name='prior_strength',
            field=models.PositiveIntegerField(default=50, help_text="How many customers' worth of evidence the prior counts as: the learned response leaves it once more outcomes than this are in"),
        ),
        migrations.AlterField(
            model_name='offer',
            name='expected_response',
            field=models.FloatField(default=0.05, help_text='Your prior: the share of customers about to leave whom the offer keeps, strictly between 0 and 1. Learned from the control arm as outcomes come in.', verbose_name='prior response'),
        ),
        migrations.AddConstraint(
            model_name='campaign',
            constraint=models.CheckConstraint(condition=models.Q(('exploration_share__gte', 0), ('exploration_share__lte', 0.5)), name='campaign_exploration_share', violation_error_message='the exploration share must be a number from 0 to 0.5'),
        ),
        # Priors of exactly 0 or 1 were allowed before; the posterior needs one inside.
        migrations.RunPython(_clamp_priors, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name='offer',
            constraint=models.CheckConstraint(condition=models.Q(('expected_response__gt', 0), ('expected_response__lt', 1)), name='offer_prior_inside_0_1', violation_error_message='the prior response must be a number strictly between 0 and 1'),
        ),
        migrations.AddConstraint(
            model_name='offer',
            constraint=models.CheckConstraint(condition=models.Q(('prior_strength__gt', 0)), name='offer_prior_strength', violation_error_message='the prior strength must be a whole number of customers, at least 1'),
        ),
        migrations.AlterField(
            model_name='campaign',
            name='exploration_share',
            field=models.FloatField(default=0.1, help_text='Share of targeted customers (0 to 0.5) who get a random eligible offer instead of the best one, so every offer keeps being measured on every kind of customer', validators=[retention.models.exploration_inside]),
        ),
        migrations.AlterField(
            model_name='offer',
            name='expected_response',
            field=models.FloatField(default=0.05, help_text='Your prior: the share of customers about to leave whom the offer keeps, strictly between 0 and 1. Learned from the control arm as outcomes come in.', validators=[retention.models.prior_inside], verbose_name='prior response'),
        ),
        migrations.AlterField(
            model_name='offer',
            name='prior_strength',
            field=models.PositiveIntegerField(default=50, help_text="How many customers' worth of evidence the prior counts as: the learned response leaves it once more outcomes than this are in", validators=[django.core.validators.MinValueValidator(1, 'the prior strength must be a whole number of customers, at least 1')]),
        ),
    ]

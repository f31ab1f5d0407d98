"""What was learned about offers' effects and a per-customer uplift model, per day."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('retention', '0016_learned_response'),
    ]

    operations = [
        migrations.CreateModel(
            name='UpliftModel',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('as_of', models.DateField(help_text='Outcomes finished by this day were learned from')),
                ('fitted_at', models.DateTimeField()),
                ('effects', models.JSONField(default=dict, help_text='Per offer id: the posterior effect, overall and per tier')),
                ('features', models.JSONField(default=list)),
                ('treated', models.PositiveIntegerField(default=0)),
                ('control', models.PositiveIntegerField(default=0)),
                ('artifact', models.BinaryField(blank=True, help_text='The pickled per-customer learner')),
                ('checksum', models.CharField(blank=True, max_length=64)),
                ('offers_modelled', models.JSONField(default=list, help_text='Offer ids with a per-customer model')),
            ],
            options={
                'ordering': ['-as_of', '-id'],
            },
        ),
    ]

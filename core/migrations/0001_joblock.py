# JobLock moved here from retention; its table keeps its name, so no data moves.

from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('retention', '0002_joblock'),  # which created the table
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='JobLock',
                    fields=[
                        ('name', models.CharField(max_length=100, primary_key=True, serialize=False)),
                        ('token', models.CharField(max_length=32)),
                        ('expires_at', models.DateTimeField()),
                    ],
                    options={'db_table': 'retention_joblock'},
                ),
            ],
        ),
    ]

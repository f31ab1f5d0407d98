# JobLock moved to core (core/migrations/0001_joblock): only the model state leaves; the
# table retention_joblock stays as it is and core's model uses it.

from django.db import migrations


def drop_stale_content_type(apps, schema_editor):
    """The model's content type and permissions under ``retention`` name a model that is
    gone (no admin or role ever used them); core's are created after migrate."""
    ContentType = apps.get_model('contenttypes', 'ContentType')
    ContentType.objects.filter(app_label='retention', model='joblock').delete()


class Migration(migrations.Migration):

    dependencies = [
        ('contenttypes', '0002_remove_content_type_name'),
        ('core', '0001_joblock'),
        ('retention', '0010_campaign_max_loyalty_points'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name='JobLock')],
        ),
        migrations.RunPython(drop_stale_content_type, migrations.RunPython.noop),
    ]

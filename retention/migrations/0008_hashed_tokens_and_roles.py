"""Hashed, expiring API tokens replace DRF's plain ones, and the roles are synced again:
Admins manage tokens and login lockouts but no longer edit groups."""

from django.db import migrations

from core.roles import sync_roles


def delete_plain_tokens(apps, schema_editor) -> None:
    # They no longer authenticate (knox's tokens do); deleting them leaves no usable
    # secret stored in plain text.
    apps.get_model("authtoken", "Token").objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [
        ("retention", "0007_indexes_for_nightly_bulk_loads"),
        ("authtoken", "0004_alter_tokenproxy_options"),
        ("knox", "0009_extend_authtoken_field"),
        ("axes", "0010_accessattemptexpiration"),
    ]

    operations = [
        migrations.RunPython(sync_roles, migrations.RunPython.noop),
        migrations.RunPython(delete_plain_tokens, migrations.RunPython.noop),
    ]

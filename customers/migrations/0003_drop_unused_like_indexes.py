"""Drop the LIKE-pattern twins Django adds to unique text columns on PostgreSQL.

Nothing here searches external ids by prefix (lookups are exact), so these indexes only
cost time on every insert of the biggest tables.
"""

from django.db import migrations

INDEXES = {
    "customers_order_external_id_9dac2276_like": ("customers_order", "external_id"),
    "customers_event_external_id_77c4ccb7_like": ("customers_event", "external_id"),
    "customers_customer_external_id_b1779fc4_like": ("customers_customer", "external_id"),
}


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


def restore(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, (table, column) in INDEXES.items():
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {name} ON {table} ({column} varchar_pattern_ops)"
        )


class Migration(migrations.Migration):
    dependencies = [("customers", "0002_drop_redundant_fk_indexes")]

    operations = [migrations.RunPython(drop, restore)]

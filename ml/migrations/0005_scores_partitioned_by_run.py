"""On PostgreSQL, ml_customerscore becomes a table partitioned by scoring run (see
ml/partitions.py for why). Columns, constraint and index names stay what Django made;
the primary key gains run_id, which PostgreSQL requires of a partitioned table. Existing
scores move into one partition per run. Other databases keep the plain table."""

from django.db import migrations

TABLE = "ml_customerscore"
OLD = "ml_customerscore_unpartitioned"
COLUMNS = "id, probability, tier, expected_spend, value_at_risk, source, reasons, customer_id, run_id"

STATEMENTS = [
    f"ALTER TABLE {TABLE} RENAME TO {OLD}",
    f"ALTER TABLE {OLD} RENAME CONSTRAINT {TABLE}_pkey TO {OLD}_pkey",
    f"ALTER TABLE {OLD} RENAME CONSTRAINT one_score_per_run TO {OLD}_one_score_per_run",
    f"ALTER INDEX score_customer_run RENAME TO {OLD}_score_customer_run",
    f"""
    CREATE TABLE {TABLE} (
        id bigint NOT NULL,
        probability double precision NOT NULL,
        tier varchar(8) NOT NULL,
        expected_spend double precision NOT NULL,
        value_at_risk double precision NOT NULL,
        source varchar(8) NOT NULL,
        reasons jsonb NOT NULL,
        customer_id bigint NOT NULL,
        run_id bigint NOT NULL,
        CONSTRAINT {TABLE}_pkey PRIMARY KEY (id, run_id),
        CONSTRAINT one_score_per_run UNIQUE (run_id, customer_id),
        CONSTRAINT {TABLE}_customer_id_6f9c69ef_fk_customers_customer_id
            FOREIGN KEY (customer_id) REFERENCES customers_customer (id)
            DEFERRABLE INITIALLY DEFERRED,
        CONSTRAINT {TABLE}_run_id_a1cf5573_fk_ml_scoringrun_id
            FOREIGN KEY (run_id) REFERENCES ml_scoringrun (id)
            DEFERRABLE INITIALLY DEFERRED
    ) PARTITION BY LIST (run_id)
    """,
    f"CREATE INDEX score_customer_run ON {TABLE} (customer_id, run_id)",
    # Rows written through the ORM (no partition made for their run) land here.
    f"CREATE TABLE {TABLE}_other PARTITION OF {TABLE} DEFAULT",
    f"""
    DO $$
    DECLARE run bigint;
    BEGIN
        FOR run IN SELECT DISTINCT run_id FROM {OLD} LOOP
            EXECUTE 'CREATE TABLE {TABLE}_run' || run || ' PARTITION OF {TABLE} '
                    || 'FOR VALUES IN (' || run || ')';
        END LOOP;
    END $$
    """,
    f"INSERT INTO {TABLE} ({COLUMNS}) SELECT {COLUMNS} FROM {OLD}",
    f"DROP TABLE {OLD}",
    f"CREATE SEQUENCE {TABLE}_id_seq OWNED BY {TABLE}.id",
    f"SELECT setval('{TABLE}_id_seq', COALESCE((SELECT MAX(id) FROM {TABLE}), 0) + 1, false)",
    f"ALTER TABLE {TABLE} ALTER COLUMN id SET DEFAULT nextval('{TABLE}_id_seq')",
]


def partition(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for statement in STATEMENTS:
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [
        ("customers", "0003_drop_unused_like_indexes"),
        ("ml", "0004_lean_indexes"),
    ]

    operations = [migrations.RunPython(partition, elidable=False)]

"""The set-up every bench shares: the project on the path, settings for a bench database
of its own, and a migrated database that exists before the first query.

Benches run as scripts (``.venv/bin/python bench/score.py``), so this module is imported
before Django: ``configure`` only sets environment defaults (the caller's environment
wins, so ``DATABASE_URL=... python bench/x.py`` points a bench elsewhere) and ``ready``
does the heavy part once the script has parsed its arguments.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def configure(database: str, **env: str) -> None:
    """Point Django at ``database`` on local PostgreSQL unless the environment says otherwise."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "retention.settings")
    os.environ.setdefault("DEBUG", "1")
    os.environ.setdefault("DATABASE_URL", f"postgres://postgres@127.0.0.1:5432/{database}")
    for name, value in env.items():
        os.environ.setdefault(name, value)


def ready() -> None:
    """Create the bench database if it is missing, set Django up and migrate it."""
    import django
    from django.core.management import call_command

    _create_database(os.environ["DATABASE_URL"])
    django.setup()
    call_command("migrate", verbosity=0)


def _create_database(url: str) -> None:
    """A bench on a fresh machine starts without its database; PostgreSQL cannot create
    one from a connection to itself, so ask through the maintenance database."""
    import dj_database_url
    import psycopg
    from psycopg import sql

    if not url.startswith("postgres"):
        return
    config = dj_database_url.parse(url)
    maintenance = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(maintenance, autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [config["NAME"]]
        ).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(config["NAME"])))

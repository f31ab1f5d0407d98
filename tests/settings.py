"""Test settings: the project's settings pointed at the CI services unless overridden.

``make test`` runs the suite on PostgreSQL and Redis, then the smoke subset with
``DATABASE_URL=sqlite://...`` and the filesystem broker.
"""

import os
import tempfile
from pathlib import Path

# A developer's local `.env` (written by `make demo`) must not change what tests see.
os.environ["RETENTION_ENV_FILE"] = ""
os.environ.setdefault("SECRET_KEY", "tests-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")
os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/15")

# Under pytest-xdist each worker has a database of its own (pytest-django appends gwN to
# its name) and needs a Redis database of its own too: the real Celery workers a test
# starts would otherwise take the other worker's tasks, and the cache would be shared.
# Processes a test starts inherit the moved URL and the mark, and keep both.
_worker = os.environ.get("PYTEST_XDIST_WORKER", "")
_broker = os.environ["CELERY_BROKER_URL"]
_moved = os.environ.get("TEST_BROKER_OF_WORKER") == _worker
if _worker.startswith("gw") and _broker.startswith("redis://") and not _moved:
    _base, _, _db = _broker.rpartition("/")
    os.environ["CELERY_BROKER_URL"] = f"{_base}/{(int(_db or 0) - int(_worker[2:])) % 16}"
    os.environ["TEST_BROKER_OF_WORKER"] = _worker
os.environ.setdefault("ALLOWED_HOSTS", "testserver,localhost,127.0.0.1")

from retention.settings import *  # noqa: E402, F403 (after the environment above)

SECURE_SSL_REDIRECT = False
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
MEDIA_ROOT = tempfile.mkdtemp(prefix="retention-test-media-")

# SQLite tests run on a file, as the product does: an in-memory database shares one cache
# between connections and locks differently, so concurrency there would prove nothing.
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    DATABASES["default"]["TEST"] = {  # noqa: F405
        "NAME": str(Path(tempfile.mkdtemp(prefix="retention-test-db-")) / "test.sqlite3")
    }

# Task tests wait for results of a real worker.
if CELERY_BROKER_URL.startswith("redis://"):  # noqa: F405
    CELERY_RESULT_BACKEND = CELERY_BROKER_URL  # noqa: F405

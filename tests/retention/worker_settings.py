"""Settings of the Celery worker processes that the fault tests start and kill: the test
settings, with email going to the recording relay of ``tests.retention.mail``."""

from tests.settings import *  # noqa: F403

EMAIL_BACKEND = "tests.retention.mail.RelayBackend"

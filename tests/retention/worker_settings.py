"""Settings of the Celery worker processes that the fault tests start and kill: the test
settings, with email going to the recording relay of ``tests.fakes.mail_relay``."""

from tests.settings import *  # noqa: F403

EMAIL_BACKEND = "tests.fakes.mail_relay.RelayBackend"

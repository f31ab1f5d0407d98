"""Shared fixtures. The real services must be up: a test run that cannot reach them fails
at once instead of skipping, so a green run always means PostgreSQL and Redis were used."""

from __future__ import annotations

import uuid

import pytest
from django.conf import settings
from django.contrib.auth.models import Group, User
from django.utils import timezone
from rest_framework.test import APIClient

from core.roles import ADMIN, AGENT
from retention.services.tokens import api_token_create


def pytest_sessionstart(session: pytest.Session) -> None:
    broker = settings.CELERY_BROKER_URL
    if broker.startswith("redis://"):
        import redis

        try:
            redis.Redis.from_url(broker, socket_connect_timeout=3).ping()
        except redis.RedisError as exc:
            raise pytest.UsageError(f"Redis at {broker} is not reachable: {exc}") from exc


@pytest.fixture(autouse=True)
def _own_cache_keys(settings) -> None:
    """Rate-limit counters live in the shared cache (Redis in the suite) and outlive a
    test; a key prefix per test keeps one test's requests from throttling the next."""
    settings.CACHES = {
        name: {**config, "KEY_PREFIX": f"test-{uuid.uuid4().hex}"}
        for name, config in settings.CACHES.items()
    }


# Log test clients in with client.force_login: django-axes guards authentication and
# refuses the plain client.login(), which passes no request.
def _staff(username: str, group: str) -> User:
    user = User.objects.create_user(username=username, password="pw-for-tests", is_staff=True)
    user.groups.add(Group.objects.get(name=group))
    return user


@pytest.fixture
def admin_user(db) -> User:
    return _staff("shop-admin", ADMIN)


@pytest.fixture
def agent_user(db) -> User:
    return _staff("shop-agent", AGENT)


def _token_client(user: User) -> APIClient:
    client = APIClient()
    _, token = api_token_create(user=user, now=timezone.now())
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


@pytest.fixture
def admin_api(admin_user) -> APIClient:
    """API client authenticated with an Admin's token."""
    return _token_client(admin_user)


@pytest.fixture
def agent_api(agent_user) -> APIClient:
    """API client authenticated with an Agent's token (read-only on shop data)."""
    return _token_client(agent_user)


@pytest.fixture
def live_worker(transactional_db):
    """A real Celery worker consuming from the test broker in a thread of this process, so
    it shares the test database. Tests using it see only committed data, hence the
    transactional database."""
    from celery.contrib.testing.worker import start_worker

    from retention.celery import app

    if not settings.CELERY_BROKER_URL.startswith("redis://"):
        raise pytest.UsageError("task tests need the Redis broker (make test-pg)")
    with start_worker(app, perform_ping_check=False, loglevel="WARNING", shutdown_timeout=30):
        yield app


@pytest.fixture
def sms_provider(settings):
    """A local SMS provider behind the HTTP SMS channel, with no pause between retries."""
    from tests.fakes.sms_provider import FakeProvider

    with FakeProvider() as fake:
        settings.SMS_PROVIDER_URL = fake.url
        settings.RETENTION_CHANNELS = {
            **settings.RETENTION_CHANNELS,
            "sms": "retention.channels.sms.HttpSmsChannel",
        }
        settings.OUTBOX_RETRY_SECONDS = 0
        yield fake

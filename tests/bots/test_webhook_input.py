"""The webhook refuses malformed secrets and bodies before any handler runs (audit P3-1)."""

import pytest

from bots import runner
from tests.bots.fake_bot_api import TOKEN, FakeBotApi

pytestmark = pytest.mark.django_db

SECRET = "webhook-secret-for-tests"


@pytest.fixture
def configured(settings):
    with FakeBotApi() as api:
        settings.TELEGRAM_BOT_TOKEN = TOKEN
        settings.TELEGRAM_API_BASE_URL = api.base_url
        settings.TELEGRAM_WEBHOOK_SECRET = SECRET
        runner.reset()
        yield api
        runner.reset()


def send(client, body, secret):
    return client.post(
        "/bots/telegram/webhook",
        body,
        content_type="application/json",
        HTTP_X_TELEGRAM_BOT_API_SECRET_TOKEN=secret,
    )


def test_it_refuses_a_non_ascii_secret_token(client, configured):
    assert send(client, b"{}", "\xe9").status_code == 403


@pytest.mark.parametrize("body", [b"{}", b"[]", b'{"update_id": "x"}', b"3"])
def test_it_answers_a_body_that_is_no_update_with_400(client, configured, body):
    assert send(client, body, SECRET).status_code == 400
    assert [method for method, *_ in configured.calls if method == "sendMessage"] == []

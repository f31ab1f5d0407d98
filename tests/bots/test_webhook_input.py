"""The webhook refuses malformed secrets and bodies before any handler runs (audit P3-1)."""

import pytest

from tests.fakes.bot_api import SECRET, send

pytestmark = pytest.mark.django_db


def test_it_refuses_a_non_ascii_secret_token(client, telegram):
    assert send(client, b"{}", "\xe9").status_code == 403


@pytest.mark.parametrize("body", [b"{}", b"[]", b'{"update_id": "x"}', b"3"])
def test_it_answers_a_body_that_is_no_update_with_400(client, telegram, body):
    assert send(client, body, SECRET).status_code == 400
    assert [method for method, *_ in telegram.calls if method == "sendMessage"] == []

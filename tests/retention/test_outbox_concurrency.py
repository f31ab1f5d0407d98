import datetime as dt

import pytest

from retention.models import Intervention, OutboxMessage
from retention.services.outbox import outbox_send
from tests.factories import campaign, customer, outbox_sms

NOW = dt.datetime(2026, 7, 1, 9, tzinfo=dt.UTC)


def queued_sms(count: int) -> list[OutboxMessage]:
    win_back = campaign()
    return [
        outbox_sms(
            win_back,
            customer(f"c{number}"),
            intervention_state="queued",
            at=NOW,
            recipient=f"+4915100000{number:03d}",
        )
        for number in range(count)
    ]


@pytest.mark.django_db
def test_http_channels_keep_several_sends_in_flight_and_still_send_each_message_once(
    sms_provider, settings
):
    settings.OUTBOX_CONCURRENCY = 4
    sms_provider.delay = 0.05
    messages = queued_sms(12)

    report = outbox_send(now=NOW)

    assert report.sent == 12 and report.failed == report.retrying == 0
    assert 1 < sms_provider.most_in_flight <= 4
    assert sorted(sms_provider.requests.values()) == [1] * 12
    states = OutboxMessage.objects.filter(pk__in=[m.pk for m in messages])
    assert set(states.values_list("state", flat=True)) == {"sent"}
    assert set(Intervention.objects.values_list("state", flat=True)) == {"sent"}


@pytest.mark.django_db
def test_a_channel_that_cannot_open_fails_each_message_with_the_reason(settings):
    settings.SMS_PROVIDER_URL = ""
    settings.RETENTION_CHANNELS = {
        **settings.RETENTION_CHANNELS,
        "sms": "retention.channels.sms.HttpSmsChannel",
    }
    queued_sms(3)

    report = outbox_send(now=NOW)

    assert report.failed == 3 and report.sent == 0
    assert set(OutboxMessage.objects.values_list("last_error", flat=True)) == {
        "the sms channel is not configured"
    }

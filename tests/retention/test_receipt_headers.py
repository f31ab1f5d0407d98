"""Malformed signature headers on delivery receipts and the Telegram webhook are refused
with 403, never a 500 (audit P3-1)."""

import time

import pytest

from retention.channels.webhook import signature

pytestmark = pytest.mark.django_db

SECRET = "receipt-secret"


def post(client, timestamp, signed):
    return client.post(
        "/api/v1/outbox/receipts",
        b"{}",
        content_type="application/json",
        HTTP_X_RETENTION_TIMESTAMP=timestamp,
        HTTP_X_RETENTION_SIGNATURE=signed,
    )


@pytest.fixture
def secret(settings):
    settings.RECEIPTS_SECRET = SECRET


def test_it_refuses_a_timestamp_of_non_ascii_digits(client, secret):
    assert post(client, "\xb2", "x").status_code == 403


def test_it_refuses_a_timestamp_of_thousands_of_digits(client, secret):
    stamp = "0" * 5_000 + str(int(time.time()))
    assert post(client, stamp, signature(SECRET, stamp, b"{}")).status_code == 403


def test_it_refuses_a_non_ascii_signature(client, secret):
    assert post(client, str(int(time.time())), "sha256=\xe9").status_code == 403


def test_a_correctly_signed_receipt_still_passes(client, secret):
    stamp = str(int(time.time()))
    assert post(client, stamp, signature(SECRET, stamp, b"{}")).status_code == 200

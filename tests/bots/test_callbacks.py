import pytest

from bots.callbacks import INTERVENTION, callback, parse


def test_callback_data_parses_back_into_kind_verb_and_argument():
    data = callback(INTERVENTION, "type", 42, "percent_off")
    assert data == "iv:type:42:percent_off"
    assert parse(data) == ("iv", "type", "42:percent_off")


def test_it_refuses_callback_data_telegram_would_reject():
    with pytest.raises(ValueError, match="over 64 bytes"):
        callback(INTERVENTION, "why", 42, "x" * 60)

import pytest

from grading.providers.openai import cost_of, price_for, retry_after_seconds


@pytest.fixture(autouse=True)
def no_price_overrides(settings):
    settings.MODEL_PRICES = {}


def test_known_models_have_per_million_token_prices():
    assert price_for("gpt-4o-mini") == (0.15, 0.60)
    assert price_for("gpt-4o") == (2.50, 10.00)
    assert price_for("gpt-4.1-mini") == (0.40, 1.60)


def test_a_dated_snapshot_takes_its_family_s_price():
    assert price_for("gpt-4o-mini-2024-07-18") == (0.15, 0.60)
    assert price_for("gpt-4o-2024-08-06") == (2.50, 10.00)


def test_an_unknown_model_is_free():
    assert price_for("llama3.1:8b") == (0.0, 0.0)


def test_prices_can_be_set_with_model_prices(settings):
    settings.MODEL_PRICES = {"llama3.1:8b": [0.05, 0.08], "gpt-4o": [2, 8]}

    assert price_for("llama3.1:8b") == (0.05, 0.08)
    assert price_for("gpt-4o") == (2.0, 8.0)
    assert price_for("gpt-4o-mini") == (0.15, 0.60)


def test_malformed_model_prices_fail_loudly(settings):
    settings.MODEL_PRICES = {"gpt-4o": 2.5}

    with pytest.raises(ValueError, match="MODEL_PRICES must be JSON"):
        price_for("gpt-4o")


def test_cost_is_exact_to_a_millionth_of_a_dollar():
    assert str(cost_of("gpt-4o-mini", 1_000, 500)) == "0.000450"
    assert str(cost_of("unknown", 1_000, 500)) == "0.000000"


def test_retry_after_reads_milliseconds_seconds_and_junk():
    assert retry_after_seconds({"retry-after-ms": "1500"}) == 1.5
    assert retry_after_seconds({"retry-after": "3"}) == 3.0
    assert retry_after_seconds({"retry-after": "soon"}) is None
    assert retry_after_seconds({}) is None

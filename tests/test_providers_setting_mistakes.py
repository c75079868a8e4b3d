"""Mistakes an operator makes writing PROVIDERS that used to slip through start-up: each now stops it
with one sentence naming the connection and the field, and never repeats a key."""

import pytest

from grading.providers.connections import BadConnection, load_setting
from tests.test_provider_connections import manage_check

# An Azure OpenAI key is 32 hexadecimal characters: letters first, it is also a valid variable name.
AZURE_KEY = "abcdef0123456789abcdef0123456789"


def refusal(raw_json: str) -> str:
    with pytest.raises(BadConnection) as refused:
        load_setting(raw_json, "")
    return str(refused.value)


@pytest.mark.parametrize(
    "pasted",
    [
        AZURE_KEY,
        "a1b2c3d4e5f60718293a4b5c6d7e8f90",
        "ABCDEF0123456789ABCDEF0123456789",
        "gsk_4f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c",
    ],
)
def test_a_key_pasted_in_place_of_key_env_is_refused_without_repeating_it(pasted):
    sentence = refusal(f'{{"azure": {{"kind": "openai", "key_env": "{pasted}"}}}}')

    assert "the connection “azure”" in sentence and "key_env" in sentence
    assert pasted not in sentence


@pytest.mark.parametrize("name", ["AZURE_OPENAI_KEY", "CLAUDE_EU_KEY", "KEY", "DISTRICT_2_OPENAI_KEY"])
def test_a_key_env_naming_a_variable_is_taken(name):
    assert load_setting(f'{{"azure": {{"kind": "openai", "key_env": "{name}"}}}}', "")


def test_a_pasted_key_stops_start_up_without_showing_it():
    loaded = manage_check(PROVIDERS=f'{{"azure": {{"kind": "openai", "key_env": "{AZURE_KEY}"}}}}')

    assert loaded.returncode == 1
    assert "“azure” has a key_env" in loaded.stderr
    assert AZURE_KEY not in loaded.stderr
    assert loaded.stderr.count("\n") == 1 and "Traceback" not in loaded.stderr


def test_a_connection_declared_twice_is_refused_rather_than_the_last_one_silently_kept():
    sentence = refusal(
        '{"local": {"kind": "openai", "base_url": "http://127.0.0.1:11434/v1"},'
        ' "local": {"kind": "anthropic"}}'
    )

    assert "the connection “local” is declared twice" in sentence


def test_a_field_written_twice_in_one_connection_is_refused_naming_it():
    sentence = refusal('{"azure": {"kind": "openai", "max_concurrency": 4, "max_concurrency": 40}}')

    assert "the connection “azure” states max_concurrency twice" in sentence


def test_names_differing_only_in_case_are_refused_for_the_capitals():
    sentence = refusal('{"local": {"kind": "openai"}, "Local": {"kind": "openai"}}')

    assert "the connection “Local” needs a name of lower-case letters" in sentence


@pytest.mark.parametrize(
    "row", ["[-2.5, 10]", "[2.5, -10]", "[NaN, 10]", "[Infinity, 10]", "[2.5, 10, 3, -1]"]
)
def test_a_negative_or_endless_price_is_refused_naming_the_connection(row):
    sentence = refusal(f'{{"azure": {{"kind": "openai", "prices": {{"gpt-4o": {row}}}}}}}')

    assert "the connection “azure” has prices" in sentence


@pytest.mark.parametrize(
    ("value", "sentence"),
    [
        ('{"gpt-4o": [2.5]}', "MODEL_PRICES must be JSON like"),
        ('{"gpt-4o": [-2.5, 10]}', "none negative"),
        ('["gpt-4o"]', "MODEL_PRICES must be a JSON object"),
    ],
)
def test_bad_model_prices_stop_start_up_with_one_sentence(value, sentence):
    loaded = manage_check(MODEL_PRICES=value)

    assert loaded.returncode == 1
    assert sentence in loaded.stderr
    assert loaded.stderr.count("\n") == 1 and "Traceback" not in loaded.stderr


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:11434 /v1", "https://a b.example/v1", "https://x.example/open ai/v1"]
)
def test_a_base_url_with_a_space_in_it_is_refused(url):
    sentence = refusal(f'{{"local": {{"kind": "openai", "base_url": "{url}"}}}}')

    assert "the connection “local” has a base_url" in sentence


def test_spaces_around_a_base_url_pasted_with_it_are_dropped():
    from grading.providers.connections import parse_connections

    [local] = parse_connections(
        {"local": {"kind": "openai", "base_url": " http://127.0.0.1:11434/v1/ "}}
    ).values()

    assert local.base_url == "http://127.0.0.1:11434/v1"


@pytest.mark.parametrize(
    "url",
    [
        "https://school.openai.azure.com/openai/v1?api-key=QUERYSECRET",
        "https://gateway.example.org?key=QUERYSECRET",
        "https://gateway.example.org/v1#QUERYSECRET",
    ],
)
def test_a_base_url_carrying_a_query_is_refused_without_repeating_it(url):
    # The SDKs append their paths after the query (every call is a 404), and a key written
    # there would be shown wherever the endpoint is.
    sentence = refusal(f'{{"azure": {{"kind": "openai", "base_url": "{url}"}}}}')

    assert "the connection “azure” has a base_url" in sentence
    assert "QUERYSECRET" not in sentence


def test_an_openai_base_url_with_a_key_in_its_query_is_listed_without_it(owner, settings, db):
    from tests.api_support import client_for

    settings.OPENAI_BASE_URL = "https://gateway.example.org/v1?key=QUERYSECRET"

    rows = {row["name"]: row for row in client_for(owner).get("/api/providers").json()}

    assert rows["openai"]["base_url"] == "https://gateway.example.org/v1"
    assert "QUERYSECRET" not in client_for(owner).get("/api/providers").content.decode()


def test_a_providers_file_that_is_not_utf8_stops_start_up_with_one_sentence(tmp_path):
    path = tmp_path / "providers.json"
    path.write_bytes('{"local": {"kind": "openai"}}'.encode("utf-16"))

    loaded = manage_check(PROVIDERS_FILE=str(path))

    assert loaded.returncode == 1
    assert f"PROVIDERS_FILE names {path}, which is not UTF-8 text" in loaded.stderr
    assert loaded.stderr.count("\n") == 1 and "Traceback" not in loaded.stderr


def test_a_providers_file_saved_with_a_byte_order_mark_is_read(tmp_path):
    path = tmp_path / "providers.json"
    path.write_bytes(
        b"\xef\xbb\xbf" + b'{"local": {"kind": "openai", "base_url": "http://127.0.0.1:11434/v1"}}'
    )

    assert set(load_setting("", str(path))) == {"local"}


def test_a_concurrency_cap_beyond_any_provider_is_refused_before_it_becomes_call_slots():
    # Each call at once is a CallSlot row, made by the first claim: a cap typed with the
    # tokens-per-minute figure would have that claim write millions of rows.
    sentence = refusal('{"azure": {"kind": "openai", "max_concurrency": 150000}}')

    assert "the connection “azure” has max_concurrency 150000" in sentence
    assert "at most 4096" in sentence


def test_a_concurrency_cap_beyond_any_provider_in_the_environment_stops_start_up():
    loaded = manage_check(OPENAI_MAX_CONCURRENCY="150000")

    assert loaded.returncode == 1
    assert "OPENAI_MAX_CONCURRENCY must be at most 4096, got 150000." in loaded.stderr
    assert loaded.stderr.count("\n") == 1 and "Traceback" not in loaded.stderr

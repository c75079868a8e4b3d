import socket
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest

from grading.providers import (
    GradeRequest,
    PermanentProviderError,
    TransientProviderError,
)
from grading.providers.openai import OpenAIProvider
from tests.support.rubrics import ACADEMIC_ESSAY_RUBRIC, ESSAY_SETTINGS, STRONG_ESSAY

KEYS = [criterion["key"] for criterion in ACADEMIC_ESSAY_RUBRIC["criteria"]]


def grade(text=STRONG_ESSAY, settings=ESSAY_SETTINGS, model="gpt-4o-mini", timeout_s=5.0):
    request = GradeRequest(
        text=text,
        rubric=ACADEMIC_ESSAY_RUBRIC,
        settings=settings,
        model=model,
        document_name="remote-work.md",
        timeout_s=timeout_s,
    )
    return OpenAIProvider().grade(request)


def sent(standin):
    return standin.requests[-1].body


def test_a_successful_grade_has_scores_tokens_and_cost(standin):
    result = grade()

    assert [item.key for item in result.criteria] == KEYS
    assert result.max_score == 100
    assert result.score == sum(item.score for item in result.criteria)
    assert all(0 <= item.score <= item.max_score for item in result.criteria)
    assert result.feedback.startswith("Graded a document of")
    assert result.input_tokens > 0
    assert result.output_tokens > 0
    expected = result.input_tokens * Decimal("0.15") + result.output_tokens * Decimal("0.60")
    assert result.cost == (expected / 1_000_000).quantize(Decimal("0.000001"))
    assert result.model == "gpt-4o-mini"
    assert result.raw["usage"]["prompt_tokens"] == result.input_tokens
    assert result.raw["choices"][0]["message"]["content"]


def test_the_same_document_gets_the_same_grade_from_the_standin(standin):
    assert grade().as_criteria_json() == grade().as_criteria_json()


def test_the_request_carries_the_model_and_a_strict_schema_of_the_rubric(standin):
    grade(model="gpt-4.1-mini")

    body = sent(standin)
    assert body["model"] == "gpt-4.1-mini"
    response_format = body["response_format"]
    assert response_format["type"] == "json_schema"
    assert response_format["json_schema"]["strict"] is True
    schema = response_format["json_schema"]["schema"]
    criteria = schema["properties"]["criteria"]
    assert criteria["required"] == KEYS
    assert criteria["additionalProperties"] is False
    thesis = criteria["properties"]["thesis"]
    assert list(thesis["properties"]) == ["evidence", "reasoning", "score"]
    assert max(thesis["properties"]["score"]["enum"]) == 25
    assert schema["required"] == ["criteria", "feedback"]


def test_the_prompt_carries_instructions_rubric_levels_and_the_document(standin):
    settings = {**ESSAY_SETTINGS, "instructions": "Be strict about citations."}

    grade(settings=settings)

    system, user = sent(standin)["messages"]
    assert system["role"] == "system"
    assert "Be strict about citations." in system["content"]
    assert "thesis — Thesis and argument (25 points)" in system["content"]
    assert "A precise, arguable thesis drives every paragraph." in system["content"]
    assert "Expected length: 500–1500 words." in system["content"]
    assert f'<document name="remote-work.md">\n{STRONG_ESSAY}\n</document>' in user["content"]


def test_temperature_and_a_higher_output_limit_come_from_settings(standin):
    grade(settings={"temperature": 0.2, "max_output_tokens": 5000})

    body = sent(standin)
    assert body["temperature"] == 0.2
    assert body["max_completion_tokens"] == 5000


def test_an_output_limit_too_small_for_the_rubric_is_raised_to_what_it_needs(standin):
    grade(settings={"max_output_tokens": 100})

    assert sent(standin)["max_completion_tokens"] == 200 + 260 * len(KEYS)


def test_the_api_key_is_read_from_the_settings_at_call_time(standin, settings):
    settings.OPENAI_API_KEY = "sk-test-123"

    grade()

    assert standin.requests[-1].headers["authorization"] == "Bearer sk-test-123"


def test_a_loopback_endpoint_needs_no_key(standin):
    grade()

    assert standin.requests[-1].headers["authorization"].startswith("Bearer ")


def test_a_remote_endpoint_without_a_key_is_a_permanent_error(settings):
    settings.OPENAI_BASE_URL = "https://llm.example.com/v1"
    settings.OPENAI_API_KEY = ""

    with pytest.raises(PermanentProviderError, match="set OPENAI_API_KEY"):
        grade()


def test_a_429_is_transient_and_carries_retry_after_seconds(standin):
    standin.configure(rate_limit_every=1, retry_after_s=7)

    with pytest.raises(TransientProviderError) as caught:
        grade()

    error = caught.value
    assert error.transient is True
    assert error.status_code == 429
    assert error.retry_after == 7
    assert str(error).startswith("The provider is rate limiting requests (HTTP 429)")


def test_a_retry_after_given_as_an_http_date_becomes_seconds(standin):
    standin.configure(rate_limit_every=1, retry_after_s=30, retry_after_http_date=True)

    with pytest.raises(TransientProviderError) as caught:
        grade()

    assert 25 <= caught.value.retry_after <= 30


def test_a_server_error_is_transient(standin):
    standin.configure(error_rate=1.0)

    with pytest.raises(TransientProviderError, match="HTTP 500") as caught:
        grade()

    assert caught.value.status_code == 500
    assert caught.value.retry_after is None


@pytest.mark.parametrize(
    ("status", "phrase"),
    [
        (400, "rejected the request as invalid"),
        (401, "rejected the API key"),
        (403, "refused access"),
        (404, "does not know this model"),
        (422, "could not process the request"),
    ],
)
def test_client_errors_are_permanent(standin, status, phrase):
    standin.configure(fail_with_status=status)

    with pytest.raises(PermanentProviderError, match=phrase) as caught:
        grade()

    assert caught.value.transient is False
    assert caught.value.status_code == status
    assert f"(HTTP {status}):" in str(caught.value)


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        (True, "criterion “thesis” is missing"),
        ("out_of_range", "criterion “thesis” scored 1000, not one of the rubric's scores (6, 12, 19, 25)"),
        ("not_json", "the reply is not JSON"),
        ("truncated", "the reply was cut off at the output token limit"),
    ],
)
def test_a_reply_that_breaks_the_schema_twice_is_permanent_and_names_what_was_wrong(standin, mode, reason):
    standin.configure(malformed=mode)

    with pytest.raises(PermanentProviderError) as caught:
        grade()

    assert str(caught.value) == (
        f"The reply does not match the rubric: {reason}; and after one repair: {reason}."
    )
    assert standin.stats()["requests"] == 2


def test_a_reply_slower_than_the_timeout_is_transient(standin):
    standin.hold_replies()
    try:
        with pytest.raises(TransientProviderError, match="timed out"):
            grade(timeout_s=0.2)
        # The client gave up on its own: the one request is still waiting for its reply.
        assert standin.stats()["in_flight"] == standin.stats()["requests"] == 1
    finally:
        standin.release_replies()


def test_a_refused_connection_is_transient(settings):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.OPENAI_BASE_URL = f"http://127.0.0.1:{port}/v1"

    with pytest.raises(TransientProviderError, match="Could not connect"):
        grade()


def test_an_empty_document_fails_without_a_call(standin):
    with pytest.raises(PermanentProviderError, match="has no text to grade"):
        grade(text="   ")

    assert standin.stats()["requests"] == 0


def test_concurrent_grades_from_many_threads_all_succeed_in_parallel(standin):
    texts = [f"{STRONG_ESSAY}\n\nCopy {number}." for number in range(32)]
    standin.hold_replies()

    with ThreadPoolExecutor(max_workers=32) as pool:
        try:
            calls = [pool.submit(grade, text=text, timeout_s=60) for text in texts]
            # No reply comes until all 32 calls are in flight together: none waits for another.
            standin.wait_until(lambda stats: stats["in_flight"] == 32)
        finally:
            standin.release_replies()
        results = [call.result() for call in calls]

    assert len({result.raw["id"] for result in results}) == 32
    assert standin.stats()["peak_concurrency"] == 32

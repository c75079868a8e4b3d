"""The anthropic provider, through the official SDK, against a Messages API stand-in on loopback."""

import json
import logging
import os
import socket
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest
from django.test import override_settings
from django_q.conf import Conf

from batches.exceptions import InvalidTransition
from batches.models import BatchStatus
from grading import estimate
from grading.claims import record_outcomes
from grading.limits import provider_limits
from grading.models import GradingJob, GradingResult, JobStatus
from grading.providers import (
    Exemplar,
    GradeRequest,
    PermanentProviderError,
    ProviderLimits,
    TransientProviderError,
    provider_class,
)
from grading.providers.anthropic import (
    THINKING_ALLOWANCE,
    TOOL_NAME,
    AnthropicProvider,
    prices_for,
    usage_cost,
)
from grading.providers.openai import response_schema, system_prompt
from grading.runner import grade_work
from grading.schema import SettingsError, split_target, validate_settings
from tests.conftest import make_batch
from tests.support.engine import claim_one, processing, started_batch
from tests.support.llm_standin import LLMStandin
from tests.support.rubrics import ACADEMIC_ESSAY_RUBRIC, ESSAY_SETTINGS, STRONG_ESSAY, WEAK_ESSAY

CRITERIA = ACADEMIC_ESSAY_RUBRIC["criteria"]
KEYS = [criterion["key"] for criterion in CRITERIA]
HAIKU = "claude-haiku-4-5"
ANTHROPIC = {"provider": "anthropic", "model": HAIKU}
SECRET = "sk-ant-api03-never-show-this-secret"


@pytest.fixture
def standin(anthropic_standin):
    return anthropic_standin


def grade(text=STRONG_ESSAY, settings=ESSAY_SETTINGS, model=HAIKU, timeout_s=5.0, exemplars=()):
    request = GradeRequest(
        text=text,
        rubric=ACADEMIC_ESSAY_RUBRIC,
        settings=settings,
        model=model,
        document_name="remote-work.md",
        timeout_s=timeout_s,
        exemplars=exemplars,
    )
    return AnthropicProvider().grade(request)


def sent(standin, index=-1):
    return standin.requests[index].body


# --- a grade ---------------------------------------------------------------------------


def test_a_grade_has_scores_quotes_tokens_and_cost(standin):
    result = grade()

    assert [item.key for item in result.criteria] == KEYS
    assert result.max_score == 100
    assert result.score == sum(item.score for item in result.criteria)
    for graded, criterion in zip(result.criteria, CRITERIA, strict=True):
        assert graded.score in {level["points"] for level in criterion["levels"]}
        assert graded.evidence and all(quote["found"] for quote in graded.evidence)
    assert result.feedback.startswith("Graded a document of")
    usage = result.raw["usage"]
    assert result.input_tokens == usage["input_tokens"] + usage["cache_creation_input_tokens"] > 0
    assert result.output_tokens == usage["output_tokens"] > 0
    assert result.cost == usage_cost(HAIKU, usage).quantize(Decimal("0.000001")) > 0
    assert result.model == HAIKU


def test_the_request_forces_the_record_grade_tool_whose_input_is_the_rubric_s_schema(standin):
    grade()

    body = sent(standin)
    assert body["model"] == HAIKU
    (tool,) = body["tools"]
    assert tool["name"] == TOOL_NAME
    assert tool["input_schema"] == response_schema(CRITERIA)  # the OpenAI path's reply schema
    thesis = tool["input_schema"]["properties"]["criteria"]["properties"]["thesis"]
    assert list(thesis["properties"]) == ["evidence", "reasoning", "score"]
    assert thesis["properties"]["score"]["enum"] == [6, 12, 19, 25]
    assert body["tool_choice"] == {"type": "tool", "name": TOOL_NAME}


def test_the_shared_prompt_is_one_cached_system_block_and_the_document_is_delimited(standin):
    exemplars = (Exemplar(text="A model answer.", score=80, criteria={"thesis": 20}),)
    settings = {**ESSAY_SETTINGS, "instructions": "Be strict about citations."}

    grade(settings=settings, exemplars=exemplars)

    body = sent(standin)
    (system,) = body["system"]
    assert system["cache_control"] == {"type": "ephemeral"}
    assert system["text"] == system_prompt(CRITERIA, settings, exemplars)
    assert "Be strict about citations." in system["text"] and "A model answer." in system["text"]
    (user,) = body["messages"]
    assert user["role"] == "user"
    assert f'<document name="remote-work.md">\n{STRONG_ESSAY}\n</document>' in user["content"]
    assert STRONG_ESSAY not in system["text"]


def test_the_prompt_prefix_is_the_same_for_every_document_so_it_is_read_from_the_cache(standin):
    first = grade(text=STRONG_ESSAY)
    second = grade(text=WEAK_ESSAY)

    one, two = (request.body for request in standin.requests)
    assert (one["system"], one["tools"]) == (two["system"], two["tools"])
    assert first.raw["usage"]["cache_creation_input_tokens"] > 0
    assert first.raw["usage"]["cache_read_input_tokens"] == 0
    assert second.raw["usage"]["cache_read_input_tokens"] == first.raw["usage"]["cache_creation_input_tokens"]
    assert second.raw["usage"]["cache_creation_input_tokens"] == 0


def test_cached_tokens_lower_the_recorded_cost(standin):
    written = grade()
    read = grade()  # the same document: the same tokens, but the prefix comes from the cache

    assert read.input_tokens == written.input_tokens
    assert read.output_tokens == written.output_tokens
    assert read.cost < written.cost
    usage = read.raw["usage"]
    # Haiku 4.5: $1 input, $0.10 cache reads, $5 output per million tokens.
    expected = (
        usage["input_tokens"] * Decimal("1") + usage["cache_read_input_tokens"] * Decimal("0.1")
    ) + usage["output_tokens"] * Decimal("5")
    assert read.cost == (expected / 1_000_000).quantize(Decimal("0.000001"))
    full_price = AnthropicProvider.cost_of(HAIKU, read.input_tokens, read.output_tokens)
    assert read.cost < full_price


def test_temperature_and_a_higher_output_limit_come_from_settings(standin):
    grade(settings={"temperature": 0.2, "max_output_tokens": 5000})

    body = sent(standin)
    assert body["temperature"] == 0.2
    assert body["max_tokens"] == 5000


def test_an_output_limit_too_small_for_the_rubric_is_raised_to_what_it_needs(standin):
    grade(settings={"max_output_tokens": 100})

    assert sent(standin)["max_tokens"] == 200 + 260 * len(KEYS)


def test_models_that_refuse_a_forced_tool_and_temperature_are_asked_the_way_they_accept(standin):
    standin.configure(forced_tool_refused=["claude-sonnet-5-5"], sampling_refused=["claude-sonnet-5-5"])

    result = grade(model="claude-sonnet-5-5", settings={"temperature": 0.0})

    body = sent(standin)
    assert body["tool_choice"] == {"type": "auto"}
    assert "temperature" not in body
    assert f"calling the {TOOL_NAME} tool" in body["messages"][0]["content"]
    # It thinks before it answers, and its thinking counts towards max_tokens.
    assert body["max_tokens"] == 200 + 260 * len(KEYS) + THINKING_ALLOWANCE
    assert len(result.criteria) == len(KEYS)


def test_the_stand_in_refuses_what_the_newest_models_refuse(standin):
    standin.configure(forced_tool_refused=[HAIKU])

    with pytest.raises(PermanentProviderError, match="forced tool use is not supported") as caught:
        grade()

    assert caught.value.status_code == 400


# --- repairs -------------------------------------------------------------------------------


def settled(standin, timeout: float = 10.0):
    """The recorded requests once each has its status (waits on the condition, bounded)."""
    deadline = time.monotonic() + timeout
    while any(request.status is None for request in standin.requests) and time.monotonic() < deadline:
        time.sleep(0.01)
    return standin.requests


@pytest.mark.parametrize("mode", ["missing_criterion", "out_of_range", "over_max"])
def test_a_malformed_tool_input_followed_by_a_valid_one_is_repaired_once(standin, mode):
    standin.configure(malformed=mode, malformed_times=1)

    result = grade()

    first, second = (request.body for request in standin.requests)
    assert second["messages"][:1] == first["messages"]
    assistant, answer = second["messages"][1:]
    (call,) = assistant["content"]
    assert assistant["role"] == "assistant" and call["type"] == "tool_use"
    (error,) = answer["content"]
    assert error["type"] == "tool_result" and error["tool_use_id"] == call["id"]
    assert error["is_error"] is True
    assert error["content"].startswith("Your reply could not be used: criterion “thesis”")
    assert second["tool_choice"] == first["tool_choice"]
    # The stand-in notes a reply's status once it is sent, maybe just after the client read it.
    assert [request.status for request in settled(standin)] == [200, 200]
    assert len(result.criteria) == len(KEYS)
    # Tokens and cost count both calls.
    assert result.output_tokens > result.raw["usage"]["output_tokens"]


def test_a_reply_without_the_tool_call_is_asked_again_in_words(standin):
    standin.configure(malformed="no_tool", malformed_times=1)

    result = grade()

    second = sent(standin)
    assistant, follow_up = second["messages"][1:]
    assert assistant["content"][0]["type"] == "text"
    assert follow_up["content"].startswith(
        f"Your reply could not be used: the reply did not call {TOOL_NAME}."
    )
    assert result.score > 0


def test_a_cut_off_reply_is_asked_again_with_twice_the_room(standin):
    standin.configure(malformed="truncated", malformed_times=1)

    grade()

    first, second = (request.body for request in standin.requests)
    assert second["max_tokens"] == 2 * first["max_tokens"]
    assert second["messages"] == first["messages"]


def test_a_criteria_object_sent_as_a_json_string_is_read_without_a_repair(standin):
    standin.configure(malformed="stringified")

    result = grade()

    assert len(result.criteria) == len(KEYS)
    assert standin.stats()["requests"] == 1


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("missing_criterion", "criterion “thesis” is missing"),
        ("no_tool", f"the reply did not call {TOOL_NAME}"),
        ("truncated", "the reply was cut off at the output token limit"),
    ],
)
def test_a_reply_that_breaks_the_schema_twice_is_permanent_and_names_what_was_wrong(standin, mode, reason):
    standin.configure(malformed=mode)

    with pytest.raises(PermanentProviderError) as caught:
        grade()

    assert (
        str(caught.value) == f"The reply does not match the rubric: {reason}; and after one repair: {reason}."
    )
    assert standin.stats()["requests"] == 2


def test_a_fabricated_quote_is_flagged_not_found(standin):
    standin.configure(malformed="fabricated_quote")

    result = grade()

    assert result.criteria[0].evidence == [
        {"quote": "a sentence the student never wrote about quantum gravity", "found": False}
    ]


# --- errors ----------------------------------------------------------------------------------


def test_a_429_is_transient_and_carries_retry_after_seconds(standin):
    standin.configure(rate_limit_every=1, retry_after_s=7)

    with pytest.raises(TransientProviderError) as caught:
        grade()

    error = caught.value
    assert (error.transient, error.status_code, error.retry_after) == (True, 429, 7)
    assert str(error).startswith("The provider is rate limiting requests (HTTP 429)")
    assert str(error).endswith("Retry after 7 seconds.")


def test_a_retry_after_given_as_an_http_date_becomes_seconds(standin):
    standin.configure(rate_limit_every=1, retry_after_s=30, retry_after_http_date=True)

    with pytest.raises(TransientProviderError) as caught:
        grade()

    assert 25 <= caught.value.retry_after <= 30


def test_a_529_overloaded_is_transient(standin):
    standin.configure(overloaded_every=1)

    with pytest.raises(TransientProviderError) as caught:
        grade()

    assert caught.value.status_code == 529
    assert str(caught.value) == "The provider is overloaded (HTTP 529): Overloaded."


@pytest.mark.parametrize("status", [500, 503])
def test_a_server_error_is_transient(standin, status):
    standin.configure(fail_with_status=status)

    with pytest.raises(TransientProviderError, match=f"HTTP {status}") as caught:
        grade()

    assert caught.value.status_code == status


@pytest.mark.parametrize(
    ("status", "phrase"),
    [
        (400, "rejected the request as invalid"),
        (403, "refused access to this model or endpoint"),
        (404, "does not know this model or endpoint"),
        (413, "refused the request as too large"),
    ],
)
def test_client_errors_are_permanent_with_a_sentence(standin, status, phrase):
    standin.configure(fail_with_status=status)

    with pytest.raises(PermanentProviderError, match=phrase) as caught:
        grade()

    assert caught.value.status_code == status
    assert f"(HTTP {status}):" in str(caught.value)


def test_a_rejected_key_is_permanent_names_the_setting_and_never_shows_the_key(standin, settings, caplog):
    standin.configure(api_key="sk-ant-api03-the-right-one")
    settings.ANTHROPIC_API_KEY = SECRET
    caplog.set_level(logging.DEBUG)

    with pytest.raises(PermanentProviderError) as caught:
        grade()

    error = caught.value
    assert error.status_code == 401
    assert str(error) == (
        "The provider rejected the API key set in ANTHROPIC_API_KEY (HTTP 401): invalid x-api-key."
    )
    assert SECRET not in repr(error.args) and SECRET not in str(error.__cause__ or "")
    assert SECRET not in caplog.text


def test_the_key_from_the_settings_is_sent_and_accepted(standin, settings):
    standin.configure(api_key=SECRET)
    settings.ANTHROPIC_API_KEY = SECRET

    assert grade().score > 0
    assert standin.requests[-1].headers["anthropic-version"]


def test_a_remote_endpoint_without_a_key_is_a_permanent_error_and_a_problem(settings):
    settings.ANTHROPIC_BASE_URL = "https://api.anthropic.com"
    settings.ANTHROPIC_API_KEY = ""

    with pytest.raises(PermanentProviderError, match="set ANTHROPIC_API_KEY"):
        grade()
    assert "set ANTHROPIC_API_KEY" in AnthropicProvider.problem(HAIKU)


def test_a_model_that_is_not_claude_is_a_problem(standin):
    assert "not a Claude model" in AnthropicProvider.problem("gpt-4o-mini")
    assert AnthropicProvider.problem(HAIKU) is None


def test_a_reply_slower_than_the_timeout_is_transient(standin):
    standin.hold_replies()
    try:
        with pytest.raises(TransientProviderError, match="timed out"):
            grade(timeout_s=0.2)
    finally:
        standin.release_replies()


def test_a_refused_connection_is_transient(settings):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.ANTHROPIC_BASE_URL = f"http://127.0.0.1:{port}"

    with pytest.raises(TransientProviderError, match="Could not connect"):
        grade()


def test_an_empty_document_fails_without_a_call(standin):
    with pytest.raises(PermanentProviderError, match="has no text to grade"):
        grade(text="   ")

    assert standin.stats()["requests"] == 0


# --- what the provider states about itself -----------------------------------------------------


def test_prices_come_from_the_table_by_family_and_model_prices_overrides_them(settings):
    settings.MODEL_PRICES = {}
    assert AnthropicProvider.price_for("claude-haiku-4-5-20251001") == (1.0, 5.0)
    assert AnthropicProvider.price_for("claude-sonnet-5-5") == (2.0, 10.0)
    assert prices_for("claude-opus-5-5").cache_read == 0.20
    assert not AnthropicProvider.is_priced("claude-someday-9")
    assert "set MODEL_PRICES" in AnthropicProvider.price_method("claude-someday-9")

    settings.MODEL_PRICES = {"claude-someday-9": [2, 8], "claude-haiku-4-5": [1, 5, 2, 0.5]}
    assert AnthropicProvider.price_for("claude-someday-9") == (2.0, 8.0)
    assert prices_for("claude-someday-9").cache_read == pytest.approx(0.2)
    assert prices_for("claude-haiku-4-5").cache_read == 0.5


def test_a_long_prompt_on_haiku_5_5_is_priced_at_its_higher_tier(settings):
    settings.MODEL_PRICES = {}
    short = usage_cost("claude-haiku-5-5", {"input_tokens": 100_000, "output_tokens": 1000})
    long = usage_cost("claude-haiku-5-5", {"input_tokens": 100_001, "output_tokens": 1000})

    assert short == Decimal("0.0105")
    assert long == (100_001 * Decimal("0.5") + 1000 * Decimal("2.5")) / 1_000_000


@override_settings(ANTHROPIC_MAX_CONCURRENCY=3, ANTHROPIC_RPM=60)
def test_limits_come_from_the_settings():
    assert provider_limits("anthropic") == ProviderLimits(max_concurrency=3, requests_per_minute=60)
    assert "ANTHROPIC_MAX_CONCURRENCY" in provider_limits("anthropic").source


def test_the_default_limits_are_eight_calls_and_no_rate():
    assert provider_limits("anthropic") == ProviderLimits(max_concurrency=8, requests_per_minute=None)


def test_the_prompt_overhead_counts_the_system_prompt_and_the_tool():
    cls = provider_class("anthropic")
    settings = {"rubric": ACADEMIC_ESSAY_RUBRIC}
    tokenizer = cls.tokenizer(HAIKU)

    overhead = cls.prompt_overhead_tokens(settings, tokenizer)

    schema = json.dumps(response_schema(CRITERIA))
    assert overhead > tokenizer.count(system_prompt(CRITERIA, settings) + schema)
    assert cls.tokenizer("claude-opus-5").count("x" * 400) == 130  # newer tokenizer: about 30 % more


def test_describing_the_anthropic_provider_loads_no_sdk():
    code = (
        "import sys, django; django.setup();"
        "from grading.limits import provider_limits;"
        "from grading.providers import provider_class;"
        "provider_limits('anthropic'); cls = provider_class('anthropic');"
        "cls.price_for('claude-haiku-4-5'); cls.problem('claude-haiku-4-5');"
        "cls.prompt_overhead_tokens({}, cls.tokenizer('claude-haiku-4-5'));"
        "print(any(m in sys.modules for m in ('anthropic', 'httpx2')))"
    )
    root = Path(__file__).resolve().parents[1]

    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=root,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "gradeproject.settings"},
    )

    assert result.stdout.strip() == "False"


# --- through the engine ------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_engine_grades_an_anthropic_batch_through_the_runner(owner, standin):
    batch = started_batch(owner, jobs=2, settings=ANTHROPIC)

    for _ in range(2):
        work = claim_one()
        assert (work.provider, work.model) == ("anthropic", HAIKU)
        record_outcomes([grade_work(work)])

    results = GradingResult.objects.filter(job__batch=batch).order_by("pk")
    assert results.count() == 2
    assert {(result.provider, result.model) for result in results} == {("anthropic", HAIKU)}
    assert all(result.cost > 0 and result.input_tokens > 0 for result in results)
    # The second job read the shared prompt from the cache, so it cost less for its tokens.
    assert standin.stats()["cache_writes"] == 1 and standin.stats()["cache_reads"] == 1
    assert not GradingJob.objects.in_batch(batch).exclude(status=JobStatus.COMPLETED).exists()


@pytest.mark.django_db
def test_an_overloaded_provider_requeues_the_job(owner, standin):
    started_batch(owner, jobs=1, settings=ANTHROPIC)
    standin.configure(overloaded_every=1)

    work = claim_one()
    recorded = record_outcomes([grade_work(work)])

    job = GradingJob.objects.get(pk=work.job_id)
    assert recorded.requeued == 1 and job.status == JobStatus.QUEUED
    assert "HTTP 529" in job.last_error


@pytest.mark.django_db
def test_a_rejected_key_fails_the_job_without_showing_the_key(owner, standin, settings):
    started_batch(owner, jobs=1, settings=ANTHROPIC)
    standin.configure(api_key="sk-ant-api03-the-right-one")
    settings.ANTHROPIC_API_KEY = SECRET

    work = claim_one()
    record_outcomes([grade_work(work)])

    job = GradingJob.objects.get(pk=work.job_id)
    assert job.status == JobStatus.FAILED
    assert "ANTHROPIC_API_KEY" in job.last_error and SECRET not in job.last_error


@pytest.mark.django_db
def test_a_batch_for_a_remote_endpoint_without_a_key_is_refused_at_start(owner, settings):
    settings.ANTHROPIC_BASE_URL = "https://api.anthropic.com"
    settings.ANTHROPIC_API_KEY = ""
    batch = make_batch(owner, jobs=1, settings=ANTHROPIC)

    with pytest.raises(InvalidTransition, match="set ANTHROPIC_API_KEY"):
        batch.start_batch()


# --- a model comparison across providers --------------------------------------------------------


COMPARISON = {
    "provider": "openai",
    "model": "gpt-4o-mini",
    "models": ["gpt-4o-mini", f"anthropic:{HAIKU}"],
    **processing(concurrency=8),
}


@pytest.fixture
def openai_standin(settings):
    with LLMStandin() as server:
        settings.OPENAI_BASE_URL = server.url
        settings.OPENAI_API_KEY = ""
        yield server


@pytest.mark.django_db
def test_a_comparison_across_openai_and_anthropic_completes_with_both_results(
    owner, standin, openai_standin, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(Conf, "SYNC", True)
    batch = make_batch(owner, jobs=2, settings=COMPARISON)
    jobs = GradingJob.objects.in_batch(batch).order_by("pk")
    assert [job.overrides for job in jobs] == [
        {"model": "gpt-4o-mini"},
        {"model": HAIKU, "provider": "anthropic"},
    ] * 2
    assert jobs[1].name.endswith(f"[anthropic:{HAIKU}]")

    with django_capture_on_commit_callbacks(execute=True):
        batch.start_batch()

    batch.refresh_from_db()
    assert batch.status == BatchStatus.COMPLETED
    results = GradingResult.objects.filter(job__batch=batch)
    assert sorted((result.provider, result.model) for result in results) == [
        ("anthropic", HAIKU),
        ("anthropic", HAIKU),
        ("openai", "gpt-4o-mini"),
        ("openai", "gpt-4o-mini"),
    ]
    assert standin.stats()["messages"] == 2 and openai_standin.stats()["completions"] == 2


@pytest.mark.django_db
def test_the_estimate_of_a_comparison_counts_each_provider_with_its_own_prices(owner, settings):
    settings.MODEL_PRICES = {}
    batch = make_batch(owner, jobs=2, settings=COMPARISON)

    rows = {(row["provider"], row["model"]): row for row in estimate.estimate_batch(batch)["by_model"]}

    assert set(rows) == {("openai", "gpt-4o-mini"), ("anthropic", HAIKU)}
    assert rows[("anthropic", HAIKU)]["price_per_million_tokens"] == {
        "input": 1.0,
        "cached_input": 0.1,
        "output": 5.0,
    }
    assert rows[("anthropic", HAIKU)]["jobs"] == 2


@pytest.mark.django_db
def test_a_comparison_checks_each_provider_before_it_starts(owner, settings):
    settings.OPENAI_BASE_URL = "http://127.0.0.1:9/v1"
    settings.ANTHROPIC_BASE_URL = "https://api.anthropic.com"
    settings.ANTHROPIC_API_KEY = ""
    batch = make_batch(owner, jobs=1, settings=COMPARISON)

    with pytest.raises(InvalidTransition, match="set ANTHROPIC_API_KEY"):
        batch.start_batch()


def test_a_models_entry_names_a_provider_only_by_a_registered_prefix():
    assert split_target("anthropic:claude-haiku-4-5", "openai") == ("anthropic", "claude-haiku-4-5")
    assert split_target("gpt-4o-mini", "openai") == ("openai", "gpt-4o-mini")
    # An Ollama model's tag is not a provider.
    assert split_target("llama3.1:8b", "openai") == ("openai", "llama3.1:8b")

    settings = validate_settings({**COMPARISON, "rubric": ACADEMIC_ESSAY_RUBRIC})
    assert settings.grading_targets() == [("openai", "gpt-4o-mini"), ("anthropic", HAIKU)]


def test_a_models_entry_with_a_provider_and_no_model_is_refused():
    with pytest.raises(SettingsError) as caught:
        validate_settings({"provider": "openai", "models": ["anthropic:"], "rubric": ACADEMIC_ESSAY_RUBRIC})

    assert "names no model" in " ".join(caught.value.errors["models"])


@pytest.mark.django_db
def test_a_single_models_entry_of_another_provider_is_what_the_jobs_grade_with(owner):
    batch = make_batch(owner, jobs=1, settings={"provider": "openai", "models": [f"anthropic:{HAIKU}"]})

    (job,) = GradingJob.objects.in_batch(batch)
    assert job.overrides == {"model": HAIKU, "provider": "anthropic"}
    assert validate_settings(batch.effective_settings(job.overrides)).provider == "anthropic"

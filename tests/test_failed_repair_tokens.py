"""The calls a failed repair leaves unpaid for are still counted: the batch's tokens and cost include them.

A reply that does not fit earns one repair; when the repair's own call fails (a 5xx, an
overloaded answer) no grade comes of it, but the provider billed the first call. Real replies
from the stand-ins on loopback, graded and recorded by the engine in the database.
"""

import json
import time
from decimal import Decimal

import pytest

from batches.analytics import batch_analytics
from grading.claims import record_outcomes
from grading.estimate import estimate_batch
from grading.models import GradingJob, GradingResult, JobStatus
from grading.providers.anthropic import AnthropicProvider
from grading.providers.openai import OpenAIProvider
from grading.runner import grade_work
from tests.support import scripted
from tests.support.anthropic_standin import AnthropicStandin
from tests.support.engine import OPENAI, claim_one, processing, started_batch

pytestmark = pytest.mark.django_db

RULES = processing(max_attempts=3, backoff_base_s=0, backoff_max_s=0)
WRONG_SCHEMA = json.dumps({"grade": 85, "comments": "Good work."})


def noting_usage(reply, usages: list[dict]):
    """The scripted reply, its usage block noted as the provider billed it."""

    def answer(body):
        status, kind, data = reply(body)
        usages.append(json.loads(data)["usage"])
        return status, kind, data

    return answer


def graded_once(owner, settings):
    batch = started_batch(owner, jobs=1, settings=settings)
    work = claim_one()
    record_outcomes([grade_work(work)])
    return batch, GradingJob.objects.get(pk=work.job_id)


def test_a_repair_refused_with_a_500_still_counts_the_first_call_s_tokens_and_cost(owner, standin):
    usages: list[dict] = []
    standin.script(
        noting_usage(scripted.chat(lambda good: WRONG_SCHEMA), usages),
        scripted.raw('{"error": {"message": "boom"}}', status=500, content_type="application/json"),
    )

    batch, job = graded_once(owner, {**OPENAI, **RULES})

    [usage] = usages
    assert len(standin.requests) == 2  # the first call and its repair
    assert job.status == JobStatus.QUEUED and job.attempts == 0  # the provider's failure
    assert job.billed_input_tokens == usage["prompt_tokens"] > 0
    assert job.billed_output_tokens == usage["completion_tokens"] > 0
    cost = OpenAIProvider.cost_of("gpt-4o-mini", usage["prompt_tokens"], usage["completion_tokens"])
    assert job.billed_cost == cost > 0
    spent = estimate_batch(batch)["spent_so_far"]
    assert spent["input_tokens"] == usage["prompt_tokens"]
    assert spent["output_tokens"] == usage["completion_tokens"]
    [model] = batch_analytics(batch)["by_model"]
    assert model["input_tokens"] == usage["prompt_tokens"]
    assert model["cost"] == float(cost)


def test_a_job_graded_after_a_failed_repair_counts_both_attempts_calls(owner, standin):
    standin.script(
        scripted.chat(lambda good: WRONG_SCHEMA),
        scripted.raw('{"error": {"message": "boom"}}', status=503, content_type="application/json"),
    )
    batch, job = graded_once(owner, {**OPENAI, **RULES})
    record_outcomes([grade_work(claim_one("worker/2"))])

    result = GradingResult.objects.get(job=job)
    job.refresh_from_db()
    assert job.status == JobStatus.COMPLETED
    spent = estimate_batch(batch)["spent_so_far"]
    assert spent["input_tokens"] == result.input_tokens + job.billed_input_tokens
    assert job.billed_input_tokens > 0
    assert Decimal(str(spent["cost"])) == (result.cost + job.billed_cost).quantize(Decimal("0.000001"))


def test_two_replies_that_do_not_fit_count_both_calls_on_the_failed_job(owner, standin):
    usages: list[dict] = []
    wrong = noting_usage(scripted.chat(lambda good: WRONG_SCHEMA), usages)
    standin.script(wrong, wrong)

    batch, job = graded_once(owner, {**OPENAI, **RULES})

    assert job.status == JobStatus.FAILED
    assert job.billed_input_tokens == sum(usage["prompt_tokens"] for usage in usages)
    assert job.billed_output_tokens == sum(usage["completion_tokens"] for usage in usages)
    assert estimate_batch(batch)["spent_so_far"]["output_tokens"] == job.billed_output_tokens


def test_an_anthropic_repair_answered_overloaded_still_counts_the_first_call(owner, settings):
    settings.MODEL_PRICES = {}
    with AnthropicStandin() as server:
        settings.ANTHROPIC_BASE_URL = server.url
        settings.ANTHROPIC_API_KEY = ""
        text = scripted.blocks([{"type": "text", "text": "The essay is good, I would give it 85."}])
        overloaded = json.dumps(
            {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
        )
        server.script(text, scripted.raw(overloaded, status=529, content_type="application/json"))

        batch, job = graded_once(owner, {"provider": "anthropic", "model": "claude-haiku-4-5", **RULES})

    assert job.status == JobStatus.QUEUED and job.attempts == 0
    # scripted.message bills 100 input and 50 output tokens.
    assert (job.billed_input_tokens, job.billed_output_tokens) == (100, 50)
    cost = AnthropicProvider.cost_of("claude-haiku-4-5", 100, 50)
    assert job.billed_cost == cost > 0
    assert estimate_batch(batch)["spent_so_far"]["input_tokens"] == 100


def test_a_repair_that_times_out_still_counts_the_first_call(owner, standin):
    usages: list[dict] = []
    late = scripted.chat(lambda good: json.dumps(good))

    def too_late(body):
        time.sleep(1.5)  # past the batch's timeout_s: the client gives up first
        return late(body)

    standin.script(noting_usage(scripted.chat(lambda good: WRONG_SCHEMA), usages), too_late)

    batch, job = graded_once(owner, {**OPENAI, **processing(max_attempts=3, timeout_s=0.5)})

    [usage] = usages
    assert job.status == JobStatus.QUEUED and job.attempts == 0
    assert "timed out" in job.last_error.lower() or "timeout" in job.last_error.lower()
    assert job.billed_input_tokens == usage["prompt_tokens"] > 0
    assert estimate_batch(batch)["spent_so_far"]["output_tokens"] == usage["completion_tokens"]

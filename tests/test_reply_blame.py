"""A broken reply is the job's (one attempt, then it fails with the reason); a broken endpoint is the provider's.

Real replies from the stand-ins on loopback, graded and recorded by the engine in the database.
"""

import json

import pytest

from grading.claims import Blame, record_outcomes
from grading.models import GradingJob, GradingResult, JobStatus, ProviderCircuit
from grading.runner import grade_work
from tests.support import scripted
from tests.support.anthropic_standin import AnthropicStandin
from tests.support.engine import OPENAI, claim_one, later, processing, started_batch

pytestmark = pytest.mark.django_db

ONE_ATTEMPT = {**OPENAI, **processing(max_attempts=3, backoff_base_s=0, backoff_max_s=0)}


def graded_once(owner, settings=ONE_ATTEMPT):
    started_batch(owner, jobs=1, settings=settings)
    work = claim_one()
    outcome = grade_work(work)
    record_outcomes([outcome])
    return outcome, GradingJob.objects.get(pk=work.job_id)


def circuit_failures(provider="openai") -> int:
    row = ProviderCircuit.objects.filter(provider=provider).first()
    return row.failures if row else 0


def test_a_reply_in_the_wrong_schema_twice_fails_the_job_naming_it_after_two_calls(owner, standin):
    wrong = scripted.chat(lambda good: json.dumps({"grade": 85, "comments": "Good work."}))
    standin.script(wrong, wrong)

    outcome, job = graded_once(owner)

    assert len(standin.requests) == 2
    assert job.status == JobStatus.FAILED and job.attempts == 1
    assert "no “criteria” object; and after one repair: the reply has no “criteria” object" in job.last_error
    assert outcome.blame == Blame.JOB and outcome.answered  # the provider is up
    assert circuit_failures() == 0


def test_a_refusal_fails_the_job_with_the_model_s_words_and_counts_as_an_answer(owner, standin):
    standin.script(scripted.chat(None, refusal="I won't grade this."))

    outcome, job = graded_once(owner)

    assert job.status == JobStatus.FAILED and "I won't grade this" in job.last_error
    assert outcome.answered
    assert circuit_failures() == 0


def test_an_html_page_with_http_200_requeues_the_job_without_an_attempt_and_counts_on_the_circuit(
    owner, standin
):
    standin.script(scripted.raw("<html><title>Bad gateway</title></html>"))

    outcome, job = graded_once(owner)

    assert outcome.blame == Blame.PROVIDER
    assert job.status == JobStatus.QUEUED and job.attempts == 0
    assert circuit_failures() == 1


def test_a_server_error_is_the_provider_s_and_a_malformed_reply_after_it_is_the_job_s(owner, standin):
    standin.configure(fail_with_status=503)
    outcome, job = graded_once(owner)
    assert outcome.blame == Blame.PROVIDER and circuit_failures() == 1

    standin.configure(fail_with_status=None)
    standin.script(scripted.chat("not json"), scripted.chat("still not json"))
    job.refresh_from_db()
    work = claim_one(now=later(1, job.next_attempt_at))
    record_outcomes([grade_work(work)])

    job.refresh_from_db()
    assert job.status == JobStatus.FAILED and "the reply is not JSON" in job.last_error
    assert circuit_failures() == 0  # the answer closed the count of failures in a row


def test_a_nan_in_a_claude_reply_is_stored_with_the_grade(owner, settings):
    with AnthropicStandin() as server:
        settings.ANTHROPIC_BASE_URL = server.url
        settings.ANTHROPIC_API_KEY = ""
        settings.MODEL_PRICES = {}
        server.script(scripted.tool_call(lambda good: json.dumps(good)[:-1] + ', "confidence": NaN}'))

        _, job = graded_once(owner, {"provider": "anthropic", "model": "claude-haiku-4-5"})

    assert job.status == JobStatus.COMPLETED, job.last_error
    assert GradingResult.objects.filter(job=job).exists()

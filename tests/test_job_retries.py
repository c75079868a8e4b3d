"""Transient failures are retried with backoff, permanent ones fail at once.

Provider errors come from a real HTTP server on loopback through the openai provider.
"""

import random
from datetime import timedelta

import pytest
from django.utils import timezone

from grading.claims import PROVIDER_RETRY_LIMIT, claim_jobs, record_outcomes
from grading.limits import backoff_delay
from grading.models import GradingJob, JobStatus
from grading.runner import grade_work
from tests.support.engine import OPENAI, claim_one, failure, later, processing, started_batch
from tests.support.llm_standin import LLMStandin

pytestmark = pytest.mark.django_db


def attempt(now=None):
    """Claim the one queued job, call the provider for real, record what happened."""
    work = claim_one(now=now)
    recorded = record_outcomes([grade_work(work)], now=now)
    return GradingJob.objects.get(pk=work.job_id), recorded


@pytest.mark.parametrize("status", [500, 503, 408])
def test_a_server_error_is_retried_later_without_using_up_an_attempt(owner, standin, status):
    started_batch(owner, jobs=1, settings=OPENAI)
    standin.configure(fail_with_status=status)
    now = timezone.now()

    job, recorded = attempt(now)

    assert recorded.requeued == 1
    assert job.status == JobStatus.QUEUED
    # The provider's failure, not the job's: the attempt is given back.
    assert job.attempts == 0
    assert job.provider_retries == 1
    assert job.next_attempt_at >= now
    assert f"HTTP {status}" in job.last_error
    assert "not counted as an attempt" in job.last_error


@pytest.mark.parametrize("status", [400, 401, 404])
def test_a_client_error_fails_the_job_at_once(owner, standin, status):
    batch = started_batch(owner, jobs=1, settings=OPENAI)
    standin.configure(fail_with_status=status)

    job, recorded = attempt()

    assert recorded.failed == 1
    assert job.status == JobStatus.FAILED
    assert job.attempts == 1
    assert f"HTTP {status}" in job.last_error
    assert recorded.touched_batches == {batch.pk}


def test_a_reply_that_does_not_match_the_rubric_fails_the_job_at_once(owner, standin):
    started_batch(owner, jobs=1, settings=OPENAI)
    standin.configure(malformed=True)

    job, _ = attempt()

    assert job.status == JobStatus.FAILED
    assert "does not match the rubric" in job.last_error


def test_a_timeout_is_transient(owner, standin):
    started_batch(owner, jobs=1, settings={**OPENAI, **processing(timeout_s=0.2)})
    standin.configure(latency_s=1.0)

    job, _ = attempt()

    assert job.status == JobStatus.QUEUED
    assert "timed out" in job.last_error


def test_an_unreachable_provider_is_transient(owner, settings):
    with LLMStandin() as server:
        url = server.url
    settings.OPENAI_BASE_URL = url
    started_batch(owner, jobs=1, settings=OPENAI)

    job, _ = attempt()

    assert job.status == JobStatus.QUEUED
    assert "Could not connect" in job.last_error


def test_a_rate_limited_job_is_never_retried_before_retry_after(owner, standin):
    started_batch(owner, jobs=1, settings={**OPENAI, **processing(backoff_base_s=1, backoff_max_s=2)})
    standin.configure(rate_limit_every=1, retry_after_s=30)
    now = timezone.now()

    job, _ = attempt(now)

    assert job.status == JobStatus.QUEUED
    assert job.next_attempt_at >= now + timedelta(seconds=30)
    assert "HTTP 429" in job.last_error
    assert claim_jobs(1, "early/1", now=job.next_attempt_at - timedelta(seconds=1)) == []
    assert len(claim_jobs(1, "due/1", now=job.next_attempt_at)) == 1


def test_a_retry_after_given_as_a_date_is_honoured_too(owner, standin):
    started_batch(owner, jobs=1, settings={**OPENAI, **processing(backoff_base_s=0, backoff_max_s=0)})
    standin.configure(rate_limit_every=1, retry_after_s=20, retry_after_http_date=True)
    now = timezone.now()

    job, _ = attempt(now)

    # An HTTP date has whole seconds: allow the one lost to rounding.
    assert job.next_attempt_at >= now + timedelta(seconds=19)


def test_attempts_are_bounded_by_max_attempts(owner):
    batch = started_batch(owner, jobs=1, settings=processing(max_attempts=2))
    now = timezone.now()

    def broken(name):
        raise RuntimeError("the grader's model file is missing")

    record_outcomes([grade_work(claim_one("w/1", now=now), provider_lookup=broken)], now=now)
    first = GradingJob.objects.get()
    recorded = record_outcomes([grade_work(claim_one("w/2", now=later(3600, now)), provider_lookup=broken)])
    second = GradingJob.objects.get()

    assert first.status == JobStatus.QUEUED
    assert second.status == JobStatus.FAILED
    assert second.attempts == 2
    assert "gave up after 2 attempts" in second.last_error
    assert recorded.touched_batches == {batch.pk}


def test_the_providers_failures_never_use_up_a_jobs_attempts(owner, standin):
    started_batch(owner, jobs=1, settings={**OPENAI, **processing(max_attempts=2)})
    standin.configure(fail_with_status=503)
    now = timezone.now()

    for hour in range(1, 6):
        job, recorded = attempt(later(3600 * hour, now))
        assert job.status == JobStatus.QUEUED
        assert recorded.touched_batches == set()

    assert job.attempts == 0
    assert job.provider_retries == 5
    assert standin.stats()["requests"] == 5


def test_a_document_the_provider_fails_on_again_and_again_ends_failed(owner, standin):
    started_batch(owner, jobs=1, settings=OPENAI)
    GradingJob.objects.update(provider_retries=PROVIDER_RETRY_LIMIT - 1)
    standin.configure(fail_with_status=500)

    job, recorded = attempt()

    assert recorded.failed == 1
    assert job.status == JobStatus.FAILED
    assert f"failed on this document {PROVIDER_RETRY_LIMIT} times" in job.last_error


def test_a_job_that_succeeds_on_a_later_attempt_keeps_one_result_and_no_error(owner, standin):
    started_batch(owner, jobs=1, settings=OPENAI)
    standin.configure(fail_with_status=500)
    now = timezone.now()
    attempt(now)
    standin.configure(fail_with_status=None)

    job, recorded = attempt(later(3600, now))

    assert recorded.completed == 1
    assert job.status == JobStatus.COMPLETED
    # The provider's 500 did not count.
    assert job.attempts == 1
    assert job.last_error == ""
    assert job.result.provider == "openai"
    assert job.result.input_tokens > 0


def test_an_unreadable_document_fails_its_job_permanently_with_the_reason(owner):
    started_batch(owner, jobs=1)
    GradingJob.objects.get().document.__class__.objects.update(
        text="", extraction_error="“scan.pdf” has no extractable text; it may be a scanned image without OCR."
    )

    job, _ = attempt()

    assert job.status == JobStatus.FAILED
    assert job.attempts == 1
    assert "no extractable text" in job.last_error


def test_an_unexpected_error_is_retried_within_max_attempts(owner):
    started_batch(owner, jobs=1)
    work = claim_one()

    def broken(name):
        raise RuntimeError("the grader's model file is missing")

    outcome = grade_work(work, provider_lookup=broken)
    record_outcomes([outcome])

    job = GradingJob.objects.get()
    assert outcome.transient
    assert job.status == JobStatus.QUEUED
    assert "RuntimeError: the grader's model file is missing" in job.last_error


def test_an_unknown_provider_fails_permanently(owner):
    started_batch(owner, jobs=1)
    GradingJob.objects.update(provider="nonesuch")

    job, _ = attempt()

    assert job.status == JobStatus.FAILED
    assert "nonesuch" in job.last_error


def test_a_transient_failure_of_the_last_attempt_ends_the_job_failed(owner):
    started_batch(owner, jobs=1, settings=processing(max_attempts=1))
    work = claim_one()

    record_outcomes([failure(work, "The provider failed with HTTP 502: bad gateway.")])

    job = GradingJob.objects.get()
    assert job.status == JobStatus.FAILED
    assert job.last_error == "The provider failed with HTTP 502: bad gateway. (gave up after 1 attempts)"


@pytest.mark.parametrize("attempt_number", [1, 2, 3, 4, 8])
def test_backoff_is_full_jitter_below_an_exponential_ceiling(attempt_number):
    rng = random.Random(attempt_number)
    ceiling = min(60, 2 * 2 ** (attempt_number - 1))

    delays = [backoff_delay(attempt_number, 2, 60, rng=rng) for _ in range(200)]

    assert all(0 <= delay <= ceiling for delay in delays)
    assert max(delays) > ceiling / 2
    assert min(delays) < ceiling / 2


def test_backoff_is_never_shorter_than_retry_after():
    rng = random.Random(1)

    delays = [backoff_delay(1, 2, 60, retry_after=45, rng=rng) for _ in range(100)]

    assert min(delays) >= 45

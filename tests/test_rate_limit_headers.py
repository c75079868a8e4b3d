"""What a provider's rate-limit headers say is left is kept per provider, and claims slow down before the wall."""

from datetime import UTC, datetime, timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from grading.claims import claim_jobs, record_outcomes
from grading.models import GradingJob, JobStatus
from grading.providers import GradeRequest, PermanentProviderError, TransientProviderError
from grading.providers.anthropic import AnthropicProvider
from grading.providers.remote import quota_from_headers, status_error
from grading.runner import Runner, grade_work
from tests.support.anthropic_standin import AnthropicStandin
from tests.support.engine import started_batch
from tests.support.learnt import QUICK, state
from tests.support.llm_standin import LLMStandin
from tests.support.rate_limits import duration
from tests.support.rubrics import ACADEMIC_ESSAY_RUBRIC, ESSAY_SETTINGS, STRONG_ESSAY

pytestmark = pytest.mark.django_db


# --- reading the headers ------------------------------------------------------------------


def test_openai_headers_give_what_is_left_and_the_reset_durations():
    quota = quota_from_headers(
        {
            "x-ratelimit-limit-requests": "500",
            "x-ratelimit-remaining-requests": "499",
            "x-ratelimit-reset-requests": "120ms",
            "x-ratelimit-limit-tokens": "30000",
            "x-ratelimit-remaining-tokens": "28500",
            "x-ratelimit-reset-tokens": "6m0s",
        }
    )

    assert (quota.requests_limit, quota.requests_remaining, quota.requests_reset_s) == (500, 499, 0.12)
    assert (quota.tokens_limit, quota.tokens_remaining, quota.tokens_reset_s) == (30000, 28500, 360.0)


def test_anthropic_headers_give_what_is_left_and_the_reset_moments():
    soon = (datetime.now(UTC) + timedelta(seconds=30)).isoformat(timespec="seconds").replace("+00:00", "Z")
    quota = quota_from_headers(
        {
            "anthropic-ratelimit-requests-limit": "50",
            "anthropic-ratelimit-requests-remaining": "49",
            "anthropic-ratelimit-requests-reset": soon,
            "anthropic-ratelimit-input-tokens-limit": "40000",
            "anthropic-ratelimit-input-tokens-remaining": "39000",
            "anthropic-ratelimit-input-tokens-reset": soon,
        }
    )

    assert (quota.requests_limit, quota.requests_remaining) == (50, 49)
    assert (quota.tokens_limit, quota.tokens_remaining) == (40000, 39000)
    assert 25 <= quota.requests_reset_s <= 30


def test_unreadable_or_missing_headers_are_no_quota():
    assert quota_from_headers({}) is None
    assert quota_from_headers({"x-ratelimit-remaining-tokens": "many"}) is None
    quota = quota_from_headers({"x-ratelimit-remaining-tokens": "10", "x-ratelimit-reset-tokens": "soon"})
    assert (quota.tokens_remaining, quota.tokens_reset_s) == (10, None)


def test_the_stand_ins_write_resets_as_openai_does():
    assert [duration(value) for value in (0.25, 1, 1.5, 360)] == ["250ms", "1s", "1.5s", "6m0s"]


def test_a_429_carries_the_headers_and_says_it_is_a_rate_limit():
    error = status_error(429, "Slow down", {"retry-after": "2", "x-ratelimit-remaining-requests": "0"})

    assert isinstance(error, TransientProviderError)
    assert error.rate_limited and error.quota.requests_remaining == 0
    assert status_error(529, "Overloaded", {}, busy={529: "is overloaded"}).rate_limited
    assert not isinstance(status_error(400, "Bad", {}), TransientProviderError)
    assert not status_error(500, "Oops", {}).rate_limited
    assert isinstance(status_error(401, "No", {}), PermanentProviderError)


def test_the_anthropic_path_reads_the_headers_of_the_reply_without_another_request(settings):
    with AnthropicStandin(tokens_per_minute=100_000) as standin:
        settings.ANTHROPIC_BASE_URL, settings.ANTHROPIC_API_KEY = standin.url, ""
        request = GradeRequest(STRONG_ESSAY, ACADEMIC_ESSAY_RUBRIC, ESSAY_SETTINGS, "claude-haiku-4-5")

        grade = AnthropicProvider().grade(request)

        assert len(standin.requests) == 1
    assert grade.quota.tokens_limit == 100_000
    assert 0 < grade.quota.tokens_remaining < 100_000


# --- slowing down before the wall --------------------------------------------------------------


def test_headers_with_few_requests_left_stop_claims_before_the_provider_refuses(owner, settings):
    """The stand-in allows 4 requests a minute; its first reply says 3 are left."""
    with LLMStandin(requests_per_minute=4) as standin:
        settings.OPENAI_BASE_URL, settings.OPENAI_API_KEY = standin.url, ""
        started_batch(owner, jobs=1, settings=QUICK)
        Runner(threads=4, poll_s=0.05, linger_s=0).run()
        assert 3 <= state().requests_left < 3.1
        batch = started_batch(owner, jobs=6, settings=QUICK)

        Runner(threads=4, poll_s=0.05, linger_s=0, budget_s=1.5).run()

        stats = standin.stats()
        statuses = [(round(r.received_at % 100, 2), r.status) for r in standin.requests]
    assert stats["rate_limited"] == 0, statuses
    assert stats["completions"] == 4
    jobs = GradingJob.objects.in_batch(batch)
    assert jobs.filter(status=JobStatus.COMPLETED).count() == 3
    assert set(jobs.filter(status=JobStatus.QUEUED).values_list("attempts", flat=True)) == {0}


def test_a_token_limit_announced_in_headers_is_kept_from_the_next_claim_on(owner, settings):
    with LLMStandin(tokens_per_minute=50_000) as standin:
        settings.OPENAI_BASE_URL, settings.OPENAI_API_KEY = standin.url, ""
        started_batch(owner, jobs=1, settings=QUICK)

        Runner(threads=4, poll_s=0.05, linger_s=0).run()

        left = standin.stats()["limits"]["tokens"]
    kept = state()
    # The stand-in's figure has refilled since the reply was recorded; ours is as of then.
    refilled = 50_000 / 60 * (timezone.now() - kept.tokens_at).total_seconds()
    assert kept.tokens_limit == 50_000
    assert left - 100 - refilled <= kept.tokens_left <= left


def test_a_configured_token_budget_is_spent_at_claim_and_trued_up_with_the_replys_usage(owner, settings):
    settings.OPENAI_TPM = 100_000
    with LLMStandin() as standin:
        settings.OPENAI_BASE_URL, settings.OPENAI_API_KEY = standin.url, ""
        started_batch(owner, jobs=1, settings=QUICK)

        [work] = claim_jobs(1, "runner-a/1")
        assert work.estimated_tokens > 0
        assert state().tokens_left == 100_000 - work.estimated_tokens

        outcome = grade_work(work)
        record_outcomes([outcome])

    used = outcome.grade.input_tokens + outcome.grade.output_tokens
    # The estimate reserves the most output the call may ask for: more than it used.
    assert used < work.estimated_tokens
    assert state().tokens_left == 100_000 - used


@override_settings(OPENAI_TPM=10_000)
def test_a_spent_token_budget_leaves_the_jobs_queued_until_it_refills(owner):
    started_batch(owner, jobs=20, settings=QUICK)

    claimed = claim_jobs(20, "runner-a/1")

    total = sum(work.estimated_tokens for work in claimed)
    assert 0 < len(claimed) < 20
    assert total <= 10_000
    assert GradingJob.objects.filter(status=JobStatus.QUEUED).count() == 20 - len(claimed)

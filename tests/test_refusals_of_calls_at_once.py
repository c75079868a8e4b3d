"""A 429 for one call too many, while the provider answers others, says "slow down", not "down"."""

from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from grading import learnt_limits
from grading.circuits import ANSWERING_S, CIRCUIT_FAILURES
from grading.claims import Blame, Outcome, claim_jobs, record_outcomes
from grading.models import GradingJob, JobStatus, ProviderCircuit, ProviderLimitState
from grading.providers import Quota
from grading.runner import CallSlots, Runner
from tests.support.engine import started_batch
from tests.support.learnt import QUICK
from tests.support.llm_standin import LLMStandin

pytestmark = pytest.mark.django_db

REFUSED = "The provider is rate limiting requests (HTTP 429)."


def refused(work, alongside: bool = True, quota: Quota | None = None) -> Outcome:
    """A 429 with a Retry-After of 30 s; `alongside`: other calls of its runner were in flight."""
    return Outcome(
        work,
        error=REFUSED,
        transient=True,
        retry_after=30,
        blame=Blame.PROVIDER,
        refused=True,
        alongside=alongside,
        quota=quota,
    )


def answered(work) -> Outcome:
    return Outcome(work, error="The provider rejected the request as invalid (HTTP 400).", answered=True)


def circuit() -> ProviderCircuit:
    return ProviderCircuit.objects.get(provider="openai")


def refusals_after_an_answer(now, jobs: int, answered_at=None, **options) -> list:
    [first, *works] = claim_jobs(jobs, "runner-a/1", now=now)
    record_outcomes([answered(first)], now=answered_at or now)
    record_outcomes([refused(work, **options) for work in works], now=now)
    return works


def test_a_burst_of_429s_while_the_provider_answers_others_leaves_its_circuit_closed(owner):
    started_batch(owner, jobs=CIRCUIT_FAILURES + 6, settings=QUICK)
    now = timezone.now()

    refusals_after_an_answer(now, CIRCUIT_FAILURES + 6)

    assert circuit().open_until is None
    assert circuit().failures == 0


def test_a_job_refused_for_calls_at_once_may_be_claimed_again_at_once(owner):
    started_batch(owner, jobs=4, settings=QUICK)
    now = timezone.now()

    works = refusals_after_an_answer(now, 4)

    again = claim_jobs(10, "runner-b/1", now=now)
    assert sorted(work.job_id for work in again) == sorted(work.job_id for work in works)
    # Still no attempt used up by a 429.
    assert set(
        GradingJob.objects.filter(pk__in=[w.job_id for w in works]).values_list("attempts", flat=True)
    ) == {1}


def test_429s_after_the_provider_stopped_answering_open_its_circuit(owner):
    started_batch(owner, jobs=CIRCUIT_FAILURES + 1, settings=QUICK)
    now = timezone.now()

    refusals_after_an_answer(now, CIRCUIT_FAILURES + 1, answered_at=now - timedelta(seconds=ANSWERING_S + 1))

    assert circuit().open_until > now
    assert claim_jobs(10, "runner-b/1", now=now) == []


def test_a_429_saying_the_minutes_requests_are_spent_waits_its_retry_after(owner):
    started_batch(owner, jobs=2, settings=QUICK)
    now = timezone.now()
    spent = Quota(requests_limit=500, requests_remaining=0, requests_reset_s=30)

    [work] = refusals_after_an_answer(now, 2, quota=spent)

    job = GradingJob.objects.get(pk=work.job_id)
    assert job.status == JobStatus.QUEUED
    assert job.next_attempt_at >= now + timedelta(seconds=30)


def test_a_429_to_a_call_made_alone_waits_its_retry_after(owner):
    started_batch(owner, jobs=2, settings=QUICK)
    now = timezone.now()

    [work] = refusals_after_an_answer(now, 2, alongside=False)

    assert GradingJob.objects.get(pk=work.job_id).next_attempt_at >= now + timedelta(seconds=30)


@override_settings(OPENAI_MAX_CONCURRENCY=128)
def test_the_number_grows_back_quickly_only_to_the_calls_the_provider_took(owner, monkeypatch):
    monkeypatch.setattr(learnt_limits, "PROBE_ROUNDS", 2)
    # At the last refusal 35 were in flight and 3 refused: the provider took 32.
    ProviderLimitState.objects.create(provider="openai", concurrency=28, wall=35, cut_refusals=3)
    started_batch(owner, jobs=60, settings=QUICK)
    works = claim_jobs(60, "runner-a/1")

    record_outcomes([answered_crowded(work) for work in works[:40]])

    # 28 → 32 after a quarter round each; past 32, one more only after two rounds (64 answers).
    assert ProviderLimitState.objects.get(provider="openai").concurrency == 32


def answered_crowded(work) -> Outcome:
    outcome = answered(work)
    outcome.crowded = True
    return outcome


def test_a_call_bound_by_slots_its_runner_could_not_take_does_not_count_as_crowded():
    slots = CallSlots("openai", cap=32)
    slots.update(held=2, target=16, good_until=float("inf"), now=0, renew_every=1)

    with slots.call() as first, slots.call() as second:
        assert (first, second) == (False, False)

    slots.update(held=2, target=2, good_until=float("inf"), now=0, renew_every=1)
    with slots.call(), slots.call() as last:
        assert last is True


def test_a_runner_against_a_provider_taking_fewer_calls_than_configured_never_opens_its_circuit(
    owner, settings
):
    """The stand-in takes 4 at once and answers 429 with a Retry-After of 30 s above that."""
    settings.OPENAI_MAX_CONCURRENCY = 64
    with LLMStandin(latency_s=0.1, max_concurrency=4, retry_after_s=30) as standin:
        settings.OPENAI_BASE_URL, settings.OPENAI_API_KEY = standin.url, ""
        # A provider that has been answering: one job graded first.
        started_batch(owner, jobs=1, settings=QUICK)
        assert Runner(threads=1, poll_s=0.05).run().completed == 1
        started_batch(owner, jobs=40, settings=QUICK)

        # A runner waits for a retry at most linger_s ahead: jobs held for the Retry-After
        # would be left queued.
        report = Runner(threads=16, poll_s=0.05, linger_s=2).run()

        stats = standin.stats()
    assert stats["over_cap"] > 0
    assert report.completed == 40
    assert not ProviderCircuit.objects.filter(provider="openai", opens__gt=0).exists()

"""A provider's calls at once are learnt: cut when it answers 429 or 529, grown again after answers."""

from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from grading import learnt_limits
from grading.claims import claim_jobs, hold_slots, record_outcomes
from grading.models import GradingJob, JobStatus, ProviderLimitState
from grading.runner import Runner
from tests.support.engine import processing, started_batch
from tests.support.learnt import QUICK, answered, refused, state
from tests.support.llm_standin import LLMStandin

pytestmark = pytest.mark.django_db


@override_settings(OPENAI_MAX_CONCURRENCY=20)
def test_a_429_cuts_the_providers_calls_at_once_to_those_it_took(owner):
    started_batch(owner, jobs=3, settings=QUICK)
    hold_slots("runner-a", "openai", cap=20, want=10)
    works = claim_jobs(3, "runner-a/1")

    record_outcomes([refused(work) for work in works])

    # The runner gave the refused calls' slots back: 13 were in flight, the provider took 10.
    assert state().concurrency == 10
    assert state().wall == 13
    assert learnt_limits.caps(["openai"]) == {"openai": 10}


@override_settings(OPENAI_MAX_CONCURRENCY=20)
def test_refusals_soon_after_a_cut_belong_to_it_and_never_cut_more_than_a_third(owner):
    ProviderLimitState.objects.create(provider="openai", concurrency=20, wall=21)
    started_batch(owner, jobs=6, settings=QUICK)
    hold_slots("runner-a", "openai", cap=20, want=10)
    now = timezone.now()
    works = claim_jobs(6, "runner-a/1", now=now)

    record_outcomes([refused(works[0])], now=now)
    assert (state().concurrency, state().wall) == (10, 11)
    record_outcomes([refused(works[1])], now=now + timedelta(seconds=0.3))
    assert (state().concurrency, state().wall) == (9, 11)
    record_outcomes([refused(work) for work in works[2:]], now=now + timedelta(seconds=0.4))
    assert state().concurrency == 7  # 11 × 0.7, not 11 − 6
    assert state().refusals == 6


@override_settings(OPENAI_MAX_CONCURRENCY=64)
def test_answers_grow_the_calls_at_once_back_quickly_below_the_wall_and_slowly_past_it(owner, monkeypatch):
    monkeypatch.setattr(learnt_limits, "PROBE_ROUNDS", 2)
    ProviderLimitState.objects.create(provider="openai", concurrency=7, wall=10)
    started_batch(owner, jobs=40, settings=QUICK)
    works = claim_jobs(40, "runner-a/1")

    # Below the wall, one more after each quarter round of answers: 7 → 8 → 9.
    record_outcomes([answered(work) for work in works[:4]])
    assert state().concurrency == 9
    # Next to the wall, one more only after PROBE_ROUNDS rounds of answers (2 × 9).
    record_outcomes([answered(work) for work in works[4:20]])
    assert state().concurrency == 9
    record_outcomes([answered(work) for work in works[20:]])
    # Taken at the wall for a long run: the provider's limit moved up.
    assert (state().concurrency, state().wall) == (10, 11)


@override_settings(OPENAI_MAX_CONCURRENCY=20)
def test_one_refused_call_of_many_steps_back_by_one_and_a_storm_cuts_a_third_at_most(owner):
    """The second event: the first one of a provider may halve its guessed cap (below)."""
    started_batch(owner, jobs=12, settings=QUICK)
    hold_slots("runner-a", "openai", cap=20, want=10)
    now = timezone.now()
    works = claim_jobs(12, "runner-a/1", now=now)

    record_outcomes([refused(works[0])], now=now)
    assert (state().concurrency, state().wall) == (10, 11)

    record_outcomes([refused(work) for work in works[1:]], now=now + timedelta(seconds=1))
    assert state().concurrency == 7  # 10 in flight, 11 refused: × 0.7


@override_settings(OPENAI_MAX_CONCURRENCY=20)
def test_answers_to_calls_that_left_slots_free_grow_nothing(owner):
    ProviderLimitState.objects.create(provider="openai", concurrency=7)
    started_batch(owner, jobs=10, settings=QUICK)

    record_outcomes([answered(work, crowded=False) for work in claim_jobs(10, "runner-a/1")])

    assert state().concurrency == 7


@override_settings(OPENAI_MAX_CONCURRENCY=8)
def test_the_learnt_number_never_passes_the_configured_cap(owner):
    ProviderLimitState.objects.create(provider="openai", concurrency=7)
    started_batch(owner, jobs=30, settings=QUICK)

    record_outcomes([answered(work) for work in claim_jobs(30, "runner-a/1")])

    assert learnt_limits.caps(["openai"]) == {"openai": 8}


@override_settings(OPENAI_MAX_CONCURRENCY=128)
def test_the_first_refusals_of_a_provider_may_halve_a_cap_that_was_only_guessed(owner):
    started_batch(owner, jobs=40, settings=QUICK)
    # The runner gave back the slots of the 40 refused calls: 64 were in flight.
    hold_slots("runner-a", "openai", cap=128, want=24)
    works = claim_jobs(40, "runner-a/1")

    # 64 in flight, 40 refused: the provider took 24, but a cut is to half at most.
    record_outcomes([refused(work) for work in works])

    assert (state().concurrency, state().wall) == (32, 64)


@override_settings(OPENAI_MAX_CONCURRENCY=0)
def test_a_provider_without_a_configured_cap_starts_small_and_doubles_until_it_refuses(owner):
    started_batch(owner, jobs=8, settings=QUICK)
    assert learnt_limits.caps(["openai"]) == {"openai": learnt_limits.UNKNOWN_START}

    record_outcomes([answered(work) for work in claim_jobs(8, "runner-a/1")])

    assert learnt_limits.caps(["openai"]) == {"openai": 2 * learnt_limits.UNKNOWN_START}


def test_a_runner_against_a_provider_taking_fewer_calls_than_configured_learns_its_limit(owner, settings):
    """The stand-in takes 4 at once and answers 429 above; the settings say 64."""
    settings.OPENAI_MAX_CONCURRENCY = 64
    with LLMStandin(latency_s=0.1, max_concurrency=4, retry_after_s=0.05) as standin:
        settings.OPENAI_BASE_URL, settings.OPENAI_API_KEY = standin.url, ""
        started_batch(owner, jobs=40, settings={**QUICK, **processing(max_attempts=1, concurrency=50)})

        report = Runner(threads=16, poll_s=0.05, linger_s=5).run()

        stats = standin.stats()
    assert report.completed == 40
    assert stats["over_cap"] > 0
    assert state().concurrency < 64
    assert state().refusals == stats["over_cap"]
    # The 429s used up none of the jobs' single attempts.
    assert set(GradingJob.objects.values_list("status", flat=True)) == {JobStatus.COMPLETED}
    assert set(GradingJob.objects.values_list("attempts", flat=True)) == {1}

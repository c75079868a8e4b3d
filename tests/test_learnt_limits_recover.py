"""A learnt limit holds what refusals prove: random refusals cut little, and a stale one relaxes."""

from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from grading import learnt_limits
from grading.claims import claim_jobs, hold_slots, record_outcomes
from grading.models import ProviderLimitState
from grading.runner import Runner
from tests.support.engine import processing, started_batch
from tests.support.learnt import QUICK, answered, refused, state
from tests.support.llm_standin import LLMStandin

pytestmark = pytest.mark.django_db


def cap() -> int:
    return learnt_limits.caps(["openai"])["openai"]


@override_settings(OPENAI_MAX_CONCURRENCY=16)
def test_refusals_while_few_calls_are_in_flight_leave_the_limit_where_it_was(owner):
    now = timezone.now()
    # The provider refused at 16 a minute ago (not for the first time): it was cut to 12.
    ProviderLimitState.objects.create(
        provider="openai", concurrency=12, wall=16, cut_refusals=4, cut_at=now - timedelta(minutes=1)
    )
    started_batch(owner, jobs=12, settings=QUICK)
    hold_slots("runner-a", "openai", cap=12, want=3)
    works = claim_jobs(12, "runner-a/1", now=now)

    # Three events, a second apart, each refusing 3 of the 6 calls in flight.
    for event in range(3):
        at = now + timedelta(seconds=event)
        record_outcomes([refused(work) for work in works[event * 3 : event * 3 + 3]], now=at)

    assert state().concurrency == 12
    assert state().wall == 16
    assert state().refusals == 9


@override_settings(OPENAI_MAX_CONCURRENCY=16)
def test_refusals_at_the_wall_are_still_a_wall_after_random_ones(owner):
    now = timezone.now()
    ProviderLimitState.objects.create(
        provider="openai", concurrency=12, wall=16, cut_refusals=4, cut_at=now - timedelta(minutes=1)
    )
    started_batch(owner, jobs=4, settings=QUICK)
    hold_slots("runner-a", "openai", cap=12, want=10)
    works = claim_jobs(4, "runner-a/1", now=now)

    # 12 in flight (more than a cut at 16 leaves), 2 refused: the provider took 10.
    record_outcomes([refused(work) for work in works[:2]], now=now)

    assert (state().concurrency, state().wall) == (10, 12)


def test_a_provider_refusing_at_random_keeps_most_of_its_calls_at_once(owner, settings):
    """The stand-in takes any number at once but refuses 70 % of calls at random, without headers."""
    settings.OPENAI_MAX_CONCURRENCY = 4
    with LLMStandin(latency_s=0.05, rate_limit_rate=0.7, retry_after_s=0.05, seed=7) as standin:
        settings.OPENAI_BASE_URL, settings.OPENAI_API_KEY = standin.url, ""
        started_batch(owner, jobs=16, settings={**QUICK, **processing(max_attempts=1, concurrency=50)})

        report = Runner(threads=8, poll_s=0.02, linger_s=5).run()

        stats = standin.stats()
    assert report.completed >= 10
    assert stats["rate_limited"] > report.completed
    assert stats["over_cap"] == 0
    # No wall to learn: it used to fall to 1 at once (a lone call refused) and stay there.
    assert cap() >= learnt_limits.LEARNT_MIN


@override_settings(OPENAI_MAX_CONCURRENCY=16, LEARNT_LIMIT_RELAX_AFTER=timedelta(minutes=10))
def test_a_limit_no_refusal_confirmed_for_a_while_relaxes_towards_the_configured_cap(owner):
    ProviderLimitState.objects.create(
        provider="openai", concurrency=2, wall=3, cut_refusals=2, cut_at=timezone.now() - timedelta(minutes=5)
    )
    assert cap() == 2

    ProviderLimitState.objects.filter(provider="openai").update(cut_at=timezone.now() - timedelta(minutes=11))
    assert cap() == 9  # halfway back to 16

    ProviderLimitState.objects.filter(provider="openai").update(cut_at=timezone.now() - timedelta(days=1))
    assert cap() == 16


@override_settings(OPENAI_MAX_CONCURRENCY=16, LEARNT_LIMIT_RELAX_AFTER=timedelta(minutes=10))
def test_the_next_answer_after_a_stale_limit_keeps_the_relaxed_number_and_forgets_the_wall(owner):
    ProviderLimitState.objects.create(
        provider="openai", concurrency=1, wall=2, cut_refusals=1, cut_at=timezone.now() - timedelta(hours=1)
    )
    started_batch(owner, jobs=1, settings=QUICK)

    record_outcomes([answered(work) for work in claim_jobs(1, "runner-a/1")])

    assert state().concurrency == 16
    assert (state().wall, state().cut_at) == (None, None)


@override_settings(OPENAI_MAX_CONCURRENCY=0, LEARNT_LIMIT_RELAX_AFTER=timedelta(minutes=10))
def test_a_stale_limit_with_no_configured_cap_relaxes_towards_the_slow_start(owner):
    ProviderLimitState.objects.create(
        provider="openai", concurrency=1, wall=2, cut_refusals=1, cut_at=timezone.now() - timedelta(hours=2)
    )
    assert cap() == learnt_limits.UNKNOWN_START

    # A limit learnt above the slow start is kept: it was grown, not cut by a bad minute.
    ProviderLimitState.objects.filter(provider="openai").update(concurrency=32, wall=33)
    assert cap() == 32


@override_settings(OPENAI_MAX_CONCURRENCY=0)
def test_slow_start_grows_by_half_once_the_provider_has_ever_refused(owner):
    ProviderLimitState.objects.create(provider="openai", concurrency=8, refusals=3)
    started_batch(owner, jobs=8, settings=QUICK)

    record_outcomes([answered(work) for work in claim_jobs(8, "runner-a/1")])

    assert cap() == 12


@override_settings(OPENAI_MAX_CONCURRENCY=0)
def test_slow_start_grows_by_half_past_sixteen_calls_at_once(owner):
    ProviderLimitState.objects.create(provider="openai", concurrency=16)
    started_batch(owner, jobs=16, settings=QUICK)

    record_outcomes([answered(work) for work in claim_jobs(16, "runner-a/1")])

    assert cap() == 24


def test_a_wall_is_still_learnt_and_held(owner, settings):
    """The stand-in takes 4 at once and answers 429 above; the settings say 64."""
    settings.OPENAI_MAX_CONCURRENCY = 64
    with LLMStandin(latency_s=0.1, max_concurrency=4, retry_after_s=0.05) as standin:
        settings.OPENAI_BASE_URL, settings.OPENAI_API_KEY = standin.url, ""
        started_batch(owner, jobs=60, settings={**QUICK, **processing(max_attempts=1, concurrency=50)})

        report = Runner(threads=16, poll_s=0.05, linger_s=5).run()

        stats = standin.stats()
    assert report.completed == 60
    assert stats["over_cap"] > 0
    # Far below the 64 configured (the slots held at a refusal count some not yet in use).
    assert cap() <= 16

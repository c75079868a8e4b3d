"""A runner records and claims in rounds of several jobs, and never holds a finished job back long."""

import itertools
import threading
import time

import pytest
from django.test import override_settings

import grading.runner
from grading.claims import Share, claim_jobs
from grading.models import GradingJob, JobStatus
from grading.providers import GradeRequest, get_provider
from grading.runner import CallSlots, Runner
from tests.support.engine import OPENAI, processing, started_batch

pytestmark = pytest.mark.django_db


@pytest.fixture
def rounds(monkeypatch) -> list[list[int]]:
    """The job ids of each recording round, in order."""
    seen: list[list[int]] = []
    record = grading.runner.record_outcomes

    def recording(outcomes, **options):
        recorded = record(outcomes, **options)
        seen.append([outcome.work.job_id for outcome in outcomes])
        return recorded

    monkeypatch.setattr(grading.runner, "record_outcomes", recording)
    return seen


class Builtin:
    """The offline grader behind a hook that runs before each call returns."""

    def __init__(self, before_return):
        self.grader = get_provider("builtin")
        self.before_return = before_return

    def grade(self, request: GradeRequest):
        grade = self.grader.grade(request)
        self.before_return(request)
        return grade


@override_settings(OPENAI_MAX_CONCURRENCY=8)
def test_jobs_that_finish_close_together_are_recorded_in_one_round(owner, rounds, monkeypatch):
    # "Close together" is within RECORD_WAIT_S, and the next claim (every poll_s)
    # records too: both far longer than the ends are spread over, however slow the machine.
    monkeypatch.setattr(grading.runner, "RECORD_WAIT_S", 60.0)
    started_batch(owner, jobs=8, settings={**OPENAI, **processing(concurrency=50)})
    all_called = threading.Barrier(8)
    order = itertools.count()

    def staggered(request) -> None:
        # All eight calls are in flight together, then end 4 ms apart.
        all_called.wait(timeout=10)
        time.sleep(0.004 * next(order))

    report = Runner(threads=16, poll_s=60.0, provider_lookup=lambda name: Builtin(staggered)).run()

    assert report.completed == 8
    assert sorted(itertools.chain(*rounds)) == sorted(GradingJob.objects.values_list("pk", flat=True))
    assert len(rounds) == 1


def test_a_finished_job_is_recorded_while_another_call_is_still_in_flight(owner, rounds):
    started_batch(owner, jobs=2, settings=processing(concurrency=50))
    order = itertools.count()
    first_recorded_in_time: list[bool] = []

    def second_waits_for_the_first(request) -> None:
        if next(order) == 1:
            deadline = time.monotonic() + 10
            while not rounds and time.monotonic() < deadline:
                time.sleep(0.01)
            first_recorded_in_time.append(bool(rounds))

    report = Runner(threads=4, provider_lookup=lambda name: Builtin(second_waits_for_the_first)).run()

    assert report.completed == 2
    assert first_recorded_in_time == [True]
    assert [len(ids) for ids in rounds] == [1, 1]


def test_a_claim_waits_for_room_for_half_the_jobs_kept_ready():
    slots = CallSlots("openai", cap=16)
    slots.update(held=16, target=16, good_until=float("inf"), now=0.0, renew_every=1.0)
    # 16 calls and 8 ready at most; a claim once 4 of them can be taken.
    assert slots.room(24) == 0
    assert not slots.claim_due(24)
    assert not slots.claim_due(21)
    assert slots.claim_due(20)

    single = CallSlots("openai", cap=1)
    single.update(held=1, target=1, good_until=float("inf"), now=0.0, renew_every=1.0)
    assert not single.claim_due(2)
    assert single.claim_due(1)


def test_a_claim_says_whether_a_limit_held_it_back_or_the_queue_ran_dry(owner):
    started_batch(owner, jobs=3, settings=processing(concurrency=2))
    held_back = Share()
    assert len(claim_jobs(10, "w/1", share=held_back)) == 2
    assert held_back.limited

    GradingJob.objects.filter(status=JobStatus.PROCESSING).update(status=JobStatus.COMPLETED)
    dry = Share()
    assert len(claim_jobs(10, "w/2", share=dry)) == 1
    assert not dry.limited

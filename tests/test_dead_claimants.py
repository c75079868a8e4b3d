"""A claimant's death is seen from its presence; its jobs are taken over by the next claim.

Of the jobs a dead claimant held, only one it held alone (or the one suspect it
held) is to blame and keeps its attempt; the others get theirs back and become
suspects, claimed alone, so that a document that kills its worker fails by itself.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from grading.claims import (
    RUNNER_STALE_S,
    Share,
    claim_jobs,
    hold_slots,
    record_outcomes,
    runner_alive,
    work_waiting,
)
from grading.models import CallSlot, GradingJob, JobStatus, LiveRunner
from grading.runner import grade_work
from tests.support.engine import later, processing, started_batch

pytestmark = pytest.mark.django_db

DEAD = "host:1:dead"


def died(claimant: str = DEAD, now=None) -> None:
    """The claimant's last sign of life is older than RUNNER_STALE_S."""
    runner_alive(claimant, now=(now or timezone.now()) - timedelta(seconds=RUNNER_STALE_S + 1))


def test_a_dead_claimants_jobs_are_claimable_at_once_without_the_reaper(owner):
    batch = started_batch(owner, jobs=3)
    now = timezone.now()
    runner_alive(DEAD, now=now)
    held = claim_jobs(3, f"{DEAD}/1", now=now, lease_s=120)
    assert len(held) == 3 and claim_jobs(3, "live/1", now=now) == []

    died(now=later(1, now))
    assert work_waiting(later(1, now))
    first = claim_jobs(3, "live/2", now=later(1, now))

    # Long before the lease runs out: the first suspect comes alone.
    assert len(first) == 1 and first[0].suspect
    jobs = GradingJob.objects.in_batch(batch)
    assert set(jobs.values_list("attempts", flat=True)) == {0, 1}
    assert jobs.filter(status=JobStatus.QUEUED, suspect=True).count() == 2
    assert not LiveRunner.objects.filter(claimant=DEAD).exists()


def test_a_live_claimants_jobs_are_left_alone(owner):
    started_batch(owner, jobs=2)
    runner_alive("alive:1:a")
    claim_jobs(2, "alive:1:a/1", lease_s=120)

    assert claim_jobs(2, "other/1") == []
    assert GradingJob.objects.filter(status=JobStatus.PROCESSING).count() == 2


def test_a_dead_runners_call_slots_are_freed_at_once(owner):
    started_batch(owner, jobs=1)
    now = timezone.now()
    hold_slots(DEAD, "openai", cap=4, want=4, now=now, lease_s=10)
    died(now=now)

    claim_jobs(1, "live/1", now=now)

    assert not CallSlot.objects.filter(holder=DEAD).exists()
    assert hold_slots("live", "openai", cap=4, want=4, now=now) == 4


def test_a_job_a_dead_claimant_held_alone_keeps_its_attempt(owner):
    started_batch(owner, jobs=1)
    now = timezone.now()
    claim_jobs(1, f"{DEAD}/1", now=now)
    died(now=now)

    claim_jobs(1, "live/1", now=now)

    job = GradingJob.objects.get()
    assert job.attempts >= 1 and not job.suspect


def test_suspects_are_claimed_one_per_claim_and_one_per_claimant(owner):
    batch = started_batch(owner, jobs=5)
    GradingJob.objects.in_batch(batch).filter(
        pk__in=list(GradingJob.objects.values_list("pk", flat=True)[:3])
    ).update(suspect=True)

    first = claim_jobs(5, "a/1")
    holding = claim_jobs(5, "a/2", share=Share(suspects=0))
    other = claim_jobs(5, "b/1")

    assert [work.suspect for work in first] == [True]
    assert [work.suspect for work in holding] == [False, False]
    assert [work.suspect for work in other] == [True]


def test_a_suspect_held_by_a_dead_claimant_is_blamed_and_the_others_are_not(owner):
    batch = started_batch(owner, jobs=3)
    suspect_id = GradingJob.objects.in_batch(batch).values_list("pk", flat=True).first()
    GradingJob.objects.filter(pk=suspect_id).update(suspect=True)
    now = timezone.now()
    [suspect] = claim_jobs(3, f"{DEAD}/1", now=now)
    others = claim_jobs(3, f"{DEAD}/2", now=now, share=Share(suspects=0))
    assert suspect.suspect and len(others) == 2
    died(now=now)

    claim_jobs(1, "live/1", now=now, share=Share(suspects=0))

    assert GradingJob.objects.get(pk=suspect_id).attempts == 1
    for work in others:
        job = GradingJob.objects.get(pk=work.job_id)
        assert (job.attempts, job.suspect) == (0, True)


def test_a_document_that_kills_its_worker_fails_alone(owner):
    """Workers that die whenever they hold the poisoned document: only that job fails."""
    batch = started_batch(
        owner, jobs=8, settings=processing(max_attempts=3, backoff_base_s=0, backoff_max_s=0)
    )
    poison = GradingJob.objects.in_batch(batch).order_by("pk").values_list("pk", flat=True)[3]
    now = timezone.now()
    for crash in range(40):
        now = later(10, now)
        claimant = f"host:{crash}:w"
        runner_alive(claimant, now=now)
        works = claim_jobs(4, f"{claimant}/1", now=now)
        if not works:
            break
        if any(work.suspect for work in works):
            works += claim_jobs(4, f"{claimant}/2", now=now, share=Share(suspects=0))
        if any(work.job_id == poison for work in works):
            runner_alive(claimant, now=now - timedelta(seconds=RUNNER_STALE_S + 1))
            continue
        record_outcomes([grade_work(work) for work in works], now=now)
        LiveRunner.objects.filter(claimant=claimant).delete()

    jobs = GradingJob.objects.in_batch(batch)
    assert jobs.get(pk=poison).status == JobStatus.FAILED
    assert jobs.get(pk=poison).attempts == 3
    assert set(jobs.exclude(pk=poison).values_list("status", flat=True)) == {JobStatus.COMPLETED}
    assert jobs.filter(status=JobStatus.FAILED).count() == 1


def test_a_runner_of_this_host_whose_process_is_gone_is_dead_at_once(owner):
    import os
    import socket
    import subprocess
    import sys

    from grading.claims import forget_dead_neighbours

    host = socket.gethostname()[:60]
    finished = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    gone_pid = int(finished.stdout)
    now = timezone.now()
    runner_alive(f"{host}:{gone_pid}:aaaa", now=now)
    runner_alive(f"{host}:{os.getpid()}:bbbb", now=now)
    runner_alive(f"elsewhere:{gone_pid}:cccc", now=now)

    assert forget_dead_neighbours(now) == 1

    stale = now - timedelta(seconds=RUNNER_STALE_S)
    assert set(LiveRunner.objects.filter(seen_at__lt=stale).values_list("claimant", flat=True)) == {
        f"{host}:{gone_pid}:aaaa"
    }


def test_a_runner_whose_calls_all_hang_still_shows_it_lives_every_second(owner):
    """It waits for outcomes no longer than its next presence (or slot renewal) is due."""
    import time as clock

    from grading.runner import PRESENCE_EVERY_S, Runner

    started_batch(owner, jobs=1)
    runner = Runner(threads=1)
    [work] = claim_jobs(1, f"{runner.claimant}/1")
    runner._in_flight[work.job_id] = work
    now = clock.monotonic()
    runner._next_renewal = now + 40
    runner._next_presence = now + PRESENCE_EVERY_S
    runner._next_stop_check = now + 40

    assert runner._wait_s() <= PRESENCE_EVERY_S

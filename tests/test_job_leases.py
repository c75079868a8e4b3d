"""Leases, fencing and crash recovery: no finished work lost, no result written twice."""

from datetime import timedelta

import pytest
from django.utils import timezone

from batches.models import BatchStatus
from batches.tasks import recover_stalled_jobs
from grading.claims import claim_jobs, reap_expired_leases, record_outcomes, renew_leases
from grading.models import GradingJob, GradingResult, JobStatus
from grading.runner import grade_work
from tests.support.engine import claim_one, finish, later, processing, started_batch

pytestmark = pytest.mark.django_db


def test_an_expired_lease_is_requeued_with_its_attempt_counted(owner):
    started_batch(owner, jobs=1)
    now = timezone.now()
    work = claim_one(now=now, lease_s=10)

    assert reap_expired_leases(now=later(9, now)).requeued == 0
    reaped = reap_expired_leases(now=later(11, now))

    job = GradingJob.objects.get(pk=work.job_id)
    assert reaped.requeued == 1
    assert job.status == JobStatus.QUEUED
    assert job.attempts == 1
    assert job.lease_expires_at is None
    assert job.next_attempt_at >= later(11, now)
    assert "stopped before it finished" in job.last_error


def test_a_late_workers_result_is_refused_after_its_job_was_claimed_again(owner):
    started_batch(owner, jobs=1)
    now = timezone.now()
    late = claim_one("late/1", now=now, lease_s=10)
    reap_expired_leases(now=later(11, now))
    fresh = claim_one("fresh/1", now=later(1000, now))
    late_outcome, fresh_outcome = grade_work(late), grade_work(fresh)

    refused = record_outcomes([late_outcome])
    accepted = record_outcomes([fresh_outcome])

    assert (refused.discarded, refused.completed) == (1, 0)
    assert (accepted.discarded, accepted.completed) == (0, 1)
    assert GradingResult.objects.filter(job_id=fresh.job_id).count() == 1


def test_a_late_worker_cannot_write_a_second_result_after_the_job_completed(owner):
    started_batch(owner, jobs=1)
    now = timezone.now()
    late = claim_one("late/1", now=now, lease_s=10)
    reap_expired_leases(now=later(11, now))
    fresh = claim_one("fresh/1", now=later(1000, now))
    finish(fresh)

    refused = finish(late)

    assert refused.discarded == 1
    assert GradingResult.objects.count() == 1
    assert GradingJob.objects.get(pk=late.job_id).status == JobStatus.COMPLETED


def test_the_same_outcome_delivered_twice_is_recorded_once(owner):
    started_batch(owner, jobs=1)
    outcome = grade_work(claim_one())

    record_outcomes([outcome])
    again = record_outcomes([outcome])

    assert again.discarded == 1
    assert GradingResult.objects.count() == 1


def test_a_job_retried_after_failing_cannot_take_an_old_attempts_result(owner):
    # Retry resets attempts to zero, so the attempt number alone would repeat;
    # the claim token differs for every claim and keeps the fence sound.
    batch = started_batch(owner, jobs=1, settings=processing(max_attempts=1))
    now = timezone.now()
    old = claim_one("old/1", now=now, lease_s=10)
    reap_expired_leases(now=later(11, now))
    batch.refresh_from_db()
    batch.finalize()
    batch.retry_failed_jobs()
    fresh = claim_one("fresh/1", now=later(12, now))
    assert (old.attempt, fresh.attempt) == (1, 1)

    assert finish(old).discarded == 1
    assert finish(fresh).completed == 1


def test_a_job_that_kills_its_worker_every_time_fails_after_max_attempts(owner):
    batch = started_batch(owner, jobs=1, settings=processing(max_attempts=3))
    now = timezone.now()
    for attempt in range(1, 4):
        now = later(1000, now)
        work = claim_one(f"doomed/{attempt}", now=now, lease_s=10)
        assert work.attempt == attempt
        reap_expired_leases(now=later(11, now))

    job = GradingJob.objects.get(pk=work.job_id)
    assert job.status == JobStatus.FAILED
    assert job.attempts == 3
    assert "gave up after 3 attempts" in job.last_error
    assert claim_jobs(1, "w/4", now=later(2000, now)) == []
    recover_stalled_jobs()
    batch.refresh_from_db()
    assert batch.status == BatchStatus.FAILED


def test_a_renewed_lease_is_not_reaped(owner):
    started_batch(owner, jobs=1)
    now = timezone.now()
    work = claim_one(now=now, lease_s=10)

    assert renew_leases([work], now=later(8, now), lease_s=10) == 1

    assert reap_expired_leases(now=later(12, now)).requeued == 0
    assert reap_expired_leases(now=later(19, now)).requeued == 1


def test_a_worker_cannot_renew_a_lease_it_lost(owner):
    started_batch(owner, jobs=1)
    now = timezone.now()
    work = claim_one("lost/1", now=now, lease_s=10)
    reap_expired_leases(now=later(11, now))
    claim_one("new/1", now=later(1000, now))

    assert renew_leases([work], lease_s=10) == 0


def test_the_recovery_task_finishes_a_batch_whose_last_job_ended_unnoticed(owner):
    batch = started_batch(owner, jobs=1)
    finish(claim_one())
    batch.refresh_from_db()
    assert batch.status == BatchStatus.PENDING

    report = recover_stalled_jobs()

    batch.refresh_from_db()
    assert report["finalized"] == [batch.pk]
    assert batch.status == BatchStatus.COMPLETED


def test_the_recovery_task_kicks_an_active_batch_nobody_is_working_on(owner):
    from django_q.models import OrmQ

    idle = started_batch(owner, jobs=2, name="idle")
    busy = started_batch(owner, jobs=2, name="busy", priority=9)
    claim_one()

    report = recover_stalled_jobs()

    assert report["kicked"] == [idle.pk]
    assert busy.pk not in report["kicked"]
    assert OrmQ.objects.count() == 1


def test_the_reaper_is_among_the_recurring_schedules_and_runs_every_minute():
    from django_q.models import Schedule

    from core.schedules import ensure_schedules

    ensure_schedules()
    ensure_schedules()

    schedule = Schedule.objects.get(func="batches.tasks.recover_stalled_jobs")
    assert (schedule.schedule_type, schedule.minutes, schedule.repeats) == (Schedule.MINUTES, 1, -1)


def test_claims_after_a_crash_recovery_wait_for_the_backoff(owner):
    started_batch(owner, jobs=1, settings=processing(backoff_base_s=60, backoff_max_s=60))
    now = timezone.now()
    claim_one(now=now, lease_s=10)
    reap_expired_leases(now=later(11, now))

    job = GradingJob.objects.get()
    assert job.next_attempt_at <= later(11 + 60, now) + timedelta(seconds=1)
    assert len(claim_jobs(1, "w/2", now=job.next_attempt_at)) == 1


def test_after_a_restart_the_recovery_task_kicks_batches_whose_leases_have_not_run_out(owner):
    from django_q.models import OrmQ

    batch = started_batch(owner, jobs=2)
    claim_one()

    report = recover_stalled_jobs(after_restart=True)

    assert report["kicked"] == [batch.pk]
    assert OrmQ.objects.count() == 1

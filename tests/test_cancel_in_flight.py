"""Cancel means cancel: nothing goes back into a cancelled batch's queue, and no held job starts."""

import threading
import time

import pytest
from django.db import connection, transaction

from batches.models import BatchStatus, JobBatch
from grading import wakeups
from grading.claims import Blame, Outcome, claim_jobs, record_outcomes
from grading.models import GradingJob, JobStatus
from grading.runner import Runner, grade_work
from tests.conftest import ON_POSTGRES
from tests.support.engine import failure, processing, started_batch

pytestmark = pytest.mark.django_db


def statuses(batch) -> set[str]:
    return set(GradingJob.objects.in_batch(batch).values_list("status", flat=True))


@pytest.mark.parametrize("blame", [Blame.PROVIDER, Blame.JOB, Blame.RUNNER])
def test_a_cancel_committed_before_a_transient_failure_is_recorded_leaves_the_job_cancelled(owner, blame):
    batch = started_batch(owner, jobs=3)
    [work] = claim_jobs(1, "w/1")
    batch.cancel_batch()

    recorded = record_outcomes([Outcome(work, error="HTTP 429", transient=True, blame=blame)])

    job = GradingJob.objects.get(pk=work.job_id)
    assert job.status == JobStatus.CANCELLED
    assert "Cancelled with its batch" in job.last_error
    assert recorded.requeued == 0 and recorded.cancelled == 1
    assert statuses(batch) == {JobStatus.CANCELLED}
    batch.refresh_from_db()
    assert batch.status == BatchStatus.CANCELLED


def test_a_job_in_flight_when_its_batch_is_cancelled_keeps_its_grade(owner):
    batch = started_batch(owner, jobs=2)
    works = claim_jobs(2, "w/1")
    batch.cancel_batch()

    record_outcomes([grade_work(works[0]), failure(works[1], transient=False)])

    assert sorted(GradingJob.objects.in_batch(batch).values_list("status", flat=True)) == [
        JobStatus.COMPLETED,
        JobStatus.FAILED,
    ]


def test_a_paused_batchs_job_goes_back_to_its_queue(owner):
    batch = started_batch(owner, jobs=1)
    [work] = claim_jobs(1, "w/1")
    batch.pause_batch()

    record_outcomes([failure(work, "HTTP 503", transient=True)])

    assert statuses(batch) == {JobStatus.QUEUED}


def test_a_job_held_ready_does_not_start_once_its_batch_is_cancelled(owner):
    batch = started_batch(owner, jobs=1)
    [work] = claim_jobs(1, "w/1")
    calls = []

    class Provider:
        def grade(self, request):
            calls.append(request)
            raise AssertionError("the call started")

    batch.cancel_batch()
    outcome = grade_work(work, provider_lookup=lambda name: Provider(), may_start=lambda work: False)
    record_outcomes([outcome])

    assert calls == []
    assert outcome.blame == Blame.RUNNER
    job = GradingJob.objects.get(pk=work.job_id)
    assert job.status == JobStatus.CANCELLED
    assert job.attempts == 0


def test_a_runner_sees_the_cancel_of_a_batch_it_holds_jobs_of(owner):
    batch = started_batch(owner, jobs=1)
    runner = Runner(threads=1)
    [work] = claim_jobs(1, f"{runner.claimant}/1")
    runner._in_flight[work.job_id] = work
    assert runner.may_start(work)

    batch.cancel_batch()
    runner._next_stop_check = 0
    runner._maintain()

    assert not runner.may_start(work)


def test_a_cancel_heard_through_a_notification_stops_held_jobs_at_once(owner):
    batch = started_batch(owner, jobs=1)
    runner = Runner(threads=1)
    [work] = claim_jobs(1, f"{runner.claimant}/1")

    wakeups._heard(f"stop:{batch.pk}")
    try:
        assert not runner.may_start(work)
    finally:
        wakeups.stopped_batches.discard(batch.pk)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_recording_waits_for_a_cancel_under_way_and_then_cancels_the_job(owner):
    """READ COMMITTED: the recorder's batch lock waits for the cancel's row lock, then reads its commit."""
    assert ON_POSTGRES
    batch = started_batch(owner, jobs=2, settings=processing(backoff_base_s=0, backoff_max_s=0))
    [work] = claim_jobs(1, "w/1")
    locked, done = threading.Event(), threading.Event()

    def cancel_slowly():
        try:
            with transaction.atomic():
                JobBatch.objects.select_for_update().get(pk=batch.pk)
                locked.set()
                time.sleep(0.5)
                batch.cancel_batch()
        finally:
            connection.close()
            done.set()

    thread = threading.Thread(target=cancel_slowly)
    thread.start()
    assert locked.wait(10)
    started = time.monotonic()
    record_outcomes([failure(work, "HTTP 503", transient=True)])
    waited = time.monotonic() - started
    thread.join(10)

    assert waited >= 0.3
    assert GradingJob.objects.get(pk=work.job_id).status == JobStatus.CANCELLED
    assert JobStatus.QUEUED not in statuses(batch)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_cancel_waits_for_a_recording_under_way_and_then_cancels_the_requeued_job(owner):
    """The other order: the job is re-queued first, and the cancel that follows takes it."""
    assert ON_POSTGRES
    batch = started_batch(owner, jobs=2, settings=processing(backoff_base_s=0, backoff_max_s=0))
    [work] = claim_jobs(1, "w/1")
    recorded, release = threading.Event(), threading.Event()

    def record_slowly():
        try:
            with transaction.atomic():
                record_outcomes([failure(work, "HTTP 503", transient=True)])
                recorded.set()
                release.wait(10)
        finally:
            connection.close()

    thread = threading.Thread(target=record_slowly)
    thread.start()
    assert recorded.wait(10)
    canceller = threading.Thread(
        target=lambda: (JobBatch.objects.get(pk=batch.pk).cancel_batch(), connection.close())
    )
    canceller.start()
    time.sleep(0.3)
    assert canceller.is_alive()  # waiting for the recorder's lock on the batch
    release.set()
    thread.join(10)
    canceller.join(10)

    assert statuses(batch) == {JobStatus.CANCELLED}

"""Batches are graded through django-q2 tasks (run inline in sync mode) and end exactly once."""

from pathlib import Path

import pytest
from django_q.conf import Conf

from batches.models import BatchStatus, JobBatch
from batches.tasks import (
    cancel_batch_processing,
    pause_batch_processing,
    process_batch,
    resume_batch_processing,
    retry_batch_failed_jobs,
    update_batch_progress,
)
from grading.models import Document, GradingJob, GradingResult, JobStatus
from tests.conftest import make_batch
from tests.support.engine import started_batch

pytestmark = pytest.mark.django_db

ESSAY = (Path(__file__).resolve().parents[1] / "batches" / "demo" / "strong_essay.txt").read_text()


@pytest.fixture
def sync_tasks(monkeypatch):
    monkeypatch.setattr(Conf, "SYNC", True)


def start(batch: JobBatch, capture) -> JobBatch:
    """Start the batch and run the task it enqueues on commit, inline."""
    with capture(execute=True):
        batch.start_batch()
    batch.refresh_from_db()
    return batch


def test_starting_a_batch_grades_every_job_and_completes_it(
    owner, sync_tasks, django_capture_on_commit_callbacks
):
    batch = start(make_batch(owner, jobs=3), django_capture_on_commit_callbacks)

    assert batch.status == BatchStatus.COMPLETED
    assert batch.completed_at is not None
    assert GradingResult.objects.filter(job__batch=batch).count() == 3
    assert batch.progress()["percent"] == 100.0
    job = GradingJob.objects.in_batch(batch).first()
    assert job.result.criteria[0]["feedback"]
    assert job.duration_ms is not None


def test_the_worker_that_picks_up_a_batch_moves_it_to_processing(owner):
    from tests.support.engine import later

    batch = started_batch(owner, jobs=1)
    GradingJob.objects.update(next_attempt_at=later(3600))

    process_batch(batch.pk)

    batch.refresh_from_db()
    assert batch.status == BatchStatus.PROCESSING
    assert GradingJob.objects.get().status == JobStatus.QUEUED


def test_a_batch_where_some_jobs_failed_completes_with_errors(
    owner, sync_tasks, django_capture_on_commit_callbacks
):
    batch = make_batch(owner, jobs=2)
    Document.objects.filter(pk=GradingJob.objects.in_batch(batch).first().document_id).update(
        extraction_error="“essay-0.txt” contains no text to grade."
    )

    batch = start(batch, django_capture_on_commit_callbacks)

    assert batch.status == BatchStatus.COMPLETED_WITH_ERRORS
    failed = GradingJob.objects.get(batch=batch, status=JobStatus.FAILED)
    assert failed.last_error == "“essay-0.txt” contains no text to grade."


def test_a_batch_where_every_job_failed_is_failed(owner, sync_tasks, django_capture_on_commit_callbacks):
    batch = make_batch(owner, jobs=2)
    Document.objects.update(extraction_error="unreadable")

    batch = start(batch, django_capture_on_commit_callbacks)

    assert batch.status == BatchStatus.FAILED


def test_a_batch_is_finalised_exactly_once(owner, sync_tasks, django_capture_on_commit_callbacks):
    batch = start(make_batch(owner, jobs=1), django_capture_on_commit_callbacks)
    completed_at = batch.completed_at

    again = update_batch_progress(batch.pk)
    process_batch(batch.pk)

    batch.refresh_from_db()
    assert again["finalized"] is False
    assert again["status"] == BatchStatus.COMPLETED
    assert batch.completed_at == completed_at


def test_retrying_a_batch_grades_its_failed_jobs_again(owner, sync_tasks, django_capture_on_commit_callbacks):
    batch = make_batch(owner, jobs=2)
    Document.objects.update(extraction_error="unreadable for now")
    batch = start(batch, django_capture_on_commit_callbacks)
    assert batch.status == BatchStatus.FAILED
    Document.objects.update(extraction_error="", text=ESSAY)

    with django_capture_on_commit_callbacks(execute=True):
        result = retry_batch_failed_jobs(batch.pk)

    batch.refresh_from_db()
    assert result["status"] == BatchStatus.PENDING
    assert batch.status == BatchStatus.COMPLETED
    assert GradingResult.objects.filter(job__batch=batch).count() == 2
    assert set(GradingJob.objects.in_batch(batch).values_list("attempts", flat=True)) == {1}


def test_pause_resume_and_cancel_tasks_act_on_the_batch(
    owner, sync_tasks, django_capture_on_commit_callbacks
):
    batch = started_batch(owner, jobs=2)

    assert pause_batch_processing(batch.pk)["status"] == BatchStatus.PAUSED
    with django_capture_on_commit_callbacks(execute=True):
        resumed = resume_batch_processing(batch.pk)
    batch.refresh_from_db()

    assert resumed["status"] == BatchStatus.PROCESSING
    assert batch.status == BatchStatus.COMPLETED


def test_a_repeated_transition_task_is_refused_without_error(owner):
    batch = started_batch(owner, jobs=2)

    cancel_batch_processing(batch.pk)
    again = cancel_batch_processing(batch.pk)

    assert again["refused"] == "Cannot cancel a batch that is cancelled."
    assert pause_batch_processing(batch.pk)["refused"]


def test_tasks_for_a_deleted_batch_do_nothing(owner):
    assert process_batch(987654)["skipped"] == "the batch no longer exists"
    assert pause_batch_processing(987654)["skipped"]
    assert update_batch_progress(987654)["skipped"]


def test_processing_serves_a_higher_priority_batch_started_later_first(owner):
    from grading.runner import Runner

    low = started_batch(owner, jobs=3, priority=2, name="low")
    high = started_batch(owner, jobs=3, priority=9, name="high")

    Runner(threads=1).run()

    order = list(GradingResult.objects.order_by("created_at", "id").values_list("job__batch_id", flat=True))
    assert order == [high.pk] * 3 + [low.pk] * 3


def test_processing_announces_progress_with_fresh_counts(owner, django_capture_on_commit_callbacks):
    from batches.signals import batch_progressed
    from batches.tasks import run_jobs

    heard = []

    def listener(sender, batch, counts, **kwargs):
        heard.append((batch.pk, counts["completed"]))

    batch = started_batch(owner, jobs=2)
    batch_progressed.connect(listener)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            run_jobs(threads=2)
    finally:
        batch_progressed.disconnect(listener)

    assert heard[-1] == (batch.pk, 2)


@pytest.mark.parametrize(("jobs", "tasks"), [(40, 2), (10, 1)])
def test_a_started_batch_sends_out_a_task_for_each_worker_it_can_keep_busy(owner, settings, jobs, tasks):
    from django_q.models import OrmQ

    from batches.dispatch import enqueue_processing

    settings.RUNNER_THREADS = 16
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "workers": 2}
    batch = started_batch(owner, jobs=jobs)
    OrmQ.objects.all().delete()

    enqueue_processing(batch.pk)

    sent = [queued.task for queued in OrmQ.objects.all()]
    assert [(task["func"], task["args"], task["kwargs"]) for task in sent] == [
        ("batches.tasks.process_batch", (batch.pk,), {"peers": tasks - 1})
    ] * tasks

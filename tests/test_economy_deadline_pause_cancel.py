"""Pause, cancel and a near deadline keep their meaning for jobs waiting in provider batches."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from batches.models import BatchStatus, JobBatch
from batches.tasks import run_economy
from grading.claims import claim_jobs
from grading.economy_engine import tick
from grading.models import GradingJob, GradingResult, JobStatus, ProviderBatch
from tests.support.economy import economy_batch, ended, run_until_settled, wait_for_provider

pytestmark = pytest.mark.django_db


@pytest.fixture
def batch_api(settings, standin):
    settings.OPENAI_BATCH_API = True
    return standin


def some_finished(report: dict) -> bool:
    return report["request_counts"]["completed"] >= 1


def test_a_near_deadline_cancels_the_provider_batch_keeps_what_finished_and_grades_the_rest_in_real_time(
    owner, batch_api
):
    # Four requests a quarter of a second apart: the deadline draws near after the first.
    batch_api.configure(batch_hour_s=0.5, batch_hours=2)
    batch = economy_batch(owner, jobs=4)
    tick()
    wait_for_provider(batch_api, some_finished)
    JobBatch.objects.filter(pk=batch.pk).update(deadline=timezone.now() + timedelta(hours=3))

    first = run_economy()
    assert first["cancelled_provider_batches"] == 1
    assert batch_api.stats()["batch_cancels"] == 1
    run_until_settled()

    jobs = GradingJob.objects.in_batch(batch)
    kept = jobs.filter(status=JobStatus.COMPLETED)
    rest = jobs.exclude(status=JobStatus.COMPLETED)
    assert kept.count() >= 1 and rest.exists()
    assert set(rest.values_list("status", "delivery")) == {(JobStatus.QUEUED, "realtime")}
    assert GradingResult.objects.filter(job__batch=batch).count() == kept.count()
    assert {work.job_id for work in claim_jobs(10, "worker/1")} == set(rest.values_list("id", flat=True))


def test_queued_economy_jobs_of_a_batch_due_soon_become_real_time_jobs(owner, batch_api):
    batch = economy_batch(owner, jobs=2)
    JobBatch.objects.filter(pk=batch.pk).update(deadline=timezone.now() + timedelta(hours=2))

    report = run_economy()

    assert report["to_realtime"] == [batch.pk]
    assert not ProviderBatch.objects.exists()
    assert set(GradingJob.objects.in_batch(batch).values_list("delivery", flat=True)) == {"realtime"}


def test_pausing_stops_new_submissions_and_submitted_jobs_still_finish(owner, batch_api):
    batch_api.configure(batch_expire_every=2)
    batch = economy_batch(owner, jobs=4)
    tick()  # all four submitted
    batch.pause_batch()
    wait_for_provider(batch_api, ended)

    tick()  # records two, re-queues the two expired requests: the batch is paused, they wait

    assert GradingJob.objects.in_batch(batch).filter(status=JobStatus.COMPLETED).count() == 2
    assert GradingJob.objects.in_batch(batch).filter(status=JobStatus.QUEUED).count() == 2
    assert ProviderBatch.objects.count() == 1
    tick()
    assert ProviderBatch.objects.count() == 1  # nothing new while paused

    batch_api.configure(batch_expire_every=0)
    batch.resume_batch()
    run_until_settled()
    assert ProviderBatch.objects.count() == 2
    assert GradingResult.objects.filter(job__batch=batch).count() == 4


def test_cancelling_a_batch_cancels_its_open_provider_batch_and_keeps_finished_results(
    owner, batch_api, django_capture_on_commit_callbacks
):
    batch_api.configure(batch_hour_s=0.5, batch_hours=2)
    batch = economy_batch(owner, jobs=4)
    tick()
    wait_for_provider(batch_api, some_finished)

    with django_capture_on_commit_callbacks(execute=True):
        batch.cancel_batch()
    assert batch_api.stats()["batch_cancels"] == 1
    assert ProviderBatch.objects.get().status == "cancelling"
    run_until_settled()

    batch.refresh_from_db()
    jobs = GradingJob.objects.in_batch(batch)
    assert batch.status == BatchStatus.CANCELLED
    completed = jobs.filter(status=JobStatus.COMPLETED).count()
    assert completed >= 1
    assert jobs.filter(status=JobStatus.CANCELLED).count() == 4 - completed
    assert GradingResult.objects.filter(job__batch=batch).count() == completed
    assert not jobs.filter(status__in=[JobStatus.QUEUED, JobStatus.PROCESSING]).exists()


def test_a_job_belongs_to_at_most_one_open_provider_batch(owner, batch_api):
    batch_api.configure(batch_hold=True)
    economy_batch(owner, jobs=3)

    tick()
    tick()
    time.sleep(0.05)
    tick()

    [submission] = ProviderBatch.objects.all()
    assert len(submission.jobs) == 3
    assert batch_api.stats()["batches_created"] == 1


def test_a_batch_paused_between_the_claim_and_the_upload_sends_nothing(owner, batch_api, monkeypatch):
    from grading import economy_engine

    batch = economy_batch(owner, jobs=2)
    send = economy_engine._send

    def pause_first(submission, provider, report):
        JobBatch.objects.get(pk=batch.pk).pause_batch()
        send(submission, provider, report)

    monkeypatch.setattr(economy_engine, "_send", pause_first)
    tick()

    assert batch_api.stats()["batches_created"] == 0 and batch_api.stats()["files_uploaded"] == 0
    jobs = GradingJob.objects.in_batch(batch)
    assert set(jobs.values_list("status", "attempts")) == {(JobStatus.QUEUED, 0)}
    assert ProviderBatch.objects.get().status == "ended"

"""A submission left unfinished (its file uploaded, no provider batch made) is not sent for a batch
that was cancelled or paused meanwhile: its jobs end cancelled, or wait for the resume."""

import pytest

from batches.models import BatchStatus, JobBatch
from grading.economy_engine import TickReport, reconcile
from grading.models import GradingJob, JobStatus, ProviderBatch
from tests.support.economy import economy_batch, run_until_settled
from tests.test_economy_crash_reconcile import abandon, interrupted_submission

pytestmark = pytest.mark.django_db


@pytest.fixture
def batch_api(settings, standin):
    settings.OPENAI_BATCH_API = True
    return standin


def test_an_abandoned_submission_of_a_cancelled_batch_is_not_created_at_the_provider(
    owner, batch_api, monkeypatch, django_capture_on_commit_callbacks
):
    batch = economy_batch(owner, jobs=3)
    submission = interrupted_submission(monkeypatch, "after_upload")
    with django_capture_on_commit_callbacks(execute=True):
        JobBatch.objects.get(pk=batch.pk).cancel_batch()
    abandon(submission)

    reconcile(TickReport())

    assert batch_api.stats()["batches_created"] == 0
    assert ProviderBatch.objects.get().status == "ended"
    jobs = GradingJob.objects.in_batch(batch)
    assert set(jobs.values_list("status", flat=True)) == {JobStatus.CANCELLED}
    batch.refresh_from_db()
    assert batch.status == BatchStatus.CANCELLED


def test_an_abandoned_submission_of_a_paused_batch_waits_for_the_resume(owner, batch_api, monkeypatch):
    batch = economy_batch(owner, jobs=3)
    submission = interrupted_submission(monkeypatch, "after_upload")
    JobBatch.objects.get(pk=batch.pk).pause_batch()
    abandon(submission)

    reconcile(TickReport())

    assert batch_api.stats()["batches_created"] == 0
    jobs = GradingJob.objects.in_batch(batch)
    assert set(jobs.values_list("status", "attempts")) == {(JobStatus.QUEUED, 0)}
    JobBatch.objects.get(pk=batch.pk).resume_batch()
    run_until_settled()
    assert set(jobs.values_list("status", flat=True)) == {JobStatus.COMPLETED}
    assert batch_api.stats()["batches_created"] == 1

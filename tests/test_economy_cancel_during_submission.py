"""A batch cancelled while its provider batch is being submitted is not graded at the provider anyway."""

import pytest

from batches.models import BatchStatus, JobBatch
from grading import economy_engine
from grading.economy_engine import tick
from grading.models import GradingJob, GradingResult, JobStatus, ProviderBatch
from tests.support.economy import economy_batch, run_until_settled

pytestmark = pytest.mark.django_db


@pytest.fixture
def batch_api(settings, standin):
    settings.OPENAI_BATCH_API = True
    return standin


def cancel_when_uploaded(batch, monkeypatch, django_capture_on_commit_callbacks):
    """The teacher cancels between the upload of the requests and the creation of the provider batch."""
    uploaded = economy_engine._uploaded

    def then_cancel(submission, file_id):
        uploaded(submission, file_id)
        with django_capture_on_commit_callbacks(execute=True):
            JobBatch.objects.get(pk=batch.pk).cancel_batch()

    monkeypatch.setattr(economy_engine, "_uploaded", then_cancel)


def test_a_batch_cancelled_while_its_provider_batch_is_created_cancels_it_at_the_provider(
    owner, batch_api, monkeypatch, django_capture_on_commit_callbacks
):
    batch_api.configure(batch_hour_s=0.5, batch_hours=2)
    batch = economy_batch(owner, jobs=4)
    cancel_when_uploaded(batch, monkeypatch, django_capture_on_commit_callbacks)

    tick()

    assert batch_api.stats()["batches_created"] == 1
    assert batch_api.stats()["batch_cancels"] == 1
    assert ProviderBatch.objects.get().status == "cancelling"
    run_until_settled()
    batch.refresh_from_db()
    jobs = GradingJob.objects.in_batch(batch)
    assert batch.status == BatchStatus.CANCELLED
    assert not jobs.filter(status__in=[JobStatus.QUEUED, JobStatus.PROCESSING]).exists()
    assert (
        GradingResult.objects.filter(job__batch=batch).count()
        == jobs.filter(status=JobStatus.COMPLETED).count()
    )
    assert jobs.filter(status=JobStatus.CANCELLED).count() >= 1


def test_a_cancel_the_provider_did_not_receive_is_sent_again_by_the_next_round(
    owner, batch_api, monkeypatch, django_capture_on_commit_callbacks
):
    from grading.providers import TransientProviderError, get_provider

    batch_api.configure(batch_hour_s=0.5, batch_hours=2)
    batch = economy_batch(owner, jobs=4)
    tick()
    provider = type(get_provider("openai"))

    def unreachable(self, external_id):
        raise TransientProviderError("Could not connect to the provider.")

    monkeypatch.setattr(provider, "cancel_batch", unreachable)
    with django_capture_on_commit_callbacks(execute=True):
        batch.cancel_batch()
    monkeypatch.undo()
    assert batch_api.stats()["batch_cancels"] == 0

    tick()

    assert batch_api.stats()["batch_cancels"] == 1
    assert ProviderBatch.objects.get().status == "cancelling"

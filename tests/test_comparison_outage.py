"""A comparison across connections goes on with those that answer while one is down for long; it
pauses, with its alert, only once the down connection's jobs are all it has left."""

from datetime import timedelta

import pytest
from django.utils import timezone

from batches.models import BatchStatus, JobBatch
from grading.circuits import announce_long_outages
from grading.models import GradingJob, JobStatus, ProviderCircuit
from tests.conftest import make_batch

pytestmark = pytest.mark.django_db

DOWN = {"down": {"kind": "openai", "base_url": "http://127.0.0.1:9/v1"}}


@pytest.fixture
def comparison(owner, settings):
    settings.PROVIDERS = DOWN
    settings.OPENAI_API_KEY = "sk-test"
    settings.PROVIDER_OUTAGE_PAUSE_AFTER = timedelta(hours=1)
    batch = make_batch(
        owner,
        jobs=3,
        settings={
            "provider": "openai",
            "model": "gpt-4o-mini",
            "models": ["gpt-4o-mini", "down:gpt-4o-mini"],
            "processing": {"delivery": "realtime"},
        },
    )
    batch.start_batch()
    now = timezone.now()
    ProviderCircuit.objects.create(
        provider="down",
        failures=40,
        opens=30,
        since=now - timedelta(hours=2),
        open_until=now + timedelta(seconds=5),
        reason="Could not connect to http://127.0.0.1:9/v1: Connection refused.",
    )
    return batch


def test_a_long_outage_of_one_connection_does_not_pause_a_comparison_another_is_still_grading(comparison):
    announce_long_outages()

    assert JobBatch.objects.get(pk=comparison.pk).status in BatchStatus.active()


def test_once_only_the_down_connections_jobs_are_left_the_comparison_pauses(
    comparison, django_capture_on_commit_callbacks
):
    GradingJob.objects.in_batch(comparison).filter(provider="openai").update(status=JobStatus.COMPLETED)

    with django_capture_on_commit_callbacks(execute=True):
        assert announce_long_outages() == ["down"]

    assert JobBatch.objects.get(pk=comparison.pk).status == BatchStatus.PAUSED

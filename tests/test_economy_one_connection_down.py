"""A connection whose batch API cannot be reached holds up its own provider batches only."""

from datetime import timedelta

import pytest
from django.utils import timezone

from grading.economy_engine import tick
from grading.models import GradingJob, JobStatus, ProviderBatch
from tests.conftest import make_batch

pytestmark = pytest.mark.django_db

# A connection with a batch API on a loopback port where nothing listens.
DOWN = {"down": {"kind": "openai", "base_url": "http://127.0.0.1:9/v1", "batch_api": True}}


@pytest.fixture
def connections(settings, standin):
    settings.OPENAI_BATCH_API = True
    settings.PROVIDERS = DOWN
    return standin


def economy_batch_on(owner, provider: str):
    batch = make_batch(
        owner,
        jobs=2,
        settings={"provider": provider, "model": "gpt-4o-mini"},
        deadline=timezone.now() + timedelta(days=3),
    )
    batch.start_batch()
    return batch


def test_a_connection_that_cannot_be_reached_does_not_hold_up_the_others_submissions(owner, connections):
    down = economy_batch_on(owner, "down")  # first in every order the engine may take them
    up = economy_batch_on(owner, "openai")

    report = tick()

    assert report.errors and "down" in " ".join(report.errors)
    assert ProviderBatch.objects.filter(batch=up).exclude(external_id="").count() == 1
    assert set(GradingJob.objects.in_batch(up).values_list("status", flat=True)) == {JobStatus.PROCESSING}
    assert ProviderBatch.objects.filter(batch=down, external_id="").count() == 1


def test_a_provider_batch_that_cannot_be_polled_does_not_hold_up_submissions_elsewhere(owner, connections):
    economy_batch_on(owner, "down")
    tick()  # the down connection's submission is left to the reconcile
    ProviderBatch.objects.filter(provider="down").update(
        status=ProviderBatch.Status.SUBMITTED, external_id="batch_somewhere"
    )
    first, second = economy_batch_on(owner, "openai"), economy_batch_on(owner, "openai")

    report = tick()

    assert report.errors  # polling the down connection failed
    for batch in (first, second):
        assert ProviderBatch.objects.filter(batch=batch).exclude(external_id="").count() == 1


def test_a_connection_removed_from_providers_holds_up_no_other_connection(owner, connections, settings):
    gone = economy_batch_on(owner, "down")
    settings.PROVIDERS = {}  # the operator renamed or removed it, its jobs still waiting
    up = economy_batch_on(owner, "openai")

    report = tick()

    assert any("down" in error for error in report.errors)
    assert ProviderBatch.objects.filter(batch=up).exclude(external_id="").count() == 1
    assert set(GradingJob.objects.in_batch(gone).values_list("status", flat=True)) == {JobStatus.QUEUED}


def test_a_provider_batch_of_a_removed_connection_is_left_open_while_the_round_goes_on(
    owner, connections, settings
):
    economy_batch_on(owner, "down")
    tick()
    ProviderBatch.objects.filter(provider="down").update(
        status=ProviderBatch.Status.SUBMITTED, external_id="batch_somewhere"
    )
    settings.PROVIDERS = {}
    up = economy_batch_on(owner, "openai")

    report = tick()

    assert ProviderBatch.objects.get(provider="down").status == ProviderBatch.Status.SUBMITTED
    assert any("no grading provider named “down”" in error for error in report.errors)
    assert ProviderBatch.objects.filter(batch=up).exclude(external_id="").count() == 1

"""The queue counts economy jobs apart: waiting to be submitted, or at the provider until its batch ends."""

from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from batches.tasks import run_economy
from grading.models import ProviderBatch
from tests.api_support import client_for
from tests.conftest import make_batch
from tests.support.economy import economy_batch

pytestmark = pytest.mark.django_db


@pytest.fixture
def batch_api(settings, standin):
    settings.OPENAI_BATCH_API = True
    settings.OPENAI_MAX_CONCURRENCY = 16
    settings.MODEL_PRICES = {}
    return standin


def queue_row(user, batch) -> dict:
    body = client_for(user).get("/api/queue").json()
    return next(row for row in body["batches"] if row["id"] == batch.pk)


def test_economy_jobs_not_yet_submitted_wait_to_be_submitted_and_finish_within_the_window(owner, batch_api):
    batch = economy_batch(owner, jobs=3)

    row = queue_row(owner, batch)

    assert (row["waiting"], row["in_flight"]) == (0, 0)
    assert row["economy"] == {"to_submit": 3, "at_provider": 0, "expected_by": None}
    assert row["capacity"]["share"] == 0.0
    finish = datetime.fromisoformat(row["estimated_finish"])
    assert timezone.now() + timedelta(hours=23) < finish <= timezone.now() + timedelta(hours=24)
    assert row["deadline_standing"] == "on_track"


def test_submitted_economy_jobs_are_at_the_provider_until_its_expected_completion(owner, batch_api):
    batch = economy_batch(owner, jobs=3)
    run_economy()
    submission = ProviderBatch.objects.get()

    body = client_for(owner).get("/api/queue").json()
    row = body["batches"][0]

    assert (row["waiting"], row["in_flight"]) == (0, 0)
    assert row["economy"]["to_submit"] == 0 and row["economy"]["at_provider"] == 3
    assert row["economy"]["expected_by"] == submission.expected_by.isoformat()
    assert row["estimated_finish"] == submission.expected_by.isoformat()
    assert row["capacity"]["share"] == 0.0
    assert body["total"] == {"batches": 1, "waiting": 0, "in_flight": 0, "to_submit": 0, "at_provider": 3}
    (openai,) = body["providers"]
    assert (openai["in_flight"], openai["at_provider"], openai["share"]) == (0, 3, 0.0)
    assert batch.pk == row["id"]


def test_economy_jobs_are_not_counted_ahead_of_real_time_work(owner, batch_api):
    economy_batch(owner, jobs=4, priority=9)
    realtime = make_batch(owner, jobs=2, name="Real time", priority=1)
    realtime.start_batch()

    row = queue_row(owner, realtime)

    assert row["ahead"] == {"batches": 1, "jobs": 0}
    assert row["waiting"] == 2 and row["economy"]["to_submit"] == 0


def test_a_stranger_sees_economy_work_only_in_the_totals(owner, stranger, batch_api):
    economy_batch(owner, jobs=3)
    run_economy()

    body = client_for(stranger).get("/api/queue").json()

    assert body["batches"] == []
    assert body["others"]["at_provider"] == 3 and body["others"]["in_flight"] == 0


def test_the_queue_page_says_which_jobs_are_at_the_provider_and_which_wait_to_be_submitted(
    client, owner, batch_api
):
    batch = economy_batch(owner, jobs=3)
    run_economy()
    batch.refresh_from_db()
    client.force_login(owner)

    html = client.get("/queue").content.decode()

    assert "<strong>3</strong> at the provider in economy batches" in html
    assert "+ 3 at the provider" in html
    assert "(provider batch)" in html

"""An economy batch's estimated finish and deadline standing come from its provider batches, wherever shown.

The list, the batch page, the API, analytics, the queue and the deadline warnings all ask
batches.eta.estimate_finish, against the OpenAI stand-in's batch API.
"""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import dateformat, timezone

from batches.models import BatchStatus, JobBatch
from batches.tasks import run_economy
from grading.models import GradingJob, JobStatus, ProviderBatch
from notifications.events import check_progress
from notifications.models import Channel, Event, Notification
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


def submitted(owner, jobs: int = 3, deadline_in: timedelta | None = None) -> tuple[JobBatch, ProviderBatch]:
    """An economy batch whose jobs are all at the provider; its deadline then moved to `deadline_in`."""
    batch = economy_batch(owner, jobs=jobs)
    run_economy()
    if deadline_in is not None:
        # Moved after submission and before the engine's next round: the provider batch stays open.
        JobBatch.objects.filter(pk=batch.pk).update(deadline=timezone.now() + deadline_in)
    batch.refresh_from_db()
    return batch, ProviderBatch.objects.get(batch=batch)


def shown(moment) -> str:
    return dateformat.format(timezone.localtime(moment), "c")


def test_the_batch_list_shows_an_economy_batch_expected_by_its_provider_batch(client, owner, batch_api):
    batch, submission = submitted(owner)
    client.force_login(owner)

    html = client.get("/batches").content.decode()

    assert "Expected by" in html and "(provider batch)" in html
    assert f'<time datetime="{shown(submission.expected_by)}">' in html
    assert batch.name in html


def test_the_batch_page_flags_an_economy_batch_at_risk_when_its_provider_batch_ends_after_the_deadline(
    client, owner, batch_api
):
    batch, submission = submitted(owner, deadline_in=timedelta(hours=12))
    assert submission.expected_by > batch.deadline
    client.force_login(owner)

    html = client.get(f"/batches/{batch.pk}").content.decode()

    # No job has ended, so a rate of calls would have nothing to say and call it on track.
    assert '<span class="flag flag-at-risk">At risk</span>' in html
    assert "Expected by" in html and "(provider batch)" in html
    assert f'<time datetime="{shown(submission.expected_by)}">' in html


def test_the_batch_page_calls_an_economy_batch_on_track_when_its_provider_batch_ends_in_time(
    client, owner, batch_api
):
    batch, _ = submitted(owner)
    client.force_login(owner)

    html = client.get(f"/batches/{batch.pk}").content.decode()

    assert '<span class="flag flag-on-track">On track</span>' in html


def test_the_api_gives_an_economy_batch_its_provider_batch_estimate_in_detail_and_list(owner, batch_api):
    batch, submission = submitted(owner, deadline_in=timedelta(hours=12))
    api = client_for(owner)

    detail = api.get(f"/api/batches/{batch.pk}").json()
    listed = next(row for row in api.get("/api/batches").json()["results"] if row["id"] == batch.pk)

    expected = {
        "estimated_finish": submission.expected_by.isoformat(),
        "source": "provider_batch",
        "deadline_standing": "at_risk",
    }
    assert detail["estimate"] == expected
    assert listed["estimate"] == expected


def test_jobs_not_yet_submitted_are_expected_within_the_providers_window(owner, batch_api):
    batch = economy_batch(owner, jobs=2)
    before = timezone.now()

    estimate = client_for(owner).get(f"/api/batches/{batch.pk}").json()["estimate"]

    assert estimate["source"] == "provider_batch"
    finish = timezone.datetime.fromisoformat(estimate["estimated_finish"])
    assert before + timedelta(hours=23) < finish <= timezone.now() + timedelta(hours=24)


def test_the_queue_analytics_and_api_agree_on_an_economy_batchs_finish(owner, batch_api):
    batch, submission = submitted(owner, deadline_in=timedelta(hours=12))
    api = client_for(owner)

    queued = next(row for row in api.get("/api/queue").json()["batches"] if row["id"] == batch.pk)
    timeline = api.get(f"/api/batches/{batch.pk}/analytics").json()["timeline"]
    estimate = api.get(f"/api/batches/{batch.pk}").json()["estimate"]

    finish = submission.expected_by.isoformat()
    assert (
        queued["estimated_finish"]
        == timeline["projected_completion_at"]
        == estimate["estimated_finish"]
        == finish
    )
    assert (
        queued["deadline_standing"]
        == timeline["deadline_standing"]
        == estimate["deadline_standing"]
        == "at_risk"
    )
    assert queued["estimate_source"] == timeline["projected_from"] == "provider_batch"


def test_a_paused_economy_batch_still_stands_by_the_provider_batch_holding_its_jobs(owner, batch_api):
    batch, submission = submitted(owner, deadline_in=timedelta(hours=12))
    batch.pause_batch()
    batch.refresh_from_db()
    assert batch.status == BatchStatus.PAUSED
    assert GradingJob.objects.filter(batch=batch, status=JobStatus.PROCESSING).count() == 3

    estimate = client_for(owner).get(f"/api/batches/{batch.pk}").json()["estimate"]

    assert estimate["source"] == "provider_batch"
    assert estimate["deadline_standing"] == "at_risk"


def test_the_deadline_warning_of_an_economy_batch_names_its_provider_batchs_expected_completion(
    owner, batch_api, tasks_inline
):
    batch, submission = submitted(owner, deadline_in=timedelta(hours=12))

    check_progress(batch)

    (warning,) = Notification.objects.filter(event=Event.DEADLINE_WARNING, channel=Channel.IN_APP)
    assert warning.key == "at_risk"
    assert warning.title == f'Batch "{batch.name}" may miss its deadline'
    assert f"Its provider batches are expected by {submission.expected_by:%Y-%m-%d %H:%M} UTC" in warning.body
    assert "current pace" not in warning.body


def test_a_real_time_batch_keeps_its_estimate_from_the_rate_of_its_calls(owner, batch_api):
    batch = make_batch(owner, jobs=4, deadline=timezone.now() + timedelta(days=2))
    batch.start_batch()
    JobBatch.objects.filter(pk=batch.pk).update(started_at=timezone.now() - timedelta(minutes=10))
    GradingJob.objects.filter(pk__in=batch.jobs.values("pk")[:2]).update(status=JobStatus.COMPLETED)

    estimate = client_for(owner).get(f"/api/batches/{batch.pk}").json()["estimate"]

    assert estimate["source"] == "rate"
    finish = timezone.datetime.fromisoformat(estimate["estimated_finish"])
    # Two of four ended in ten minutes: the other two in about ten more.
    assert timezone.now() + timedelta(minutes=9) < finish < timezone.now() + timedelta(minutes=11)
    assert estimate["deadline_standing"] == "on_track"


def test_a_stranger_gets_no_estimate_of_someone_elses_batch(owner, stranger, batch_api):
    batch, _ = submitted(owner)

    response = client_for(stranger).get(f"/api/batches/{batch.pk}")

    assert response.status_code == 404


def test_the_api_list_estimates_a_page_of_economy_batches_without_a_query_per_batch(owner, batch_api):
    economy_batch(owner, jobs=2, name="First")
    api = client_for(owner)
    with CaptureQueriesContext(connection) as one:
        api.get("/api/batches")
    economy_batch(owner, jobs=2, name="Second")
    economy_batch(owner, jobs=2, name="Third")
    with CaptureQueriesContext(connection) as three:
        rows = api.get("/api/batches").json()["results"]

    assert {row["estimate"]["source"] for row in rows} == {"provider_batch"}
    assert len(three) == len(one)

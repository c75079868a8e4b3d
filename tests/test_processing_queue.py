"""The processing queue: active batches in the claim order, their load and estimated finish, each user's view."""

from datetime import timedelta

import pytest
from django.utils import timezone

from batches.models import BatchStatus, JobBatch
from batches.queue import queue_for, serve_queue
from core.permissions import Level, share
from grading.claims import claim_jobs
from grading.models import GradingJob, JobStatus
from tests.api_support import client_for
from tests.conftest import make_batch, prebuilt

pytestmark = pytest.mark.django_db


def started(owner, name: str, jobs: int = 3, **fields) -> JobBatch:
    batch = make_batch(owner, prebuilt("research-paper"), jobs=jobs, name=name, **fields)
    batch.start_batch()
    return batch


@pytest.fixture
def mixed_queue(owner, colleague):
    """Batches of two owners whose priorities, deadlines and ages all decide a place."""
    soon, later = timezone.now() + timedelta(days=1), timezone.now() + timedelta(days=2)
    return [
        started(owner, "p5 oldest", priority=5),
        started(colleague, "p9", priority=9),
        started(owner, "p5 due later", priority=5, deadline=later),
        started(colleague, "p5 due soon", priority=5, deadline=soon),
        started(owner, "p5 newer", priority=5),
        started(colleague, "p2", priority=2),
        make_batch(owner, prebuilt("research-paper"), jobs=2, name="draft: not queued", priority=10),
    ]


def queue_names(user) -> list[str]:
    return [row["name"] for row in client_for(user).get("/api/queue").json()["batches"]]


def test_the_queue_is_in_the_claim_order(owner, colleague, superuser, mixed_queue):
    listed = client_for(superuser).get("/api/queue").json()["batches"]
    assert [row["name"] for row in listed] == [
        "p9",
        "p5 due soon",
        "p5 due later",
        "p5 oldest",
        "p5 newer",
        "p2",
    ]
    assert [row["position"] for row in listed] == [1, 2, 3, 4, 5, 6]

    # What the engine takes, in order: each batch first appears where the queue put it.
    claimed = claim_jobs(limit=1000, token="test-claim")
    first_seen = list(dict.fromkeys(work.batch_id for work in claimed))
    assert first_seen == [row["id"] for row in listed]

    # Served or not, a batch keeps its place: with every job in flight it is placed by its oldest one.
    assert [row["id"] for row in client_for(superuser).get("/api/queue").json()["batches"]] == first_seen


def test_the_queue_and_the_claims_read_one_definition_of_the_order():
    from grading import claim_sql
    from grading.serve_order import order_sql

    with open(claim_sql.__file__) as module:
        source = module.read()
    assert "priority DESC" not in source  # written once, in grading/serve_order.py
    assert order_sql("b", "j") == "b.priority DESC, b.deadline ASC NULLS LAST, j.created_at ASC, j.id ASC"


def test_each_user_sees_their_batches_and_only_totals_of_the_rest(owner, colleague, stranger, mixed_queue):
    assert queue_names(owner) == ["p5 due later", "p5 oldest", "p5 newer"]
    body = client_for(owner).get("/api/queue").json()
    first = body["batches"][0]
    assert first["ahead"] == {"batches": 2, "jobs": 6}  # p9 and p5 due soon, three jobs waiting each
    assert first["others_ahead"] == {"batches": 2, "jobs": 6}
    assert body["others"] == {"batches": 3, "waiting": 9, "in_flight": 0, "to_submit": 0, "at_provider": 0}
    assert body["total"]["batches"] == 6

    # A stranger sees none of them, only how much work there is.
    body = client_for(stranger).get("/api/queue").json()
    assert body["batches"] == [] and body["others"]["batches"] == 6
    assert "p5" not in str(body) and "olivia" not in str(body)

    # Sharing one shows it, in its place.
    share(mixed_queue[0], stranger, Level.VIEW)
    assert queue_names(stranger) == ["p5 oldest"]
    assert client_for(stranger).get("/api/queue").json()["batches"][0]["position"] == 4


def test_a_strangers_batches_are_not_in_their_queue_after_pause(owner, stranger, mixed_queue):
    mixed_queue[0].pause_batch()
    assert "p5 oldest" not in queue_names(owner)  # paused batches are not served


def test_each_batch_shows_its_share_of_the_providers_capacity(owner, settings):
    settings.OPENAI_MAX_CONCURRENCY = 16
    batch = started(owner, "openai", jobs=6)
    jobs = list(batch.jobs.order_by("pk"))
    GradingJob.objects.filter(pk__in=[job.pk for job in jobs]).update(provider="openai")
    GradingJob.objects.filter(pk__in=[job.pk for job in jobs[:4]]).update(status=JobStatus.PROCESSING)
    row = client_for(owner).get("/api/queue").json()["batches"][0]
    assert (row["waiting"], row["in_flight"]) == (2, 4)
    assert row["capacity"] == {"provider": "openai", "cap": 16, "share": 0.25}
    providers = client_for(owner).get("/api/queue").json()["providers"]
    assert providers == [
        {
            "provider": "openai",
            "cap": 16,
            "in_flight": 4,
            "waiting": 2,
            "to_submit": 0,
            "at_provider": 0,
            "share": 0.25,
            "source": providers[0]["source"],
        }
    ]


def test_a_provider_without_a_cap_has_no_share(owner):
    started(owner, "builtin")
    row = client_for(owner).get("/api/queue").json()["batches"][0]
    assert row["capacity"] == {"provider": "builtin", "cap": None, "share": None}


def test_the_estimated_finish_is_within_30_percent_of_the_real_finish(owner):
    """40 jobs graded one every 6 s (with jitter): the estimate after ten, against when the last ends."""
    batch = started(owner, "steady", jobs=40)
    now = timezone.now()
    begun = now - timedelta(seconds=62)
    JobBatch.objects.filter(pk=batch.pk).update(started_at=begun)
    jitter = [1.5, -2.0, 0.5, 2.0, -1.0, 1.0, -0.5, 2.0, -1.5, 0.0]
    jobs = list(batch.jobs.order_by("pk"))
    for index, job in enumerate(jobs[:10]):
        GradingJob.objects.filter(pk=job.pk).update(
            status=JobStatus.COMPLETED,
            completed_at=begun + timedelta(seconds=6 * (index + 1) + jitter[index]),
        )
    real_finish = begun + timedelta(seconds=6 * 40)

    row = client_for(owner).get("/api/queue").json()["batches"][0]
    estimate = timezone.datetime.fromisoformat(row["estimated_finish"])
    remaining = (real_finish - now).total_seconds()
    assert abs((estimate - real_finish).total_seconds()) <= 0.3 * remaining

    # The list and the batch's page show the same estimate beside the progress bar.
    page = client_for(owner)
    page.force_login(owner)
    local = timezone.localtime(estimate)
    for url in ("/batches", f"/batches/{batch.pk}"):
        html = page.get(url).content.decode()
        assert (
            f'datetime="{local.replace(microsecond=0).isoformat()}"' in html
            or local.strftime("%H:%M") in html
        )
        assert "Estimated finish" in html


def test_before_any_job_ends_there_is_no_estimate(owner):
    started(owner, "fresh")
    assert client_for(owner).get("/api/queue").json()["batches"][0]["estimated_finish"] is None


def test_the_batch_page_and_list_show_the_place_in_the_queue(owner, colleague, mixed_queue):
    client = client_for(owner)
    client.force_login(owner)
    html = client.get(f"/batches/{mixed_queue[2].pk}").content.decode()
    assert "3rd in the queue" in html
    assert "2 other batches, 6 jobs ahead" in html
    listed = client.get("/batches").content.decode()
    assert "4th in the queue" in listed  # "p5 oldest"


def test_the_queue_page_lists_your_batches_and_totals_of_others(owner, stranger, mixed_queue):
    client = client_for(owner)
    client.force_login(owner)
    html = client.get("/queue").content.decode()
    assert "p5 due later" in html and "p5 due soon" not in html
    assert "3 other batches" in html
    client.force_login(stranger)
    html = client.get("/queue").content.decode()
    assert "p5 " not in html and "6 other batches" in html


def test_serve_queue_matches_queue_for_a_superuser(superuser, mixed_queue):
    assert [row["id"] for row in queue_for(superuser)["batches"]] == [e.batch.pk for e in serve_queue()]
    assert all(entry.batch.status in BatchStatus.active() for entry in serve_queue())

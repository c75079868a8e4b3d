"""A job's started_at is when its call could start, not when a worker claimed it."""

from datetime import timedelta

import pytest
from django.test import override_settings
from django.urls import reverse

from batches.analytics import batch_analytics
from grading.claims import claim_jobs, record_outcomes
from grading.models import GradingJob, JobStatus
from grading.runner import Runner, grade_work
from tests.api_support import client_for
from tests.support.engine import OPENAI, failure, later, processing, started_batch
from tests.support.llm_standin import LLMStandin

pytestmark = pytest.mark.django_db

STAGGER_MS = 300


@pytest.fixture
def slow_standin(settings):
    with LLMStandin(latency_s=0.05) as server:
        settings.OPENAI_BASE_URL = server.url
        settings.OPENAI_API_KEY = ""
        settings.MODEL_PRICES = {}
        yield server


def _graded_staggered_batch(owner, standin):
    batch = started_batch(
        owner, jobs=4, settings={**OPENAI, **processing(stagger_ms=STAGGER_MS, concurrency=50)}
    )
    report = Runner(threads=4, poll_s=0.05).run()
    assert report.completed == 4
    jobs = list(GradingJob.objects.filter(batch=batch).order_by("started_at"))
    return batch, jobs


@override_settings(OPENAI_MAX_CONCURRENCY=8)
def test_a_staggered_job_starts_at_its_slot_and_no_earlier(owner, slow_standin):
    batch, jobs = _graded_staggered_batch(owner, slow_standin)

    # One claim took all four (their slots are within a second); before, all four
    # carried that claim's moment. Now each carries its own slot, a stagger apart.
    starts = [job.started_at for job in jobs]
    for earlier, later_start in zip(starts, starts[1:], strict=False):
        assert later_start - earlier >= timedelta(milliseconds=STAGGER_MS - 1)
    # And none before its call: each request reached the provider after its job's start.
    received = sorted(request.received_at for request in slow_standin.requests)
    assert [start.timestamp() <= arrival for start, arrival in zip(starts, received, strict=True)] == [
        True
    ] * 4


@override_settings(OPENAI_MAX_CONCURRENCY=8)
def test_a_graded_job_took_exactly_its_duration_from_start_to_completion(owner, slow_standin):
    _, jobs = _graded_staggered_batch(owner, slow_standin)

    for job in jobs:
        assert job.status == JobStatus.COMPLETED
        elapsed_ms = (job.completed_at - job.started_at) / timedelta(milliseconds=1)
        assert abs(elapsed_ms - job.duration_ms) < 1


@override_settings(OPENAI_MAX_CONCURRENCY=8)
def test_the_analytics_mean_time_per_job_is_the_mean_from_start_to_completion(owner, slow_standin):
    batch, jobs = _graded_staggered_batch(owner, slow_standin)

    figures = batch_analytics(batch)["processing"]

    spans = [(job.completed_at - job.started_at) / timedelta(milliseconds=1) for job in jobs]
    assert figures["timed_jobs"] == 4
    assert abs(figures["mean_ms"] - sum(spans) / len(spans)) < 1


def test_a_claimed_job_not_yet_called_has_not_started(owner):
    batch = started_batch(owner, jobs=2, settings=processing(stagger_ms=900, concurrency=50))

    claimed = claim_jobs(2, "worker/1")

    assert len(claimed) == 2
    assert list(GradingJob.objects.filter(batch=batch).values_list("status", "started_at")) == [
        (JobStatus.PROCESSING, None),
        (JobStatus.PROCESSING, None),
    ]
    # The lease still covers the later slot: the engine keeps what it needs of the claim.
    job = GradingJob.objects.get(pk=claimed[1].job_id)
    assert job.lease_expires_at > claimed[1].start_at


def test_the_api_and_the_job_page_do_not_show_a_claimed_job_as_started(owner, client):
    batch = started_batch(owner, jobs=1)
    [work] = claim_jobs(1, "worker/1")

    response = client_for(owner).get(f"/api/jobs/{work.job_id}")
    assert response.status_code == 200
    assert response.json()["status"] == "processing"
    assert response.json()["started_at"] is None

    client.force_login(owner)
    page = client.get(reverse("batches:job", args=[batch.pk, work.job_id])).content.decode()
    assert "a worker has taken this job" in page
    assert "started <time" not in page


def test_a_job_sent_back_to_the_queue_loses_its_start(owner):
    started_batch(owner, jobs=1, settings=processing(backoff_base_s=0, backoff_max_s=0))
    [work] = claim_jobs(1, "worker/1")

    record_outcomes([failure(work, transient=True)], now=later(0.2))

    job = GradingJob.objects.get(pk=work.job_id)
    assert job.status == JobStatus.QUEUED
    assert job.started_at is None and job.duration_ms is None


def test_the_job_page_says_when_a_graded_job_started_and_how_long_it_took(owner, client):
    batch = started_batch(owner, jobs=1)
    [work] = claim_jobs(1, "worker/1")

    record_outcomes([grade_work(work)], now=later(1.5, work.claimed_at))

    client.force_login(owner)
    page = client.get(reverse("batches:job", args=[batch.pk, work.job_id])).content.decode()
    assert "started <time" in page
    assert "took 1.5 s" in page

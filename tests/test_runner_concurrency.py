"""One runner keeps many provider calls in flight, never more than the provider allows."""

import pytest
from django.test import override_settings

from batches.models import BatchStatus
from batches.tasks import run_jobs
from grading.models import GradingJob, GradingResult, JobStatus
from grading.runner import Runner
from tests.support.engine import OPENAI, processing, started_batch
from tests.support.llm_standin import LLMStandin

pytestmark = pytest.mark.django_db


@pytest.fixture
def standin(settings):
    with LLMStandin(latency_s=0.1, max_concurrency=6, over_cap="record") as server:
        settings.OPENAI_BASE_URL = server.url
        settings.OPENAI_API_KEY = ""
        yield server


@override_settings(OPENAI_MAX_CONCURRENCY=6)
def test_a_runner_keeps_calls_in_flight_up_to_the_provider_limit(owner, standin):
    batch = started_batch(owner, jobs=24, settings={**OPENAI, **processing(concurrency=50)})

    report = run_jobs(threads=16)

    stats = standin.stats()
    assert report.completed == 24
    assert GradingResult.objects.filter(job__batch=batch).count() == 24
    assert 2 <= stats["peak_concurrency"] <= 6
    assert stats["concurrency_violations"] == 0
    batch.refresh_from_db()
    assert batch.status == BatchStatus.COMPLETED


def test_a_runner_respects_the_batch_concurrency(owner, standin):
    started_batch(owner, jobs=8, settings={**OPENAI, **processing(concurrency=3)})

    Runner(threads=16).run()

    assert standin.stats()["peak_concurrency"] <= 3
    assert GradingResult.objects.count() == 8


def test_a_runner_waits_out_a_short_retry_after_and_then_succeeds(owner, standin):
    started_batch(owner, jobs=2, settings={**OPENAI, **processing(backoff_base_s=0, backoff_max_s=0)})
    # Every second request is refused with Retry-After: the second job's first call.
    standin.configure(rate_limit_every=2, retry_after_s=0.5)

    report = Runner(threads=1, poll_s=0.05).run()

    refused, retried = standin.requests[1:3]
    assert (refused.status, retried.status) == (429, 200)
    assert retried.received_at - refused.finished_at >= 0.5
    assert report.requeued == 1
    assert report.completed == 2
    # A 429 is the provider's: it slows the job down and uses up none of its attempts.
    assert sorted(GradingJob.objects.values_list("attempts", flat=True)) == [1, 1]
    assert set(GradingJob.objects.values_list("status", flat=True)) == {JobStatus.COMPLETED}

"""Economy jobs are graded through the provider's batch API, each result recorded exactly once."""

from decimal import Decimal

import pytest

from batches.models import BatchStatus
from batches.tasks import run_economy
from grading.economy_engine import TickReport, poll, record_results, submit_due, tick
from grading.models import GradingJob, GradingResult, JobStatus, ProviderBatch
from grading.providers import get_provider
from tests.api_support import client_for
from tests.support.economy import economy_batch, ended, run_until_settled, wait_for_provider

pytestmark = pytest.mark.django_db


@pytest.fixture
def batch_api(settings, standin):
    settings.OPENAI_BATCH_API = True
    settings.MODEL_PRICES = {}
    return standin


def test_an_economy_batch_is_graded_in_one_provider_batch_at_half_price(owner, batch_api):
    batch = economy_batch(owner, jobs=3)

    first = run_economy()
    submission = ProviderBatch.objects.get()
    assert first["submitted_jobs"] == 3
    assert submission.status == "submitted" and submission.external_id
    assert submission.expected_by is not None
    assert set(GradingJob.objects.in_batch(batch).values_list("status", flat=True)) == {JobStatus.PROCESSING}
    assert batch_api.stats()["completions"] == 0  # no real-time call

    run_until_settled()

    batch.refresh_from_db()
    assert batch.status == BatchStatus.COMPLETED
    results = list(GradingResult.objects.filter(job__batch=batch))
    assert len(results) == 3
    for result in results:
        realtime = get_provider("openai").cost_of("gpt-4o-mini", result.input_tokens, result.output_tokens)
        assert result.cost <= realtime / 2 + Decimal("0.000001")
    assert batch_api.stats()["batches_created"] == 1


def test_a_poller_run_twice_records_each_result_once(owner, batch_api):
    batch = economy_batch(owner, jobs=4)
    tick()
    wait_for_provider(batch_api, ended)
    submission = ProviderBatch.objects.get()
    provider = get_provider("openai")

    first = record_results(submission, provider)
    second = record_results(submission, provider)
    again = tick()

    assert first.completed == 4
    assert second.completed == 0 and second.discarded == 0  # nothing left under its token
    assert again.recorded.completed == 0
    assert GradingResult.objects.filter(job__batch=batch).count() == 4
    assert GradingJob.objects.in_batch(batch).filter(status=JobStatus.COMPLETED).count() == 4


def test_two_pollers_downloading_the_same_results_record_each_once(owner, batch_api):
    batch = economy_batch(owner, jobs=4)
    tick()
    wait_for_provider(batch_api, ended)
    submission = ProviderBatch.objects.get()
    stale_copy = ProviderBatch.objects.get()  # what a second poller read before the first recorded
    provider = get_provider("openai")

    record_results(submission, provider)
    late = record_results(stale_copy, provider)

    assert late.completed == 0
    assert GradingResult.objects.filter(job__batch=batch).count() == 4


def test_partial_errors_and_expiry_requeue_only_the_failed_jobs(owner, batch_api):
    batch_api.configure(batch_error_every=2, batch_expire_every=5)
    batch = economy_batch(owner, jobs=5)
    tick()
    wait_for_provider(batch_api, ended)

    report = TickReport()
    poll(report)  # only the poll: a whole round would submit the re-queued jobs again at once

    jobs = list(GradingJob.objects.in_batch(batch).order_by("id"))
    statuses = [job.status for job in jobs]
    assert statuses == ["completed", "queued", "completed", "queued", "queued"]
    assert report.recorded.completed == 2 and report.recorded.requeued == 3
    errored, expired = jobs[1], jobs[4]
    # The provider's failure: no attempt used, counted against the document instead.
    assert errored.attempts == 0 and errored.provider_retries == 1 and "HTTP 500" in errored.last_error
    assert errored.next_attempt_at is not None
    assert expired.attempts == 0 and "expired" in expired.last_error  # not the job's failure
    assert GradingResult.objects.filter(job__batch=batch).count() == 2
    assert all(job.delivery == "economy" for job in jobs)


def test_failed_jobs_are_submitted_again_and_the_batch_completes(owner, batch_api, settings):
    batch_api.configure(batch_expire_every=2)
    batch = economy_batch(owner, jobs=4)
    tick()
    wait_for_provider(batch_api, ended)
    tick()  # records two results, re-queues the two expired requests
    batch_api.configure(batch_expire_every=0)

    run_until_settled()

    batch.refresh_from_db()
    assert batch.status == BatchStatus.COMPLETED
    assert GradingResult.objects.filter(job__batch=batch).count() == 4
    assert ProviderBatch.objects.count() == 2
    assert sorted(len(item.jobs) for item in ProviderBatch.objects.all()) == [2, 4]


def test_a_provider_batch_holds_no_more_requests_than_the_provider_takes(owner, batch_api, monkeypatch):
    monkeypatch.setattr(type(get_provider("openai")), "batch_max_requests", 2)
    economy_batch(owner, jobs=5)

    submit_due(TickReport())

    assert [len(item.jobs) for item in ProviderBatch.objects.order_by("id")] == [2, 2, 1]
    job_ids = [job_id for item in ProviderBatch.objects.all() for job_id in item.job_ids]
    assert len(job_ids) == len(set(job_ids)) == 5  # a job belongs to one provider batch


def test_the_api_and_the_batch_page_show_each_provider_batch_and_its_expected_completion(
    client, owner, stranger, batch_api
):
    batch = economy_batch(owner, jobs=3)
    tick()
    client.force_login(owner)

    body = client_for(owner).get(f"/api/batches/{batch.pk}").json()
    [listed] = [
        item for item in client_for(owner).get("/api/batches").json()["results"] if item["id"] == batch.pk
    ]
    page = client.get(f"/batches/{batch.pk}").content.decode()

    [shown] = body["provider_batches"]
    assert shown["submitted"] == 3 and shown["status"] == "submitted" and shown["expected_by"]
    assert listed["provider_batches"] == body["provider_batches"]
    assert "Economy delivery: provider batches" in page and "of 3 finished" in page
    assert client_for(stranger).get(f"/api/batches/{batch.pk}").status_code == 404


def test_an_anthropic_batch_is_graded_through_message_batches(owner, settings):
    from tests.support.anthropic_standin import AnthropicStandin

    with AnthropicStandin() as server:
        settings.ANTHROPIC_BASE_URL = server.url
        settings.ANTHROPIC_API_KEY = ""
        settings.ANTHROPIC_BATCH_API = True
        batch = economy_batch(owner, jobs=3, settings={"provider": "anthropic", "model": "claude-haiku-4-5"})

        run_until_settled()

        batch.refresh_from_db()
        assert batch.status == BatchStatus.COMPLETED
        assert server.stats()["batches_created"] == 1 and server.stats()["messages"] == 0
        assert GradingResult.objects.filter(job__batch=batch, provider="anthropic").count() == 3


def test_a_submission_the_provider_refuses_fails_its_jobs_with_the_reason(owner, batch_api, monkeypatch):
    from grading.providers import PermanentProviderError

    def refuse(self, requests, marker, on_upload):
        raise PermanentProviderError(
            "The provider rejected the API key (HTTP 401): Incorrect API key provided."
        )

    monkeypatch.setattr(type(get_provider("openai")), "submit_batch", refuse)
    batch = economy_batch(owner, jobs=2)

    report = run_economy()

    assert report["failed"] == 2 and "HTTP 401" in report["errors"][0]
    assert ProviderBatch.objects.get().status == "failed"
    jobs = GradingJob.objects.in_batch(batch)
    assert set(jobs.values_list("status", flat=True)) == {JobStatus.FAILED}
    assert "HTTP 401" in jobs.first().last_error
    batch.refresh_from_db()
    assert batch.status == BatchStatus.FAILED


def test_a_provider_that_cannot_be_reached_leaves_the_submission_to_the_reconcile(
    owner, batch_api, monkeypatch
):
    from grading.providers import TransientProviderError

    def unreachable(self, requests, marker, on_upload):
        raise TransientProviderError("Could not connect to the provider.")

    monkeypatch.setattr(type(get_provider("openai")), "submit_batch", unreachable)
    batch = economy_batch(owner, jobs=2)

    run_economy()
    monkeypatch.undo()
    submission = ProviderBatch.objects.get()
    assert submission.status == "preparing" and "Could not connect" in submission.last_error
    ProviderBatch.objects.update(preparing_until=submission.created_at)  # its lease has run out

    run_until_settled()

    assert GradingResult.objects.filter(job__batch=batch).count() == 2
    assert batch_api.stats()["batches_created"] == 1

"""A provider's own failures open its circuit instead of failing jobs; a probe closes it again."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from batches.models import BatchStatus, JobBatch
from batches.tasks import update_batch_progress
from grading.circuits import CIRCUIT_FAILURES, PROBE_BASE_S, announce_long_outages, outages
from grading.claims import Blame, Outcome, claim_jobs, record_outcomes
from grading.models import GradingJob, JobStatus, ProviderCircuit
from grading.providers import get_provider
from grading.runner import Runner, grade_work
from notifications.models import Event, Notification
from tests.support.engine import OPENAI, later, processing, started_batch
from tests.support.llm_standin import LLMStandin

pytestmark = pytest.mark.django_db

# No backoff, no stagger, no batch cap: only the circuit holds claims back.
QUICK = {**OPENAI, **processing(backoff_base_s=0, backoff_max_s=0, stagger_ms=0, concurrency=100)}


def down(work, error="Could not connect to http://127.0.0.1:9/v1: Connection refused.", retry_after=None):
    return Outcome(work, error=error, transient=True, retry_after=retry_after, blame=Blame.PROVIDER)


def answered(work):
    """The provider answers (the offline grader stands in for it)."""
    return grade_work(work, provider_lookup=lambda name: get_provider("builtin"))


def circuit() -> ProviderCircuit | None:
    return ProviderCircuit.objects.filter(provider="openai").first()


def fail_in_a_row(count: int, now) -> None:
    for index in range(count):
        [work] = claim_jobs(1, f"w/{index}", now=now)
        record_outcomes([down(work)], now=now)


def test_the_providers_failures_in_a_row_open_its_circuit_and_stop_its_claims(owner):
    started_batch(owner, jobs=CIRCUIT_FAILURES + 3, settings=QUICK)
    now = timezone.now()

    fail_in_a_row(CIRCUIT_FAILURES, now)

    assert circuit().open_until > now
    assert claim_jobs(10, "after/1", now=now) == []
    # None of the failures used up an attempt.
    assert set(GradingJob.objects.values_list("attempts", flat=True)) == {0}
    assert set(GradingJob.objects.values_list("status", flat=True)) == {JobStatus.QUEUED}


def test_an_answer_between_failures_keeps_the_circuit_closed(owner):
    started_batch(owner, jobs=2 * CIRCUIT_FAILURES, settings=QUICK)
    now = timezone.now()
    fail_in_a_row(CIRCUIT_FAILURES - 1, now)
    [work] = claim_jobs(1, "ok/1", now=now)
    record_outcomes([answered(work)], now=now)
    fail_in_a_row(CIRCUIT_FAILURES - 1, now)

    assert circuit().open_until is None
    assert len(claim_jobs(3, "more/1", now=now)) == 3


def test_after_the_wait_a_single_probe_is_claimed_and_its_answer_closes_the_circuit(owner):
    started_batch(owner, jobs=CIRCUIT_FAILURES + 5, settings=QUICK)
    now = timezone.now()
    fail_in_a_row(CIRCUIT_FAILURES, now)
    due = circuit().open_until

    [probe] = claim_jobs(10, "probe/1", now=due)
    assert probe.probe
    assert claim_jobs(10, "other/1", now=due) == []

    record_outcomes([answered(probe)], now=due)

    assert circuit().open_until is None
    assert outages() == {}
    assert len(claim_jobs(10, "resumed/1", now=due)) == CIRCUIT_FAILURES + 4


def test_a_failed_probe_opens_the_circuit_again_for_longer(owner):
    started_batch(owner, jobs=CIRCUIT_FAILURES + 2, settings=QUICK)
    now = timezone.now()
    fail_in_a_row(CIRCUIT_FAILURES, now)
    first = circuit()
    assert first.open_until == now + timedelta(seconds=PROBE_BASE_S)

    [probe] = claim_jobs(10, "probe/1", now=first.open_until)
    retries = GradingJob.objects.get(pk=probe.job_id).provider_retries
    record_outcomes([down(probe)], now=first.open_until)

    second = circuit()
    assert second.open_until == first.open_until + timedelta(seconds=2 * PROBE_BASE_S)
    assert second.since == first.since
    # A probe's failure is not held against its document.
    assert GradingJob.objects.get(pk=probe.job_id).provider_retries == retries


def test_a_retry_after_longer_than_the_wait_is_honoured(owner):
    started_batch(owner, jobs=CIRCUIT_FAILURES, settings=QUICK)
    now = timezone.now()
    works = claim_jobs(CIRCUIT_FAILURES, "w/1", now=now)

    record_outcomes([down(work, "HTTP 429", retry_after=30) for work in works], now=now)

    assert circuit().open_until >= now + timedelta(seconds=30)


def test_a_single_429_slows_its_job_down_and_leaves_the_others_running(owner):
    started_batch(owner, jobs=3, settings=QUICK)
    now = timezone.now()
    [work] = claim_jobs(1, "w/1", now=now)

    record_outcomes([down(work, "HTTP 429", retry_after=20)], now=now)

    job = GradingJob.objects.get(pk=work.job_id)
    assert job.next_attempt_at >= now + timedelta(seconds=20)
    assert job.attempts == 0
    assert circuit().open_until is None
    assert len(claim_jobs(5, "w/2", now=now)) == 2


def test_a_provider_outage_uses_up_no_attempt_and_does_not_finish_the_batch(owner, settings):
    """A real runner against a port nobody listens on, then the provider comes back on it."""
    with LLMStandin() as gone:
        port = gone.port
    settings.OPENAI_BASE_URL = f"http://127.0.0.1:{port}/v1"
    settings.OPENAI_API_KEY = ""
    batch = started_batch(owner, jobs=12, settings={**OPENAI, **processing(max_attempts=1)})

    deadline = time.monotonic() + 60
    while "openai" not in outages() and time.monotonic() < deadline:
        Runner(threads=4, poll_s=0.05, linger_s=0, budget_s=2, on_batch_touched=update_batch_progress).run()

    jobs = GradingJob.objects.in_batch(batch)
    assert set(jobs.values_list("status", flat=True)) == {JobStatus.QUEUED}
    assert set(jobs.values_list("attempts", flat=True)) == {0}
    batch.refresh_from_db()
    assert batch.status in BatchStatus.active()
    assert "Could not connect" in outages()["openai"].reason

    with LLMStandin(port=port):
        report = Runner(threads=4, poll_s=0.05, linger_s=30, on_batch_touched=update_batch_progress).run()

    assert report.completed == 12
    batch.refresh_from_db()
    assert batch.status == BatchStatus.COMPLETED
    assert circuit().open_until is None


def test_a_batch_waiting_for_its_provider_says_so(owner, client):
    batch = started_batch(owner, jobs=CIRCUIT_FAILURES, settings=QUICK)
    fail_in_a_row(CIRCUIT_FAILURES, timezone.now())
    client.force_login(owner)

    waiting = client.get(f"/api/batches/{batch.pk}").json()["waiting_for_provider"]
    page = client.get(f"/batches/{batch.pk}").content.decode()

    assert waiting["provider"] == "openai"
    assert "Connection refused" in waiting["reason"]
    assert waiting["since"]
    assert "Waiting for the provider" in page


def test_a_batch_whose_provider_is_not_down_is_not_waiting(owner, client):
    batch = started_batch(owner, jobs=1, settings=QUICK)
    client.force_login(owner)

    assert client.get(f"/api/batches/{batch.pk}").json()["waiting_for_provider"] is None


def test_a_long_outage_pauses_the_batch_with_a_notification(
    owner, settings, django_capture_on_commit_callbacks
):
    batch = started_batch(owner, jobs=CIRCUIT_FAILURES + 1, settings=QUICK)
    fail_in_a_row(CIRCUIT_FAILURES, timezone.now())
    settings.PROVIDER_OUTAGE_PAUSE_AFTER = timedelta(minutes=60)
    ProviderCircuit.objects.update(since=timezone.now() - timedelta(minutes=61))

    with django_capture_on_commit_callbacks(execute=True):
        assert announce_long_outages() == ["openai"]

    batch.refresh_from_db()
    assert batch.status == BatchStatus.PAUSED
    alert = Notification.objects.get(batch=batch, event=Event.ERROR_ALERT, channel="in_app")
    assert "openai" in alert.title and "paused" in alert.title
    assert alert.payload["data"]["reason"] == "provider_outage"
    # Once paused, the outage names no batch: announced once.
    assert announce_long_outages() == []
    assert JobBatch.objects.get(pk=batch.pk).status == BatchStatus.PAUSED


def test_a_shorter_outage_pauses_nothing(owner, settings):
    batch = started_batch(owner, jobs=CIRCUIT_FAILURES, settings=QUICK)
    fail_in_a_row(CIRCUIT_FAILURES, later(0))

    assert announce_long_outages() == []
    batch.refresh_from_db()
    assert batch.status in BatchStatus.active()

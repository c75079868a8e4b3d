"""The batch state table of DESIGN.md, pair by pair."""

import pytest
from django.forms.models import model_to_dict

from batches.exceptions import InvalidTransition
from batches.models import BatchStatus, JobBatch
from grading.models import GradingJob, JobStatus
from tests.conftest import make_batch, set_status

pytestmark = pytest.mark.django_db

ACTIONS = {
    "start": "start_batch",
    "pause": "pause_batch",
    "resume": "resume_batch",
    "cancel": "cancel_batch",
    "retry": "retry_failed_jobs",
    "archive": "archive",
}

# (status, action) -> the status the batch reaches; every pair not listed is refused.
ALLOWED = {
    ("draft", "start"): "pending",
    ("draft", "cancel"): "cancelled",
    ("pending", "pause"): "paused",
    ("pending", "cancel"): "cancelled",
    ("processing", "pause"): "paused",
    ("processing", "cancel"): "cancelled",
    ("paused", "resume"): "processing",
    ("paused", "cancel"): "cancelled",
    ("completed_with_errors", "retry"): "pending",
    ("failed", "retry"): "pending",
    ("cancelled", "retry"): "pending",
    ("completed", "archive"): "archived",
    ("completed_with_errors", "archive"): "archived",
    ("failed", "archive"): "archived",
    ("cancelled", "archive"): "archived",
}

# What a batch's jobs plausibly look like in each state.
JOBS_IN = {
    "draft": JobStatus.PENDING,
    "pending": JobStatus.QUEUED,
    "processing": JobStatus.QUEUED,
    "paused": JobStatus.QUEUED,
    "completed": JobStatus.COMPLETED,
    "completed_with_errors": JobStatus.FAILED,
    "failed": JobStatus.FAILED,
    "cancelled": JobStatus.CANCELLED,
    "archived": JobStatus.COMPLETED,
}

PAIRS = [(status, action) for status in BatchStatus.values for action in ACTIONS]


def batch_in(owner, status: str) -> JobBatch:
    batch = make_batch(owner, jobs=2)
    if status != "draft":
        set_status(batch, status, JOBS_IN[status])
    return batch


def snapshot(batch: JobBatch) -> tuple[dict, list[dict]]:
    batch.refresh_from_db()
    jobs = [model_to_dict(job) for job in GradingJob.objects.filter(batch=batch).order_by("pk")]
    return model_to_dict(batch), jobs


@pytest.mark.parametrize(("status", "action"), [pair for pair in PAIRS if pair in ALLOWED])
def test_an_allowed_action_reaches_the_status_of_the_table(owner, status, action):
    batch = batch_in(owner, status)

    getattr(batch, ACTIONS[action])()

    batch.refresh_from_db()
    assert batch.status == ALLOWED[(status, action)]


@pytest.mark.parametrize(("status", "action"), [pair for pair in PAIRS if pair not in ALLOWED])
def test_a_refused_action_raises_and_changes_nothing(owner, status, action):
    batch = batch_in(owner, status)
    before = snapshot(batch)

    with pytest.raises(InvalidTransition) as refused:
        getattr(batch, ACTIONS[action])()

    assert refused.value.status == status
    assert refused.value.action == action
    assert refused.value.as_dict()["code"] == "invalid_transition"
    assert snapshot(batch) == before


@pytest.mark.parametrize("status", BatchStatus.values)
def test_any_batch_can_be_duplicated_into_a_new_draft_without_results(owner, colleague, status):
    batch = batch_in(owner, status)
    batch.tags = ["week-3"]
    batch.settings = {"temperature": 0.3}
    batch.save()

    copy = batch.duplicate(owner=colleague)

    assert copy.pk != batch.pk
    assert copy.status == BatchStatus.DRAFT
    assert (copy.tags, copy.settings, copy.template_id) == (batch.tags, batch.settings, batch.template_id)
    assert copy.owner == colleague
    copied = GradingJob.objects.filter(batch=copy)
    assert sorted(copied.values_list("document_id", flat=True)) == sorted(
        GradingJob.objects.filter(batch=batch).values_list("document_id", flat=True)
    )
    assert set(copied.values_list("status", flat=True)) == {JobStatus.PENDING}
    assert not copied.filter(result__isnull=False).exists()
    batch.refresh_from_db()
    assert batch.status == status


def test_starting_a_batch_without_jobs_is_refused(owner):
    batch = make_batch(owner, jobs=0)

    with pytest.raises(InvalidTransition, match="at least one job"):
        batch.start_batch()

    batch.refresh_from_db()
    assert batch.status == BatchStatus.DRAFT


def test_starting_snapshots_the_effective_settings_into_every_job(owner, essay_template):
    batch = make_batch(owner, essay_template, jobs=3, settings={"temperature": 0.4})

    batch.start_batch()

    essay_template.default_settings["temperature"] = 1.5
    essay_template.save()
    for job in GradingJob.objects.filter(batch=batch):
        assert job.status == JobStatus.QUEUED
        assert job.settings["temperature"] == 0.4
        assert job.settings["rubric"]["criteria"][0]["key"] == "thesis"
        assert job.provider == "builtin"
        assert job.model == "builtin-v1"
        assert job.max_attempts == essay_template.processing_rules["max_attempts"]


def test_cancelling_cancels_queued_jobs_and_keeps_those_in_flight_and_finished(owner):
    batch = make_batch(owner, jobs=3)
    batch.start_batch()
    first, second, third = GradingJob.objects.filter(batch=batch).order_by("pk")
    GradingJob.objects.filter(pk=first.pk).update(status=JobStatus.PROCESSING)
    GradingJob.objects.filter(pk=second.pk).update(status=JobStatus.COMPLETED)

    batch.cancel_batch()

    statuses = dict(GradingJob.objects.filter(batch=batch).values_list("pk", "status"))
    assert statuses == {
        first.pk: JobStatus.PROCESSING,
        second.pk: JobStatus.COMPLETED,
        third.pk: JobStatus.CANCELLED,
    }


def test_retrying_requeues_failed_and_cancelled_jobs_with_attempts_reset(owner):
    batch = make_batch(owner, jobs=3)
    batch.start_batch()
    failed, cancelled, done = GradingJob.objects.filter(batch=batch).order_by("pk")
    GradingJob.objects.filter(pk=failed.pk).update(status=JobStatus.FAILED, attempts=3, last_error="boom")
    GradingJob.objects.filter(pk=cancelled.pk).update(status=JobStatus.CANCELLED)
    GradingJob.objects.filter(pk=done.pk).update(status=JobStatus.COMPLETED, attempts=1)
    set_status(batch, BatchStatus.COMPLETED_WITH_ERRORS)

    batch.retry_failed_jobs()

    jobs = {job.pk: job for job in GradingJob.objects.filter(batch=batch)}
    assert (jobs[failed.pk].status, jobs[failed.pk].attempts, jobs[failed.pk].last_error) == ("queued", 0, "")
    assert jobs[cancelled.pk].status == JobStatus.QUEUED
    assert (jobs[done.pk].status, jobs[done.pk].attempts) == (JobStatus.COMPLETED, 1)


def test_retrying_a_batch_with_nothing_to_retry_is_refused(owner):
    batch = batch_in(owner, "cancelled")
    GradingJob.objects.filter(batch=batch).update(status=JobStatus.COMPLETED)

    with pytest.raises(InvalidTransition, match="no failed or cancelled jobs"):
        batch.retry_failed_jobs()


def test_the_last_job_ending_finalises_the_batch_exactly_once(owner):
    batch = make_batch(owner, jobs=2)
    batch.start_batch()
    set_status(batch, BatchStatus.PROCESSING)
    GradingJob.objects.filter(batch=batch).update(status=JobStatus.COMPLETED)

    assert batch.finalize() is True
    assert batch.finalize() is False
    batch.refresh_from_db()
    assert batch.status == BatchStatus.COMPLETED
    assert batch.completed_at is not None


@pytest.mark.parametrize(
    ("job_statuses", "final"),
    [
        (["completed", "completed"], "completed"),
        (["completed", "failed"], "completed_with_errors"),
        (["failed", "failed"], "failed"),
    ],
)
def test_the_final_status_follows_the_jobs_outcomes(owner, job_statuses, final):
    batch = make_batch(owner, jobs=2)
    set_status(batch, BatchStatus.PROCESSING)
    for job, status in zip(GradingJob.objects.filter(batch=batch).order_by("pk"), job_statuses, strict=True):
        GradingJob.objects.filter(pk=job.pk).update(status=status)

    batch.finalize()

    batch.refresh_from_db()
    assert batch.status == final


def test_a_batch_with_unfinished_jobs_is_not_finalised(owner):
    batch = make_batch(owner, jobs=2)
    set_status(batch, BatchStatus.PROCESSING)
    GradingJob.objects.filter(batch=batch).update(status=JobStatus.QUEUED)

    assert batch.finalize() is False
    batch.refresh_from_db()
    assert batch.status == BatchStatus.PROCESSING


@pytest.mark.parametrize("status", ["pending", "processing"])
def test_deleting_a_batch_with_work_queued_or_in_flight_is_refused(owner, status):
    batch = batch_in(owner, status)

    with pytest.raises(InvalidTransition, match="queued or in flight"):
        batch.delete_batch()

    assert JobBatch.objects.filter(pk=batch.pk).exists()


def test_deleting_a_finished_batch_removes_it_and_its_jobs(owner):
    batch = batch_in(owner, "completed")

    batch.delete_batch()

    assert not JobBatch.objects.filter(pk=batch.pk).exists()
    assert not GradingJob.objects.filter(batch_id=batch.pk).exists()

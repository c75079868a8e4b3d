"""Progress is derived from job counts in one place, the same way wherever the counts come from."""

from dataclasses import fields

import pytest

from batches.models import JobBatch
from grading.models import GradingJob, JobStatus
from grading.progress import Progress
from tests.conftest import make_batch


def counts(**by_status: int) -> dict[str, int]:
    full = {status.value: 0 for status in JobStatus} | by_status
    return {"total": sum(full.values()), **full}


def test_no_jobs_is_zero_percent_done():
    progress = Progress.from_counts(counts())

    assert (progress.total, progress.done, progress.remaining, progress.ran) == (0, 0, 0, 0)
    assert progress.percent == 0.0
    assert isinstance(progress.percent, float)
    assert progress.as_dict() == {"total": 0, **{status.value: 0 for status in JobStatus}, "percent": 0.0}


@pytest.mark.parametrize(
    ("done", "total", "percent"),
    [(1, 3, 33.3), (2, 3, 66.7), (1, 6, 16.7), (1, 8, 12.5), (1, 1000, 0.1), (1, 2001, 0.0), (3, 3, 100.0)],
)
def test_percent_done_is_rounded_to_a_tenth(done, total, percent):
    progress = Progress.from_counts(counts(completed=done, queued=total - done))

    assert progress.percent == percent
    assert progress.percent == round(100 * done / total, 1)


def test_every_status_is_counted():
    progress = Progress.from_counts(
        counts(pending=1, queued=2, processing=3, completed=4, failed=5, cancelled=6)
    )

    assert progress.total == 21
    assert [progress.count(status) for status in JobStatus] == [1, 2, 3, 4, 5, 6]
    assert progress.done == 4 + 5 + 6  # every way of ending counts as done
    assert progress.remaining == 1 + 2 + 3
    assert progress.ran == 4 + 5  # cancelled jobs never ran
    assert progress.percent == round(100 * 15 / 21, 1) == 71.4


def test_as_dict_has_the_total_each_status_and_the_percent_in_order():
    as_dict = Progress.from_counts(counts(completed=1, failed=1, queued=2)).as_dict()

    assert list(as_dict) == ["total", *JobStatus.values, "percent"]
    assert as_dict == {
        "total": 4,
        "pending": 0,
        "queued": 2,
        "processing": 0,
        "completed": 1,
        "failed": 1,
        "cancelled": 0,
        "percent": 50.0,
    }


def test_from_counts_ignores_a_percent_and_needs_every_status():
    with_percent = {**counts(completed=1, queued=1), "percent": 12.3}
    assert Progress.from_counts(with_percent).percent == 50.0
    assert Progress.from_counts(Progress.from_counts(with_percent).as_dict()) == Progress.from_counts(
        with_percent
    )

    missing = counts(completed=1)
    del missing["cancelled"]
    with pytest.raises(KeyError):
        Progress.from_counts(missing)


def test_the_fields_are_the_total_and_the_job_statuses():
    assert [field.name for field in fields(Progress)] == ["total", *JobStatus.values]


@pytest.mark.django_db
def test_the_aggregate_and_the_list_annotations_give_the_same_progress(owner, django_assert_num_queries):
    batch = make_batch(owner, jobs=7)
    jobs = list(GradingJob.objects.in_batch(batch).order_by("pk").values_list("pk", flat=True))
    for pks, status in (
        (jobs[:2], JobStatus.COMPLETED),
        (jobs[2:3], JobStatus.FAILED),
        (jobs[3:4], "queued"),
    ):
        GradingJob.objects.filter(pk__in=pks).update(status=status)

    expected = Progress.from_counts(counts(completed=2, failed=1, queued=1, pending=3)).as_dict()
    assert batch.progress() == expected == {**expected, "percent": 42.9}

    listed = JobBatch.objects.with_progress().get(pk=batch.pk)
    with django_assert_num_queries(0):
        assert listed.known_progress() == expected
    fresh = JobBatch.objects.get(pk=batch.pk)
    with django_assert_num_queries(1):
        assert fresh.known_progress() == expected

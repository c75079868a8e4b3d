"""`manage.py archive_batches` and the daily cleanup_completed_batches task."""

import subprocess
import sys
from datetime import timedelta
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.utils import timezone

from batches.exceptions import InvalidTransition
from batches.models import BatchStatus, JobBatch
from batches.tasks import cleanup_completed_batches
from tests.conftest import make_batch, set_status


def finished(owner, status: str, days_ago: float, name: str = "") -> JobBatch:
    batch = make_batch(owner, jobs=1, name=name or f"{status} {days_ago}d")
    set_status(batch, status)
    JobBatch.objects.filter(pk=batch.pk).update(completed_at=timezone.now() - timedelta(days=days_ago))
    batch.refresh_from_db()
    return batch


def run(*args: str) -> str:
    out = StringIO()
    call_command("archive_batches", *args, stdout=out)
    return out.getvalue()


def statuses(*batches: JobBatch) -> list[str]:
    return [JobBatch.objects.get(pk=batch.pk).status for batch in batches]


def test_a_dry_run_lists_the_batches_and_changes_nothing(owner):
    old = finished(owner, BatchStatus.COMPLETED, 45, name="Old essays")
    output = run("--older-than", "30d", "--dry-run")
    assert "Would archive 1 batch " in output
    assert f"#{old.pk} Old essays (completed" in output
    old.refresh_from_db()
    assert old.status == BatchStatus.COMPLETED
    assert old.archived_at is None


def test_only_batches_finished_before_the_cut_off_are_archived(owner):
    old = finished(owner, BatchStatus.COMPLETED, 45)
    recent = finished(owner, BatchStatus.COMPLETED, 10)
    output = run("--older-than", "30d")
    assert "Archived 1 batch " in output
    assert statuses(old, recent) == [BatchStatus.ARCHIVED, BatchStatus.COMPLETED]
    assert JobBatch.objects.get(pk=old.pk).archived_at is not None


def test_hours_and_minutes_set_the_cut_off(owner):
    day_old = finished(owner, BatchStatus.FAILED, 1)
    run("--older-than", "25h")
    assert statuses(day_old) == [BatchStatus.FAILED]
    run("--older-than", "1380m")  # 23 hours
    assert statuses(day_old) == [BatchStatus.ARCHIVED]


def test_the_status_filter_archives_only_the_named_finished_states(owner):
    completed = finished(owner, BatchStatus.COMPLETED, 60)
    cancelled = finished(owner, BatchStatus.CANCELLED, 60)
    failed = finished(owner, BatchStatus.FAILED, 60)
    run("--older-than", "30d", "--status", "cancelled,failed")
    assert statuses(completed, cancelled, failed) == [
        BatchStatus.COMPLETED,
        BatchStatus.ARCHIVED,
        BatchStatus.ARCHIVED,
    ]


def test_unfinished_batches_are_never_archived_however_old(owner):
    draft = make_batch(owner, jobs=1)
    JobBatch.objects.filter(pk=draft.pk).update(created_at=timezone.now() - timedelta(days=400))
    processing = finished(owner, BatchStatus.PROCESSING, 400)
    output = run("--older-than", "1d")
    assert "Archived 0 batches" in output
    assert statuses(draft, processing) == [BatchStatus.DRAFT, BatchStatus.PROCESSING]


def test_an_already_archived_batch_is_left_alone(owner):
    archived = finished(owner, BatchStatus.COMPLETED, 90)
    archived.archive()
    stamp = JobBatch.objects.get(pk=archived.pk).archived_at
    assert "Archived 0 batches" in run("--older-than", "30d")
    assert JobBatch.objects.get(pk=archived.pk).archived_at == stamp


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--older-than", "soon"], "--older-than: 'soon' is not a duration"),
        (["--older-than", "30s"], "is not a duration"),
        (["--older-than=-3d"], "is not a duration"),
        (["--status", "processing"], "Only finished batches can be archived, and 'processing'"),
        (["--status", "completed,done"], "'done' is not a batch status"),
        (["--status", ","], "--status names no status"),
    ],
)
def test_bad_arguments_are_refused_with_a_sentence_and_change_nothing(owner, args, message):
    old = finished(owner, BatchStatus.COMPLETED, 90)
    with pytest.raises(CommandError, match=message.replace("(", r"\(")) as refused:
        run(*args)
    assert str(refused.value).endswith(".")
    assert statuses(old) == [BatchStatus.COMPLETED]


def test_a_bad_argument_exits_non_zero_from_the_shell():
    result = subprocess.run(
        [sys.executable, "manage.py", "archive_batches", "--older-than", "a month"],
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "is not a duration; write a whole number followed by d, h or m" in result.stderr


def test_the_daily_task_archives_what_the_command_would(owner, settings):
    settings.ARCHIVE_AFTER = timedelta(days=30)
    old = finished(owner, BatchStatus.COMPLETED_WITH_ERRORS, 31)
    recent = finished(owner, BatchStatus.COMPLETED, 29)
    summary = cleanup_completed_batches()
    assert summary.startswith("Archived 1 batch ")
    assert statuses(old, recent) == [BatchStatus.ARCHIVED, BatchStatus.COMPLETED]
    cleanup_completed_batches(older_than="1d", statuses="completed")
    assert statuses(recent) == [BatchStatus.ARCHIVED]


def test_a_batch_retried_and_finished_again_after_the_selection_is_skipped(owner):
    batch = finished(owner, BatchStatus.COMPLETED, 90)
    cutoff = timezone.now() - timedelta(days=30)
    JobBatch.objects.filter(pk=batch.pk).update(completed_at=timezone.now())
    with pytest.raises(InvalidTransition, match="finished after the cut-off"):
        batch.archive(finished_before=cutoff)
    assert statuses(batch) == [BatchStatus.COMPLETED]

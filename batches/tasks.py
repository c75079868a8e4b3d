"""Batch tasks run by django-q2."""

from django_q.tasks import async_task


def enqueue_processing(batch_id: int) -> None:
    """Hand a started or resumed batch to the workers."""
    async_task("batches.tasks.process_batch", batch_id, task_name=f"process_batch:{batch_id}")


def process_batch(batch_id: int) -> None:
    from batches.models import JobBatch

    batch = JobBatch.objects.get(pk=batch_id)
    batch.mark_processing()


def cleanup_completed_batches(older_than: str | None = None, statuses: str | list[str] | None = None) -> str:
    """The daily archival: finished batches older than ARCHIVE_AFTER (or older_than) are archived."""
    import logging

    from django.conf import settings

    from batches.archival import archive_finished_batches, parse_statuses
    from gradeproject.env import parse_duration

    age = parse_duration(older_than) if older_than else settings.ARCHIVE_AFTER
    report = archive_finished_batches(age, parse_statuses(statuses))
    logging.getLogger(__name__).info(report.summary())
    return report.summary()

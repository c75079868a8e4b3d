"""Batch tasks run by django-q2."""

from django_q.tasks import async_task


def enqueue_processing(batch_id: int) -> None:
    """Hand a started or resumed batch to the workers."""
    async_task("batches.tasks.process_batch", batch_id, task_name=f"process_batch:{batch_id}")


def process_batch(batch_id: int) -> None:
    from batches.models import JobBatch

    batch = JobBatch.objects.get(pk=batch_id)
    batch.mark_processing()

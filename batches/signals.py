import logging
from typing import TYPE_CHECKING

from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import Signal, receiver
from django_q.conf import Conf
from django_q.signals import post_spawn
from django_q.tasks import async_task

from core.permissions import keep_owner_permissions

if TYPE_CHECKING:
    from batches.models import JobBatch

logger = logging.getLogger(__name__)

# Sent once a batch has reached a final state (completed, completed_with_errors,
# failed, cancelled), after the transaction that set it commits. Arguments: batch.
batch_finished = Signal()
# Sent when a batch's job counts have moved. Arguments: batch, counts (the
# progress() dict; receivers query it when None).
batch_progressed = Signal()


# The sender is named lazily: batches.models imports this module for the signals above.
@receiver(post_save, sender="batches.JobBatch")
def owner_gets_every_permission(sender, instance: "JobBatch", created: bool, update_fields, **kwargs) -> None:
    keep_owner_permissions(instance, created, update_fields)


def announce(signal: Signal, batch: "JobBatch", **kwargs) -> None:
    """Send the signal once the current transaction commits (at once outside one).

    A receiver's failure is logged, never raised: a batch's state change must
    not fail because a notification could not be prepared.
    """

    def send() -> None:
        for receiver_, result in signal.send_robust(sender=type(batch), batch=batch, **kwargs):
            if isinstance(result, Exception):
                logger.error("%s failed for batch %s", receiver_, batch.pk, exc_info=result)

    transaction.on_commit(send)


@receiver(post_spawn)
def recover_when_a_worker_starts(sender, proc_name: str, **kwargs) -> None:
    """A restarted cluster picks up interrupted work at once, not at the next schedule tick.

    django-q2 runs its scheduler only every 30 seconds and redelivers a killed
    worker's task only after Q_RETRY; this makes recovery independent of both.
    In sync mode every task "spawns" a worker inline, so there is nothing to do.
    """
    if Conf.SYNC:
        return
    async_task("batches.tasks.recover_stalled_jobs", after_restart=True, task_name="recover_stalled_jobs")
    # A fresh cluster proves it is alive at once, not at the first scheduler tick
    # half a minute later: /healthz and `grade --wait` read this heartbeat.
    async_task("health.tasks.heartbeat", task_name="heartbeat")

import logging
from typing import TYPE_CHECKING

from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import Signal, receiver

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
# Sent when a batch was paused because its provider stayed down longer than
# PROVIDER_OUTAGE_PAUSE_AFTER. Arguments: batch, provider, reason, since.
batch_paused_for_provider = Signal()


# The sender is named lazily: batches.models imports this module for the signals above.
@receiver(post_save, sender="batches.JobBatch")
def owner_gets_every_permission(sender, instance: "JobBatch", created: bool, update_fields, **kwargs) -> None:
    keep_owner_permissions(instance, created, update_fields)


@receiver(post_save, sender="batches.AssignmentRule")
def rule_owner_gets_every_permission(sender, instance, created: bool, update_fields, **kwargs) -> None:
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

"""Notification tasks run by django-q2."""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from batches.models import BatchStatus, JobBatch
from notifications.delivery import deliver_notification
from notifications.events import announce_finished, check_progress, enqueue_delivery
from notifications.models import DeliveryAttempt, DeliveryStatus, Notification

logger = logging.getLogger(__name__)

# How long a delivery may sit due before the scan re-enqueues it: the normal
# paths (the task queued on commit, the retry's one-off schedule) go first.
OVERDUE_AFTER = timedelta(seconds=90)
# Finished batches this recent are re-announced by the scan, in case the
# process that finished one stopped between its commit and its signal.
CATCH_UP_WINDOW = timedelta(minutes=15)


def deliver(notification_id: int) -> str:
    """Make a notification's next delivery attempt; harmless when run twice or too early."""
    notification = (
        Notification.objects.select_related("recipient", "webhook").filter(pk=notification_id).first()
    )
    if notification is None:
        return "gone (its batch was deleted)"
    return deliver_notification(notification)


def scan_active_batches(now: datetime | None = None) -> str:
    """Every minute: milestones, error rates and deadlines of unfinished batches, and delivery upkeep."""
    now = now or timezone.now()
    # Drafts too, when they have a deadline: one not started in time needs a warning most.
    unfinished = JobBatch.objects.filter(
        Q(status__in=[*BatchStatus.active(), BatchStatus.PAUSED])
        | Q(
            status=BatchStatus.DRAFT,
            deadline__isnull=False,
            deadline__lte=now + settings.NOTIFY_DEADLINE_NEAR,
        )
    ).with_progress()
    fired = 0
    for batch in unfinished.iterator(chunk_size=200):
        fired += len(check_progress(batch, batch.known_progress(), now))
    for batch in JobBatch.objects.filter(
        status__in=BatchStatus.finished(), completed_at__gte=now - CATCH_UP_WINDOW
    ):
        fired += len(announce_finished(batch))
    requeued = requeue_overdue(now)
    lost = give_up_lost_attempts(now)
    return f"{fired} notifications, {requeued} deliveries re-queued, {lost} lost attempts closed"


def requeue_overdue(now: datetime) -> int:
    overdue = list(Notification.objects.due(now - OVERDUE_AFTER).values_list("pk", flat=True)[:500])
    for notification_id in overdue:
        enqueue_delivery(notification_id)
    return len(overdue)


def give_up_lost_attempts(now: datetime) -> int:
    """Close attempts whose worker vanished mid-send.

    Whether the receiver got the message is unknown; sending it again could
    deliver it twice, and a delivery is promised at most once.
    """
    lost = Notification.objects.filter(status=DeliveryStatus.SENDING, lease_expires_at__lt=now)
    closed = 0
    for notification in lost:
        error = "The worker stopped during this attempt; whether it arrived is unknown, so it is not resent."
        updated = Notification.objects.filter(
            pk=notification.pk, status=DeliveryStatus.SENDING, attempts=notification.attempts
        ).update(status=DeliveryStatus.FAILED, last_error=error, lease_expires_at=None)
        if updated:
            DeliveryAttempt.objects.get_or_create(
                notification=notification, number=notification.attempts, defaults={"error": error}
            )
            closed += 1
    return closed

"""Which events a batch has reached, and turning one into notifications.

Detection is pure: it reads a batch and its job counts and names the
occurrences (event + key) it has reached. `fire()` then creates each
occurrence's notifications once; calling it again, from a second worker, a
re-run task or the minute scan, creates nothing new.
"""

import logging
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from batches.eta import Estimate, estimate_finish
from batches.models import BatchStatus, JobBatch, JobBatchGroupObjectPermission, JobBatchUserObjectPermission
from core.permissions import Level, level_codenames
from grading.models import GradingJob, JobStatus
from grading.progress import Progress
from notifications.models import (
    Channel,
    DeliveryStatus,
    Event,
    Notification,
    NotificationPreference,
)

logger = logging.getLogger(__name__)

MILESTONES = (25, 50, 75)


@dataclass(frozen=True)
class Occurrence:
    event: str
    key: str
    title: str
    body: str
    data: dict[str, Any] = field(default_factory=dict)


# --- detection -------------------------------------------------------------


def finished_occurrences(batch: JobBatch, counts: dict[str, int]) -> list[Occurrence]:
    """The batch ended: always a batch_finished, and an error alert when it failed."""
    if batch.status not in BatchStatus.finished() or batch.completed_at is None:
        return []
    # Keyed by the finish time: a retried batch that finishes again is news again,
    # the same finish noticed twice is not.
    when = batch.completed_at.strftime("%Y%m%dT%H%M%S.%f")
    label = BatchStatus(batch.status).label.lower()
    summary = _counts_sentence(counts)
    failed = batch.status == BatchStatus.FAILED
    found = [
        Occurrence(
            Event.BATCH_FINISHED,
            f"{batch.status}@{when}",
            f'Batch "{batch.name}" {label}',
            # A failed batch says why in the one notice of its finish, rather than in a second.
            f"{'No job succeeded. ' if failed else ''}{summary}\nFinished at {batch.completed_at:%Y-%m-%d %H:%M} UTC."
            f"{_last_error(batch) if failed else ''}",
            {"status": batch.status, "completed_at": batch.completed_at.isoformat()},
        )
    ]
    # A batch that ended in one round was never seen with jobs left: its failure
    # rate is judged here, under the same key as during a run, so it alerts once.
    rate = None if failed else _failure_rate(batch, counts)
    return [*found, rate] if rate else found


def progress_occurrences(batch: JobBatch, counts: dict[str, int], now: datetime) -> list[Occurrence]:
    """Milestones, a failure rate past the threshold and deadline warnings of an unfinished batch."""
    progress = Progress.from_counts(counts)
    remaining = progress.remaining
    if not progress.total or not remaining:
        return []
    return [
        occurrence
        for occurrence in (
            _milestone(batch, counts, now),
            _failure_rate(batch, counts),
            _deadline(batch, counts, remaining, now),
        )
        if occurrence is not None
    ]


def _milestone(batch: JobBatch, counts: dict[str, int], now: datetime) -> Occurrence | None:
    # A batch that finishes in seconds needs no "half done": milestones wait until
    # it has run long enough for someone to be waiting on it.
    if batch.started_at is None or now - batch.started_at < settings.NOTIFY_MILESTONE_AFTER:
        return None
    # Only the highest milestone passed: a batch that jumps from 10 % to 80 %
    # between two looks says "75 % done" once, not three things at once.
    reached = [mark for mark in MILESTONES if counts["percent"] >= mark]
    if not reached:
        return None
    mark = reached[-1]
    return Occurrence(
        Event.PROGRESS_MILESTONE,
        str(mark),
        f'Batch "{batch.name}" is {mark} % done',
        _counts_sentence(counts),
        {"milestone": mark, "percent": counts["percent"]},
    )


def _failure_rate(batch: JobBatch, counts: dict[str, int]) -> Occurrence | None:
    ended = Progress.from_counts(counts).ran
    if ended < settings.NOTIFY_ERROR_MIN_JOBS:
        return None
    rate = counts["failed"] / ended
    if rate <= settings.NOTIFY_ERROR_RATE:
        return None
    return Occurrence(
        Event.ERROR_ALERT,
        "failure_rate",
        f'Batch "{batch.name}": {rate:.0%} of finished jobs failed',
        f"{counts['failed']} of {ended} finished jobs failed, above the alert threshold of "
        f"{settings.NOTIFY_ERROR_RATE:.0%}.{_last_error(batch)}",
        {"reason": "failure_rate", "failure_rate": round(rate, 4), "threshold": settings.NOTIFY_ERROR_RATE},
    )


def _deadline(batch: JobBatch, counts: dict[str, int], remaining: int, now: datetime) -> Occurrence | None:
    if batch.deadline is None:
        return None
    expected = estimate_finish(batch, counts, now)
    standing = expected.standing
    due = f"{batch.deadline:%Y-%m-%d %H:%M} UTC"
    data = {"deadline": batch.deadline.isoformat(), "remaining": remaining}
    if standing == "late":
        title, body, kind = "is past its deadline", f"The deadline ({due}) has passed", "late"
    elif standing == "at_risk":
        title, body, kind = "may miss its deadline", _behind(expected, due), "at_risk"
    elif batch.deadline - now <= settings.NOTIFY_DEADLINE_NEAR:
        title, body, kind = "is near its deadline", f"The deadline ({due}) is near", "near"
    else:
        return None
    return Occurrence(
        Event.DEADLINE_WARNING,
        kind,
        f'Batch "{batch.name}" {title}',
        f"{body} with {remaining} job{'s' if remaining != 1 else ''} left.",
        {**data, "standing": kind},
    )


def _behind(expected: Estimate, due: str) -> str:
    if expected.by_provider_batch and expected.at is not None:
        # A provider batch takes as long as it takes: no pace of ours changes it.
        return f"Its provider batches are expected by {expected.at:%Y-%m-%d %H:%M} UTC, after {due},"
    return f"At the current pace it will finish after {due}"


def _counts_sentence(counts: dict[str, int]) -> str:
    return (
        f"{counts['completed']} of {counts['total']} jobs graded, {counts['failed']} failed, "
        f"{counts['cancelled']} cancelled ({counts['percent']:g} % done)."
    )


def _last_error(batch: JobBatch) -> str:
    error = (
        GradingJob.objects.in_batch(batch)
        .filter(status=JobStatus.FAILED)
        .exclude(last_error="")
        .order_by("-completed_at", "-pk")
        .values_list("last_error", flat=True)
        .first()
    )
    return f"\nLast error: {error[:300]}" if error else ""


# --- turning occurrences into notifications ----------------------------------


def fire(batch: JobBatch, occurrences: list[Occurrence], counts: dict[str, int]) -> list[Notification]:
    """Notify each occurrence not notified before; returns the notifications created."""
    if not occurrences:
        return []
    done = set(
        Notification.objects.filter(batch=batch, event__in={o.event for o in occurrences}).values_list(
            "event", "key"
        )
    )
    created = []
    for occurrence in occurrences:
        if (occurrence.event, occurrence.key) not in done:
            created += notify(batch, occurrence, counts)
    return created


def recipients(batch: JobBatch) -> list:
    """The owner and everyone the batch is shared with (directly or through a group)."""
    # Any level at or above view lets its holder see the batch, so any of them counts.
    names = level_codenames(JobBatch, Level.VIEW.and_above())
    shared_users = JobBatchUserObjectPermission.objects.filter(
        content_object=batch, permission__codename__in=names
    ).values("user_id")
    shared_groups = JobBatchGroupObjectPermission.objects.filter(
        content_object=batch, permission__codename__in=names
    ).values("group_id")
    return list(
        get_user_model()
        .objects.filter(is_active=True)
        .filter(Q(pk=batch.owner_id) | Q(pk__in=shared_users) | Q(groups__in=shared_groups))
        .distinct()
        .order_by("pk")
    )


def notify(batch: JobBatch, occurrence: Occurrence, counts: dict[str, int]) -> list[Notification]:
    """One notification per recipient and chosen channel, and per interested webhook.

    In-app notifications are delivered by being stored; e-mails and webhooks
    are handed to django-q2 once the rows are committed.
    """
    users = recipients(batch)
    grid = NotificationPreference.objects.grid_for(users)
    payload = _payload(batch, occurrence, counts)
    now = timezone.now()
    common = {
        "event": occurrence.event,
        "key": occurrence.key,
        "batch": batch,
        "title": occurrence.title[:300],
        "body": occurrence.body,
        "payload": payload,
        "created_at": now,
        "next_attempt_at": now,
    }
    created = []
    with transaction.atomic():
        for user in users:
            for channel in Channel.personal():
                if not grid[user.pk][channel][occurrence.event]:
                    continue
                if channel == Channel.EMAIL and not user.email:
                    continue
                created += _insert_once(
                    recipient=user,
                    channel=channel,
                    **common,
                    **({"status": DeliveryStatus.SENT, "sent_at": now} if channel == Channel.IN_APP else {}),
                )
        for webhook in batch.webhooks.all():
            if webhook.wants(occurrence.event):
                created += _insert_once(webhook=webhook, channel=Channel.WEBHOOK, **common)
        for notification in created:
            if notification.channel != Channel.IN_APP:
                transaction.on_commit(partial(enqueue_delivery, notification.pk))
    return created


def _insert_once(**fields: Any) -> list[Notification]:
    # The savepoint lets a duplicate (another worker got there first) be
    # skipped without undoing the rest of this occurrence's notifications.
    try:
        with transaction.atomic():
            return [Notification.objects.create(**fields)]
    except IntegrityError:
        return []


def enqueue_delivery(notification_id: int) -> None:
    from django_q.tasks import async_task

    async_task("notifications.tasks.deliver", notification_id, task_name=f"notification:{notification_id}")


def _payload(batch: JobBatch, occurrence: Occurrence, counts: dict[str, int]) -> dict[str, Any]:
    return {
        "batch": {
            "id": batch.pk,
            "name": batch.name,
            "status": batch.status,
            "priority": batch.priority,
            "tags": batch.tags,
            "deadline": batch.deadline.isoformat() if batch.deadline else None,
            "url": f"{settings.SITE_URL.rstrip('/')}/batches/{batch.pk}",
        },
        "progress": {key: counts[key] for key in ("total", *JobStatus.values, "percent")},
        "data": occurrence.data,
    }


# --- entry points ------------------------------------------------------------


def announce_finished(batch: JobBatch) -> list[Notification]:
    counts = batch.progress()
    return fire(batch, finished_occurrences(batch, counts), counts)


def announce_provider_outage(
    batch: JobBatch, provider: str, reason: str, since: datetime
) -> list[Notification]:
    """The batch was paused because its provider stayed down: an error alert, once per outage."""
    counts = batch.progress()
    occurrence = Occurrence(
        Event.ERROR_ALERT,
        f"provider_outage@{since:%Y%m%dT%H%M%S.%f}",
        f'Batch "{batch.name}" paused: the provider {provider} is down',
        f"{provider} has failed every call since {since:%Y-%m-%d %H:%M} UTC ({reason[:300]}). "
        f"The batch was paused; none of its jobs used up an attempt. Resume it once {provider} answers "
        f"again. {_counts_sentence(counts)}",
        {"reason": "provider_outage", "provider": provider, "since": since.isoformat()},
    )
    return fire(batch, [occurrence], counts)


def check_progress(
    batch: JobBatch, counts: dict[str, int] | None = None, now: datetime | None = None
) -> list[Notification]:
    counts = counts or batch.progress()
    return fire(batch, progress_occurrences(batch, counts, now or timezone.now()), counts)

"""Who hears about what, and the record of every delivery.

A Notification row is one event for one recipient on one channel (or for one
webhook). Its uniqueness key (event, batch, occurrence key, channel and
recipient or webhook) is what makes delivery at-most-once: a task that runs
twice, or two workers noticing the same milestone, insert the same key and
the database keeps only the first.
"""

import secrets
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings as conf
from django.db import models
from django.db.models import Count, F, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone


class Event(models.TextChoices):
    BATCH_FINISHED = "batch_finished", "Batch finished"
    DEADLINE_WARNING = "deadline_warning", "Deadline warning"
    ERROR_ALERT = "error_alert", "Error alert"
    PROGRESS_MILESTONE = "progress_milestone", "Progress milestone"


class Channel(models.TextChoices):
    IN_APP = "in_app", "In-app"
    EMAIL = "email", "Email"
    WEBHOOK = "webhook", "Webhook"

    @classmethod
    def personal(cls) -> list[str]:
        """Channels a user chooses events for; webhooks are set per batch instead."""
        return [cls.IN_APP, cls.EMAIL]


# What a user gets before choosing: everything in the app, and by email what
# needs attention or is done; milestones by email would be noise.
DEFAULT_PREFERENCES: dict[str, set[str]] = {
    Channel.IN_APP: set(Event.values),
    Channel.EMAIL: {Event.BATCH_FINISHED, Event.DEADLINE_WARNING, Event.ERROR_ALERT},
}


class PreferenceQuerySet(models.QuerySet):
    def grid_for(self, users) -> dict[int, dict[str, dict[str, bool]]]:
        """{user_id: {channel: {event: enabled}}}, defaults filled in, in one query."""
        grid = {
            user.pk: {
                channel: {event: event in DEFAULT_PREFERENCES[channel] for event in Event.values}
                for channel in Channel.personal()
            }
            for user in users
        }
        for user_id, channel, event, enabled in self.filter(user__in=list(grid)).values_list(
            "user_id", "channel", "event", "enabled"
        ):
            if channel in grid[user_id] and event in Event.values:
                grid[user_id][channel][event] = enabled
        return grid

    def set_grid(self, user, grid: dict[str, dict[str, bool]]) -> None:
        for channel, events in grid.items():
            for event, enabled in events.items():
                self.update_or_create(user=user, channel=channel, event=event, defaults={"enabled": enabled})


class NotificationPreference(models.Model):
    user = models.ForeignKey(
        conf.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_preferences"
    )
    channel = models.CharField(max_length=20, choices=Channel.choices)
    event = models.CharField(max_length=30, choices=Event.choices)
    enabled = models.BooleanField(default=True)

    objects = PreferenceQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "channel", "event"], name="preference_once_per_user"),
        ]

    def __str__(self) -> str:
        return f"{self.user} {self.channel}/{self.event}: {'on' if self.enabled else 'off'}"


def new_secret() -> str:
    return secrets.token_hex(32)


class BatchWebhook(models.Model):
    """A URL the batch's owner wants events POSTed to, signed with the webhook's own secret."""

    batch = models.ForeignKey("batches.JobBatch", on_delete=models.CASCADE, related_name="webhooks")
    url = models.URLField(max_length=500)
    secret = models.CharField(max_length=64, default=new_secret)
    # The events this webhook receives; empty means all of them.
    events = models.JSONField(default=list, blank=True)
    is_active = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        conf.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["batch", "url"], name="webhook_url_once_per_batch"),
        ]

    def __str__(self) -> str:
        return self.url

    def wants(self, event: str) -> bool:
        return self.is_active and (not self.events or event in self.events)


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"
    RETRYING = "retrying", "Waiting to retry"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"

    @classmethod
    def due(cls) -> list[str]:
        return [cls.PENDING, cls.RETRYING]


# The largest id a bigint column holds: a larger number names no batch (and would overflow the query).
MAX_ID = 2**63 - 1


def batch_id_from(raw: str | None) -> int | None:
    """The `batch` parameter of the notification lists: None when absent; ValueError with a sentence."""
    if raw in (None, ""):
        return None
    if not (raw.isascii() and raw.isdigit()) or int(raw) > MAX_ID:
        raise ValueError("A batch is named by its id, a whole number.")
    return int(raw)


class NotificationQuerySet(models.QuerySet):
    def in_app_for(self, user) -> "NotificationQuerySet":
        return self.filter(recipient=user, channel=Channel.IN_APP)

    def unread(self) -> "NotificationQuerySet":
        return self.filter(read_at__isnull=True)

    def of_batch(self, batch_id: int) -> "NotificationQuerySet":
        return self.filter(batch_id=batch_id)

    def mark_read(self, now: datetime | None = None) -> int:
        """Mark the unread ones read; how many were."""
        return self.unread().update(read_at=now or timezone.now())

    def latest_per_batch(self) -> "NotificationQuerySet":
        """One entry per batch: its newest notice among these, with the group's counts.

        Each row is annotated with `group_size` (the batch's notices among these,
        itself included) and `group_unread` (how many of them are unread). The
        subqueries repeat this queryset's own filters (recipient, channel, unread),
        so a group holds exactly what the flat list would show for its batch; the
        notification_inbox index serves them.
        """
        same_batch = self.filter(batch=OuterRef("batch")).order_by()
        newest = same_batch.order_by("-created_at", "-id").values("pk")[:1]

        def count(queryset) -> Subquery:
            return Subquery(queryset.values("batch").annotate(n=Count("pk")).values("n"))

        return self.filter(pk=Subquery(newest)).annotate(
            group_size=Coalesce(count(same_batch), 0),
            group_unread=Coalesce(count(same_batch.unread()), 0),
        )

    def due(self, now: datetime) -> "NotificationQuerySet":
        """Deliveries whose next attempt may run now."""
        return self.filter(status__in=DeliveryStatus.due(), next_attempt_at__lte=now)


class Notification(models.Model):
    event = models.CharField(max_length=30, choices=Event.choices)
    # Tells occurrences of one event in one batch apart: "75" for the 75 %
    # milestone, "at_risk" for a deadline warning, the status and finish time
    # for a batch ending (a retried batch that finishes again is news again).
    key = models.CharField(max_length=100)
    batch = models.ForeignKey("batches.JobBatch", on_delete=models.CASCADE, related_name="notifications")
    channel = models.CharField(max_length=20, choices=Channel.choices)
    recipient = models.ForeignKey(
        conf.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="notifications"
    )
    webhook = models.ForeignKey(
        BatchWebhook, null=True, blank=True, on_delete=models.CASCADE, related_name="notifications"
    )
    title = models.CharField(max_length=300)
    body = models.TextField(blank=True)
    payload = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=20, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # While a worker sends: past it, the attempt's outcome is unknown (the worker died).
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)

    objects = NotificationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # Nulls never collide in a unique index, so each kind of target has its own.
            models.UniqueConstraint(
                fields=["event", "batch", "key", "channel", "recipient"],
                condition=Q(recipient__isnull=False),
                name="notification_once_per_recipient",
            ),
            models.UniqueConstraint(
                fields=["event", "batch", "key", "webhook"],
                condition=Q(webhook__isnull=False),
                name="notification_once_per_webhook",
            ),
            models.CheckConstraint(
                condition=(Q(channel="webhook", webhook__isnull=False, recipient__isnull=True))
                | (~Q(channel="webhook") & Q(webhook__isnull=True, recipient__isnull=False)),
                name="notification_has_one_target",
            ),
        ]
        indexes = [
            # The in-app list: a user's notifications, newest first.
            models.Index(fields=["recipient", "channel", "-created_at"], name="notification_inbox"),
            # The minute scan looks only at deliveries still to make or in flight.
            models.Index(
                fields=["next_attempt_at"],
                name="notification_undelivered",
                condition=Q(status__in=["pending", "retrying", "sending"]),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event}/{self.key} via {self.channel} for {self.webhook or self.recipient}"

    def mark_read(self, now: datetime | None = None) -> None:
        if self.read_at is None:
            self.read_at = now or timezone.now()
            Notification.objects.filter(pk=self.pk, read_at__isnull=True).update(read_at=self.read_at)

    def with_earlier(self) -> NotificationQuerySet:
        """This notice and the earlier ones of its batch for the same recipient and channel: its group."""
        return Notification.objects.filter(
            recipient_id=self.recipient_id,
            webhook_id=self.webhook_id,
            channel=self.channel,
            batch_id=self.batch_id,
        ).filter(Q(created_at__lt=self.created_at) | Q(created_at=self.created_at, pk__lte=self.pk))

    def mark_group_read(self, now: datetime | None = None) -> int:
        """Mark this notice and the earlier ones of its batch read (the group it heads in the list)."""
        now = now or timezone.now()
        marked = self.with_earlier().mark_read(now)
        self.read_at = self.read_at or now
        return marked

    # --- delivery ------------------------------------------------------------
    #
    # Every step is a conditional UPDATE on (pk, status, attempts): a claim
    # succeeds for exactly one of two workers handed the same delivery, and a
    # late worker can never overwrite a newer attempt's outcome.

    def claim(self, now: datetime) -> bool:
        lease = timedelta(seconds=conf.NOTIFY_SEND_TIMEOUT_S * 3 + 60)
        claimed = (
            Notification.objects.due(now)
            .filter(pk=self.pk, attempts=self.attempts)
            .update(status=DeliveryStatus.SENDING, attempts=F("attempts") + 1, lease_expires_at=now + lease)
        )
        if claimed:
            self.status = DeliveryStatus.SENDING
            self.attempts += 1
        return bool(claimed)

    def record_success(self, now: datetime) -> None:
        self._settle(status=DeliveryStatus.SENT, sent_at=now, last_error="", next_attempt_at=None)

    def record_failure(self, error: str, now: datetime, permanent: bool = False) -> datetime | None:
        """Failed for good when permanent or after max attempts; otherwise returns when to try again."""
        if permanent or self.attempts >= conf.NOTIFY_MAX_ATTEMPTS:
            self._settle(status=DeliveryStatus.FAILED, last_error=error, next_attempt_at=None)
            return None
        retry_at = now + backoff(self.attempts)
        self._settle(status=DeliveryStatus.RETRYING, last_error=error, next_attempt_at=retry_at)
        return retry_at

    def _settle(self, **fields: Any) -> None:
        Notification.objects.filter(pk=self.pk, status=DeliveryStatus.SENDING, attempts=self.attempts).update(
            lease_expires_at=None, **fields
        )
        for name, value in fields.items():
            setattr(self, name, value)


def backoff(attempts: int) -> timedelta:
    """Exponential: base, 2x base, 4x base ... capped; up to a tenth more at random spreads retries."""
    base = conf.NOTIFY_RETRY_BASE_S * 2 ** max(attempts - 1, 0)
    delay = min(base, conf.NOTIFY_RETRY_MAX_S)
    return timedelta(seconds=delay * (1 + secrets.randbelow(1001) / 10000))


class DeliveryAttempt(models.Model):
    """One try at sending a notification, kept for the webhook's owner and the admin."""

    notification = models.ForeignKey(Notification, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField(default=timezone.now)
    duration_ms = models.PositiveIntegerField(default=0)
    ok = models.BooleanField(default=False)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["notification", "number"]
        constraints = [
            models.UniqueConstraint(fields=["notification", "number"], name="attempt_number_once"),
        ]

    def __str__(self) -> str:
        return f"attempt {self.number} of {self.notification_id}: {'ok' if self.ok else self.error}"

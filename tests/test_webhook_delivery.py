"""Webhook deliveries: signed with the shared secret, retried with backoff, every attempt logged."""

import hashlib
import hmac
import socket
from datetime import timedelta

import pytest
from django.utils import timezone
from django_q.models import Schedule
from django_q.scheduler import scheduler

from batches.models import BatchStatus
from notifications.delivery import deliver_notification, signature_matches
from notifications.events import Occurrence, notify
from notifications.models import BatchWebhook, Channel, DeliveryStatus, Notification
from notifications.tasks import deliver
from tests.conftest import make_batch, set_status
from tests.webhook_receiver import WebhookReceiver


@pytest.fixture
def batch(owner):
    return set_status(make_batch(owner, jobs=2, name="Essays"), BatchStatus.PROCESSING)


def webhook_notification(batch, url: str) -> Notification:
    webhook = BatchWebhook.objects.create(batch=batch, url=url, created_by=batch.owner)
    occurrence = Occurrence("progress_milestone", "50", 'Batch "Essays" is 50 % done', "1 of 2 jobs graded.")
    notify(batch, occurrence, batch.progress())
    return Notification.objects.select_related("webhook").get(webhook=webhook)


def fresh(notification: Notification) -> Notification:
    return Notification.objects.select_related("webhook", "recipient").get(pk=notification.pk)


def test_the_signature_verifies_with_the_shared_secret_over_the_raw_body(batch, webhook_receiver):
    notification = webhook_notification(batch, webhook_receiver.url)
    assert deliver(notification.pk) == "sent on attempt 1"
    [request] = webhook_receiver.received
    secret = notification.webhook.secret
    expected = "sha256=" + hmac.new(secret.encode(), request.body, hashlib.sha256).hexdigest()
    assert request.headers["X-Gradeproject-Signature"] == expected
    assert signature_matches(secret, request.body, request.headers["X-Gradeproject-Signature"])
    assert not signature_matches("another-secret", request.body, expected)
    assert not signature_matches(secret, request.body.replace(b"50", b"51"), expected)
    body = request.json()
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["X-Gradeproject-Event"] == "progress_milestone"
    assert request.headers["X-Gradeproject-Delivery"] == str(notification.pk)
    assert int(request.headers["X-Gradeproject-Timestamp"]) == body["timestamp"]
    assert abs(body["timestamp"] - timezone.now().timestamp()) < 60
    assert body["batch"]["id"] == batch.pk
    assert body["event"] == "progress_milestone"


def test_a_successful_delivery_is_logged_with_its_status_code(batch, webhook_receiver):
    notification = webhook_notification(batch, webhook_receiver.url)
    deliver(notification.pk)
    notification = fresh(notification)
    assert notification.status == DeliveryStatus.SENT
    assert notification.sent_at is not None
    [attempt] = notification.attempt_log.all()
    assert (attempt.number, attempt.ok, attempt.status_code, attempt.error) == (1, True, 200, "")


def test_a_receiver_answering_500_is_retried_with_growing_backoff_then_logged_failed(batch, settings):
    settings.NOTIFY_MAX_ATTEMPTS = 3
    settings.NOTIFY_RETRY_BASE_S = 30
    with WebhookReceiver(statuses=[500]) as failing:
        notification = webhook_notification(batch, failing.url)
        waits = []
        now = timezone.now()
        for attempt in (1, 2, 3):
            outcome = deliver_notification(fresh(notification), now=now)
            assert outcome.startswith(f"attempt {attempt} failed") or outcome.startswith("failed for good")
            current = fresh(notification)
            if current.status == DeliveryStatus.RETRYING:
                waits.append((current.next_attempt_at - now).total_seconds())
                retry = Schedule.objects.get(name=f"Notification {notification.pk}: attempt {attempt + 1}")
                assert (retry.func, retry.args, retry.schedule_type) == (
                    "notifications.tasks.deliver",
                    str(notification.pk),
                    Schedule.ONCE,
                )
                assert retry.next_run == current.next_attempt_at
                # Honest backoff: the delivery refuses to run before its time.
                assert deliver(notification.pk).startswith("not due")
                now = current.next_attempt_at
        assert len(failing.received) == 3
    assert 30 <= waits[0] <= 33.1
    assert 60 <= waits[1] <= 66.1
    notification = fresh(notification)
    assert notification.status == DeliveryStatus.FAILED
    assert notification.last_error == "The receiver answered HTTP 500."
    log = list(notification.attempt_log.values_list("number", "ok", "status_code", "error"))
    assert log == [(n, False, 500, "The receiver answered HTTP 500.") for n in (1, 2, 3)]
    assert not Schedule.objects.filter(name__startswith=f"Notification {notification.pk}: attempt 4").exists()


def test_the_retry_runs_through_django_q2s_scheduler_and_succeeds(batch, settings, tasks_inline):
    settings.NOTIFY_RETRY_BASE_S = 0
    with WebhookReceiver(statuses=[503, 200]) as flaky:
        notification = webhook_notification(batch, flaky.url)
        deliver(notification.pk)
        assert fresh(notification).status == DeliveryStatus.RETRYING
        scheduler()  # the cluster's scheduler: runs the one-off schedule (inline in sync mode)
        assert len(flaky.received) == 2
    notification = fresh(notification)
    assert notification.status == DeliveryStatus.SENT
    assert list(notification.attempt_log.values_list("status_code", flat=True)) == [503, 200]
    assert [r.json()["attempt"] for r in flaky.received] == [1, 2]
    assert not Schedule.objects.filter(func="notifications.tasks.deliver").exists()


def test_an_unreachable_receiver_is_logged_without_a_status_code(batch, settings):
    settings.NOTIFY_MAX_ATTEMPTS = 1
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    notification = webhook_notification(batch, f"http://127.0.0.1:{port}/hook")
    assert deliver(notification.pk).startswith("failed for good after 1 attempts")
    [attempt] = fresh(notification).attempt_log.all()
    assert attempt.status_code is None
    assert attempt.error.startswith(f"Could not reach 127.0.0.1:{port}")


def test_a_redirect_is_not_followed(batch, settings):
    settings.NOTIFY_MAX_ATTEMPTS = 1
    with WebhookReceiver(statuses=[302]) as redirecting:
        notification = webhook_notification(batch, redirecting.url)
        deliver(notification.pk)
        assert len(redirecting.received) == 1
    assert fresh(notification).last_error == "The receiver answered HTTP 302."


def test_deliveries_of_a_deleted_batch_are_dropped_quietly(batch, webhook_receiver):
    notification = webhook_notification(batch, webhook_receiver.url)
    set_status(batch, BatchStatus.COMPLETED)
    batch.delete()
    assert deliver(notification.pk).startswith("gone")
    assert webhook_receiver.received == []


def test_in_app_notifications_are_delivered_by_being_stored(batch):
    occurrence = Occurrence("progress_milestone", "25", "t", "b")
    [in_app] = notify(batch, occurrence, batch.progress())
    assert (in_app.channel, in_app.status) == (Channel.IN_APP, DeliveryStatus.SENT)
    assert deliver(in_app.pk).startswith("not due")
    assert timedelta(0) <= timezone.now() - in_app.sent_at < timedelta(minutes=1)


def test_a_webhook_to_an_internal_address_is_refused_at_once_outside_development(
    batch, settings, webhook_receiver
):
    settings.NOTIFY_WEBHOOK_ALLOW_PRIVATE = False
    notification = webhook_notification(batch, webhook_receiver.url.replace("127.0.0.1", "localhost"))
    assert deliver(notification.pk).startswith("failed for good after 1 attempts")
    assert webhook_receiver.received == []
    notification = fresh(notification)
    assert notification.status == DeliveryStatus.FAILED
    assert notification.last_error.startswith(
        "Refused to post to localhost: it resolves to the internal address"
    )
    assert not Schedule.objects.exists()

"""At most once per event, channel and recipient, however often the tasks run."""

import threading
from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection
from django.utils import timezone

from batches.models import BatchStatus
from notifications.events import Occurrence, notify
from notifications.models import BatchWebhook, Channel, DeliveryStatus, Notification
from notifications.tasks import deliver, scan_active_batches
from tests.conftest import make_batch, set_status

FINISHED = Occurrence("batch_finished", "completed@1", 'Batch "Essays" completed', "8 of 8 jobs graded.")


@pytest.fixture
def batch(owner, webhook_receiver):
    batch = set_status(make_batch(owner, jobs=2, name="Essays"), BatchStatus.PROCESSING)
    BatchWebhook.objects.create(batch=batch, url=webhook_receiver.url, created_by=owner)
    return batch


def test_a_delivery_task_that_runs_twice_sends_once(batch, webhook_receiver):
    notify(batch, FINISHED, batch.progress())
    for notification in Notification.objects.exclude(channel=Channel.IN_APP):
        assert deliver(notification.pk).startswith("sent")
        assert deliver(notification.pk).startswith("not due")
    assert len(mail.outbox) == 1
    assert len(webhook_receiver.received) == 1
    assert all(n.attempt_log.count() == 1 for n in Notification.objects.exclude(channel=Channel.IN_APP))


def test_notifying_the_same_occurrence_twice_creates_nothing_the_second_time(
    batch, tasks_inline, webhook_receiver, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        first = notify(batch, FINISHED, batch.progress())
        second = notify(batch, FINISHED, batch.progress())
    assert {n.channel for n in first} == {"in_app", "email", "webhook"}
    assert second == []
    assert Notification.objects.count() == 3
    assert len(mail.outbox) == 1
    assert len(webhook_receiver.received) == 1


def test_the_scan_requeues_a_delivery_whose_task_was_lost_and_it_still_sends_once(
    batch, tasks_inline, webhook_receiver
):
    notify(batch, FINISHED, batch.progress())  # on-commit enqueue never runs here: the task is "lost"
    assert webhook_receiver.received == []
    scan_active_batches(timezone.now())  # too soon: the normal path gets its chance first
    assert webhook_receiver.received == []
    scan_active_batches(timezone.now() + timedelta(minutes=2))
    scan_active_batches(timezone.now() + timedelta(minutes=3))
    assert len(webhook_receiver.received) == 1
    assert len(mail.outbox) == 1


def test_an_attempt_whose_worker_died_is_closed_as_failed_and_not_resent(batch, webhook_receiver):
    notify(batch, FINISHED, batch.progress())
    hook = Notification.objects.get(channel=Channel.WEBHOOK)
    assert hook.claim(timezone.now())  # a worker claimed it, then vanished
    scan_active_batches(timezone.now() + timedelta(hours=1))
    hook.refresh_from_db()
    assert hook.status == DeliveryStatus.FAILED
    assert "whether it arrived is unknown" in hook.last_error
    assert webhook_receiver.received == []
    assert hook.attempt_log.get().number == 1


@pytest.mark.postgres
def test_two_workers_delivering_the_same_notification_at_once_send_it_once(
    transactional_db, owner, webhook_receiver
):
    batch = set_status(make_batch(owner, jobs=1), BatchStatus.PROCESSING)
    BatchWebhook.objects.create(batch=batch, url=webhook_receiver.url, created_by=owner)
    start = threading.Barrier(4)
    errors = []

    def worker(action):
        try:
            start.wait(timeout=10)
            action()
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=worker, args=(lambda: notify(batch, FINISHED, batch.progress()),))
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert Notification.objects.filter(channel=Channel.WEBHOOK).count() == 1
    hook = Notification.objects.get(channel=Channel.WEBHOOK)
    start = threading.Barrier(4)
    threads = [threading.Thread(target=worker, args=(lambda: deliver(hook.pk),)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(webhook_receiver.received) == 1
    assert Notification.objects.get(pk=hook.pk).attempt_log.count() == 1

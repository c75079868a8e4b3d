"""Each event reaches the right people once, on each channel they chose."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone
from guardian.shortcuts import assign_perm

from batches.models import BatchStatus, JobBatch
from grading.models import GradingJob, JobStatus
from notifications.events import check_progress
from notifications.models import (
    BatchWebhook,
    Channel,
    DeliveryStatus,
    Event,
    Notification,
    NotificationPreference,
)
from notifications.tasks import scan_active_batches
from tests.conftest import make_batch, set_status


@pytest.fixture
def shared_batch(owner, colleague, stranger, webhook_receiver):
    batch = make_batch(owner, jobs=8, name="Essays")
    assign_perm("view_jobbatch", colleague, batch)
    BatchWebhook.objects.create(batch=batch, url=webhook_receiver.url, created_by=owner)
    return batch


def running_for(batch: JobBatch, minutes: int) -> JobBatch:
    """A processing batch started that long ago (milestones wait for batches that run a while)."""
    set_status(batch, BatchStatus.PROCESSING)
    JobBatch.objects.filter(pk=batch.pk).update(started_at=timezone.now() - timedelta(minutes=minutes))
    batch.refresh_from_db()
    return batch


def jobs_to(batch: JobBatch, **counts: int) -> None:
    """Put the first jobs of the batch in the given states, the rest queued."""
    jobs = list(GradingJob.objects.in_batch(batch).order_by("pk").values_list("pk", flat=True))
    GradingJob.objects.in_batch(batch).update(status=JobStatus.QUEUED)
    start = 0
    for status, count in counts.items():
        GradingJob.objects.filter(pk__in=jobs[start : start + count]).update(
            status=status,
            completed_at=timezone.now(),
            last_error="HTTP 400: bad request" if status == "failed" else "",
        )
        start += count


def delivered(batch: JobBatch, event: str) -> set[tuple[str, str]]:
    return {
        (n.channel, n.recipient.username if n.recipient else "webhook")
        for n in Notification.objects.filter(batch=batch, event=event).select_related("recipient")
    }


def finish(batch: JobBatch, capture) -> None:
    with capture(execute=True):
        assert batch.finalize() is True


@pytest.mark.parametrize(
    ("jobs", "final"),
    [
        ({"completed": 8}, BatchStatus.COMPLETED),
        ({"completed": 6, "failed": 2}, BatchStatus.COMPLETED_WITH_ERRORS),
        ({"failed": 8}, BatchStatus.FAILED),
    ],
)
def test_a_batch_ending_reaches_owner_and_colleague_in_app_by_email_and_the_webhook_once(
    shared_batch, tasks_inline, webhook_receiver, django_capture_on_commit_callbacks, jobs, final
):
    set_status(shared_batch, BatchStatus.PROCESSING)
    jobs_to(shared_batch, **jobs)
    finish(shared_batch, django_capture_on_commit_callbacks)
    assert shared_batch.status == final
    assert delivered(shared_batch, Event.BATCH_FINISHED) == {
        ("in_app", "olivia"),
        ("in_app", "colin"),
        ("email", "olivia"),
        ("email", "colin"),
        ("webhook", "webhook"),
    }
    finished_mail = [m for m in mail.outbox if m.extra_headers["X-Gradeproject-Event"] == "batch_finished"]
    assert sorted(m.to[0] for m in finished_mail) == ["colin@example.com", "olivia@example.com"]
    label = BatchStatus(final).label.lower()
    assert {m.subject for m in finished_mail} == {f'[gradeproject] Batch "Essays" {label}'}
    assert all(m.body.endswith(f"http://127.0.0.1:8000/batches/{shared_batch.pk}") for m in finished_mail)
    hooks = [r.json() for r in webhook_receiver.received if r.json()["event"] == "batch_finished"]
    assert len(hooks) == 1
    assert hooks[0]["batch"]["status"] == final
    assert Notification.objects.filter(channel__in=["email", "webhook"]).exclude(status="sent").count() == 0


def test_a_failed_batch_sends_one_notice_that_says_why(
    shared_batch, tasks_inline, webhook_receiver, django_capture_on_commit_callbacks
):
    set_status(shared_batch, BatchStatus.PROCESSING)
    jobs_to(shared_batch, failed=8)
    finish(shared_batch, django_capture_on_commit_callbacks)
    assert delivered(shared_batch, Event.ERROR_ALERT) == set()
    notice = Notification.objects.get(
        event=Event.BATCH_FINISHED, channel=Channel.IN_APP, recipient__username="olivia"
    )
    assert notice.title == 'Batch "Essays" failed'
    assert "No job succeeded." in notice.body
    assert "Last error: HTTP 400: bad request" in notice.body
    assert len(mail.outbox) == 2  # one notice to each of the two


def test_a_batch_that_ends_in_one_round_with_many_failures_raises_an_error_alert(
    shared_batch, tasks_inline, webhook_receiver, django_capture_on_commit_callbacks
):
    set_status(shared_batch, BatchStatus.PROCESSING)
    jobs_to(shared_batch, completed=5, failed=3)
    finish(shared_batch, django_capture_on_commit_callbacks)
    assert shared_batch.status == BatchStatus.COMPLETED_WITH_ERRORS
    alerts = Notification.objects.filter(event=Event.ERROR_ALERT, channel=Channel.IN_APP)
    assert {n.key for n in alerts} == {"failure_rate"}
    assert "3 of 8 finished jobs failed" in alerts.first().body


def test_a_batch_done_in_seconds_gets_no_milestones(shared_batch, tasks_inline):
    running_for(shared_batch, minutes=0)
    jobs_to(shared_batch, completed=7)
    scan_active_batches()
    assert not Notification.objects.filter(event=Event.PROGRESS_MILESTONE).exists()


def test_a_draft_whose_deadline_is_near_is_warned_and_at_risk(shared_batch, tasks_inline):
    JobBatch.objects.filter(pk=shared_batch.pk).update(deadline=timezone.now() + timedelta(minutes=10))
    shared_batch.refresh_from_db()

    scan_active_batches()

    assert shared_batch.deadline_standing() == "at_risk"
    assert set(Notification.objects.filter(event=Event.DEADLINE_WARNING).values_list("key", flat=True)) == {
        "at_risk"
    }


def test_a_failed_batch_has_no_deadline_standing(shared_batch):
    set_status(shared_batch, BatchStatus.FAILED)
    JobBatch.objects.filter(pk=shared_batch.pk).update(
        deadline=timezone.now() + timedelta(days=1), completed_at=timezone.now()
    )
    shared_batch.refresh_from_db()

    assert shared_batch.deadline_standing() is None


def test_cancelling_a_batch_announces_its_end(
    shared_batch, tasks_inline, webhook_receiver, django_capture_on_commit_callbacks
):
    shared_batch.start_batch()
    with django_capture_on_commit_callbacks(execute=True):
        shared_batch.cancel_batch()
    notifications = Notification.objects.filter(batch=shared_batch, event=Event.BATCH_FINISHED)
    assert {n.key.split("@")[0] for n in notifications} == {"cancelled"}
    assert notifications.count() == 5
    assert [r.json()["batch"]["status"] for r in webhook_receiver.received] == ["cancelled"]


def test_noticing_the_same_end_again_notifies_nobody_twice(
    shared_batch, tasks_inline, webhook_receiver, django_capture_on_commit_callbacks
):
    set_status(shared_batch, BatchStatus.PROCESSING)
    jobs_to(shared_batch, completed=8)
    finish(shared_batch, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        assert shared_batch.finalize() is False
        scan_active_batches()  # re-announces recent ends it may have missed
        scan_active_batches()
    assert Notification.objects.filter(batch=shared_batch).count() == 5
    assert len(mail.outbox) == 2
    assert len(webhook_receiver.received) == 1


def test_strangers_and_inactive_users_hear_nothing(
    shared_batch, stranger, colleague, tasks_inline, django_capture_on_commit_callbacks
):
    colleague.is_active = False
    colleague.save()
    set_status(shared_batch, BatchStatus.PROCESSING)
    jobs_to(shared_batch, completed=8)
    finish(shared_batch, django_capture_on_commit_callbacks)
    assert not Notification.objects.filter(recipient__in=[stranger, colleague]).exists()
    assert {m.to[0] for m in mail.outbox} == {"olivia@example.com"}


def test_a_group_the_batch_is_shared_with_is_notified(
    owner, stranger, tasks_inline, django_capture_on_commit_callbacks
):
    from django.contrib.auth.models import Group

    markers = Group.objects.create(name="markers")
    stranger.groups.add(markers)
    batch = make_batch(owner, jobs=1)
    assign_perm("view_jobbatch", markers, batch)
    set_status(batch, BatchStatus.PROCESSING, job_status=JobStatus.COMPLETED)
    finish(batch, django_capture_on_commit_callbacks)
    assert ("in_app", "stella") in delivered(batch, Event.BATCH_FINISHED)


def test_milestones_fire_at_25_50_and_75_percent_once_each_and_not_by_email(
    shared_batch, tasks_inline, webhook_receiver, django_capture_on_commit_callbacks
):
    running_for(shared_batch, minutes=10)
    seen = []
    for done in (1, 2, 3, 4, 5, 6, 6, 7):
        jobs_to(shared_batch, completed=done)
        with django_capture_on_commit_callbacks(execute=True):
            check_progress(shared_batch)
        keys = Notification.objects.filter(event=Event.PROGRESS_MILESTONE).values_list("key", flat=True)
        seen.append(sorted(set(keys)))
    assert seen[0] == []  # 12.5 %
    assert seen[1] == ["25"]
    assert seen[3] == ["25", "50"]
    assert seen[-1] == ["25", "50", "75"]
    assert delivered(shared_batch, Event.PROGRESS_MILESTONE) == {
        ("in_app", "olivia"),
        ("in_app", "colin"),
        ("webhook", "webhook"),
    }
    assert Notification.objects.filter(event=Event.PROGRESS_MILESTONE).count() == 9
    assert mail.outbox == []
    assert [r.json()["data"]["milestone"] for r in webhook_receiver.received] == [25, 50, 75]


def test_a_jump_past_several_milestones_announces_only_the_highest(shared_batch, tasks_inline):
    running_for(shared_batch, minutes=10)
    jobs_to(shared_batch, completed=7)
    scan_active_batches()
    scan_active_batches()
    assert set(Notification.objects.values_list("key", flat=True)) == {"75"}


def test_the_minute_scan_raises_an_error_alert_when_the_failure_rate_passes_the_threshold(
    owner, settings, tasks_inline, django_capture_on_commit_callbacks
):
    settings.NOTIFY_ERROR_RATE = 0.2
    settings.NOTIFY_ERROR_MIN_JOBS = 5
    batch = make_batch(owner, jobs=20, name="Reports")
    set_status(batch, BatchStatus.PROCESSING)
    jobs_to(batch, completed=3, failed=1)  # 25 % of 4, too few to judge
    scan_active_batches()
    assert not Notification.objects.filter(event=Event.ERROR_ALERT).exists()
    jobs_to(batch, completed=5, failed=1)  # 17 %
    scan_active_batches()
    assert not Notification.objects.filter(event=Event.ERROR_ALERT).exists()
    jobs_to(batch, completed=4, failed=2)  # 33 %
    with django_capture_on_commit_callbacks(execute=True):
        scan_active_batches()
        scan_active_batches()
    alerts = Notification.objects.filter(event=Event.ERROR_ALERT)
    assert {(n.channel, n.key) for n in alerts} == {("in_app", "failure_rate"), ("email", "failure_rate")}
    assert alerts.first().title == 'Batch "Reports": 33% of finished jobs failed'
    assert len(mail.outbox) == 1


def test_a_batch_projected_to_finish_after_its_deadline_warns_once(owner, tasks_inline):
    now = timezone.now()
    batch = make_batch(owner, jobs=10, name="Papers", deadline=now + timedelta(hours=1))
    set_status(batch, BatchStatus.PROCESSING)
    JobBatch.objects.filter(pk=batch.pk).update(started_at=now - timedelta(hours=1))
    jobs_to(batch, completed=1)  # one job an hour: nine more hours of work
    scan_active_batches(now)
    scan_active_batches(now)
    warnings = Notification.objects.filter(event=Event.DEADLINE_WARNING, channel=Channel.IN_APP)
    assert [(n.key, n.recipient.username) for n in warnings] == [("at_risk", "olivia")]
    assert warnings[0].title == 'Batch "Papers" may miss its deadline'
    assert "with 9 jobs left" in warnings[0].body


def test_a_near_deadline_with_work_left_warns_and_a_passed_one_warns_again(owner, tasks_inline):
    now = timezone.now()
    batch = make_batch(owner, jobs=4, name="Papers", deadline=now + timedelta(minutes=30))
    set_status(batch, BatchStatus.PAUSED)
    scan_active_batches(now)
    scan_active_batches(now + timedelta(minutes=40))
    scan_active_batches(now + timedelta(minutes=50))
    keys = list(
        Notification.objects.filter(event=Event.DEADLINE_WARNING, channel=Channel.IN_APP)
        .order_by("pk")
        .values_list("key", flat=True)
    )
    assert keys == ["near", "late"]


def test_a_deadline_far_away_or_met_raises_no_warning(owner, tasks_inline):
    batch = make_batch(owner, jobs=4, deadline=timezone.now() + timedelta(days=3))
    set_status(batch, BatchStatus.PROCESSING)
    scan_active_batches()
    done = make_batch(owner, jobs=2, deadline=timezone.now() + timedelta(minutes=5))
    set_status(done, BatchStatus.PROCESSING, job_status=JobStatus.COMPLETED)
    scan_active_batches()
    assert not Notification.objects.filter(event=Event.DEADLINE_WARNING).exists()


def test_users_choose_their_channels_and_events(
    shared_batch, colleague, owner, tasks_inline, django_capture_on_commit_callbacks
):
    NotificationPreference.objects.set_grid(colleague, {"email": {"batch_finished": False}})
    NotificationPreference.objects.set_grid(
        owner, {"in_app": {"batch_finished": False}, "email": {"progress_milestone": True}}
    )
    running_for(shared_batch, minutes=10)
    jobs_to(shared_batch, completed=2)
    with django_capture_on_commit_callbacks(execute=True):
        check_progress(shared_batch)
    jobs_to(shared_batch, completed=8)
    finish(shared_batch, django_capture_on_commit_callbacks)
    assert delivered(shared_batch, Event.BATCH_FINISHED) == {
        ("in_app", "colin"),
        ("email", "olivia"),
        ("webhook", "webhook"),
    }
    assert ("email", "olivia") in delivered(shared_batch, Event.PROGRESS_MILESTONE)


def test_a_webhook_receives_only_the_events_it_asked_for(
    shared_batch, tasks_inline, webhook_receiver, django_capture_on_commit_callbacks
):
    BatchWebhook.objects.filter(batch=shared_batch).update(events=["batch_finished"])
    set_status(shared_batch, BatchStatus.PROCESSING)
    jobs_to(shared_batch, completed=4)
    with django_capture_on_commit_callbacks(execute=True):
        check_progress(shared_batch)
    jobs_to(shared_batch, completed=8)
    finish(shared_batch, django_capture_on_commit_callbacks)
    assert [r.json()["event"] for r in webhook_receiver.received] == ["batch_finished"]


def test_a_retried_batch_that_finishes_again_is_announced_again(
    shared_batch, tasks_inline, django_capture_on_commit_callbacks
):
    set_status(shared_batch, BatchStatus.PROCESSING)
    jobs_to(shared_batch, completed=6, failed=2)
    finish(shared_batch, django_capture_on_commit_callbacks)
    shared_batch.retry_failed_jobs()
    set_status(shared_batch, BatchStatus.PROCESSING)
    jobs_to(shared_batch, completed=8)
    finish(shared_batch, django_capture_on_commit_callbacks)
    keys = set(
        Notification.objects.filter(event=Event.BATCH_FINISHED, channel=Channel.IN_APP).values_list(
            "key", flat=True
        )
    )
    assert {key.split("@")[0] for key in keys} == {"completed_with_errors", "completed"}


def test_a_notification_error_never_breaks_finalising_the_batch(
    shared_batch, monkeypatch, django_capture_on_commit_callbacks
):
    def broken(*args, **kwargs):
        raise RuntimeError("mail templates missing")

    monkeypatch.setattr("notifications.events.recipients", broken)
    set_status(shared_batch, BatchStatus.PROCESSING)
    jobs_to(shared_batch, completed=8)
    finish(shared_batch, django_capture_on_commit_callbacks)
    assert JobBatch.objects.get(pk=shared_batch.pk).status == BatchStatus.COMPLETED
    assert DeliveryStatus.SENT  # nothing was created, nothing raised
    assert not Notification.objects.exists()

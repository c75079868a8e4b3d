"""The notifications page: the in-app list, marking read and choosing channels."""

import pytest
from guardian.shortcuts import assign_perm

from batches.models import BatchStatus
from notifications.events import Occurrence, notify
from notifications.models import Notification, NotificationPreference
from tests.conftest import make_batch, set_status


@pytest.fixture
def batch(owner, colleague):
    batch = set_status(make_batch(owner, jobs=2, name="Essays"), BatchStatus.PROCESSING)
    assign_perm("view_jobbatch", colleague, batch)
    return batch


def milestone(batch, mark: int) -> None:
    notify(
        batch,
        Occurrence("progress_milestone", str(mark), f'Batch "Essays" is {mark} % done', "body"),
        batch.progress(),
    )


def test_the_page_lists_the_users_own_notifications_and_the_unread_count(client, batch, owner, stranger):
    milestone(batch, 25)
    milestone(batch, 50)
    client.force_login(owner)
    page = client.get("/notifications").content.decode()
    assert page.index("is 50 % done") < page.index("is 25 % done")
    assert 'aria-label="2 unread"' in page
    client.force_login(stranger)
    page = client.get("/notifications").content.decode()
    assert "is 25 % done" not in page
    assert "No notifications yet" in page
    assert ' unread"' not in page


def test_signing_in_is_required(client, db):
    response = client.get("/notifications")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_marking_one_read_and_then_all(client, batch, owner):
    milestone(batch, 25)
    milestone(batch, 50)
    client.force_login(owner)
    first = Notification.objects.in_app_for(owner).order_by("pk").first()
    response = client.post(f"/notifications/{first.pk}/read", {"next": "/notifications?unread=1"})
    assert response.status_code == 302
    assert response["Location"] == "/notifications?unread=1"
    assert Notification.objects.in_app_for(owner).unread().count() == 1
    unread_page = client.get("/notifications?unread=1").content.decode()
    assert "is 50 % done" in unread_page and "is 25 % done" not in unread_page
    client.post("/notifications/read-all", {"next": "https://elsewhere.example/"})
    assert Notification.objects.in_app_for(owner).unread().count() == 0


def test_nobody_marks_another_users_notification(client, batch, owner, colleague):
    milestone(batch, 25)
    theirs = Notification.objects.get(recipient=colleague, channel="in_app")
    client.force_login(owner)
    assert client.post(f"/notifications/{theirs.pk}/read").status_code == 404
    theirs.refresh_from_db()
    assert theirs.read_at is None


def test_the_channel_choices_are_saved_from_the_form(client, owner):
    client.force_login(owner)
    page = client.get("/notifications").content.decode()
    assert 'value="email:batch_finished" checked' in page
    assert 'value="email:progress_milestone">' in page
    response = client.post(
        "/notifications/preferences", {"on": ["in_app:batch_finished", "email:error_alert"]}
    )
    assert response.status_code == 302
    grid = NotificationPreference.objects.grid_for([owner])[owner.pk]
    assert grid["in_app"] == {
        "batch_finished": True,
        "deadline_warning": False,
        "error_alert": False,
        "progress_milestone": False,
    }
    assert grid["email"]["error_alert"] is True
    assert grid["email"]["batch_finished"] is False

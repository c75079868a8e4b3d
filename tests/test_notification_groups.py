"""In-app notifications come grouped per batch: its newest notice, with the earlier ones folded under it."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from guardian.shortcuts import assign_perm
from rest_framework.test import APIClient

from batches.models import BatchStatus
from notifications.models import Channel, Event, Notification
from tests.conftest import make_batch, set_status

pytestmark = pytest.mark.django_db


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def notice(
    batch, user, title: str, minutes_ago: int, event=Event.PROGRESS_MILESTONE, read=False
) -> Notification:
    created = timezone.now() - timedelta(minutes=minutes_ago)
    return Notification.objects.create(
        event=event,
        key=title,
        batch=batch,
        channel=Channel.IN_APP,
        recipient=user,
        title=title,
        body=f"About {batch.name}.",
        created_at=created,
        read_at=created if read else None,
    )


@pytest.fixture
def essays(owner):
    batch = set_status(make_batch(owner, jobs=1, name="Essays"), BatchStatus.COMPLETED)
    notice(batch, owner, "Essays is 25 % done", 30, read=True)
    notice(batch, owner, "Essays is 50 % done", 20)
    notice(batch, owner, "Essays is 75 % done", 10)
    notice(batch, owner, "Essays finished", 5, event=Event.BATCH_FINISHED)
    return batch


@pytest.fixture
def reports(owner):
    batch = set_status(make_batch(owner, jobs=1, name="Reports"), BatchStatus.PROCESSING)
    notice(batch, owner, "Reports nears its deadline", 1, event=Event.DEADLINE_WARNING)
    return batch


def test_the_page_shows_one_entry_per_batch_with_its_latest_notice(client, owner, essays, reports):
    client.force_login(owner)
    page = client.get("/notifications").content.decode()

    listed = page.split("<caption")[1].split("</table>")[0]
    assert listed.count("<tr") == 1 + 2  # the head row, and one per batch
    assert page.index("Reports nears its deadline") < page.index("Essays finished")
    assert "3 earlier notices for this batch" in page
    assert "3 new" in page  # the batch's unread notices, the finish and two milestones
    # The earlier ones are there to unfold, newest first.
    assert (
        page.index("Essays is 75 % done")
        < page.index("Essays is 50 % done")
        < page.index("Essays is 25 % done")
    )
    assert page.index("Essays finished") < page.index("Essays is 75 % done")
    assert f"/notifications?batch={essays.pk}" in page


def test_marking_a_group_read_marks_every_notice_of_its_batch_and_no_other(client, owner, essays, reports):
    client.force_login(owner)
    head = Notification.objects.get(title="Essays finished")

    response = client.post(f"/notifications/{head.pk}/read", {"group": "1", "next": "/notifications"})

    assert response.status_code == 302
    assert not Notification.objects.in_app_for(owner).of_batch(essays.pk).unread().exists()
    assert Notification.objects.in_app_for(owner).of_batch(reports.pk).unread().count() == 1
    page = client.get("/notifications?unread=1").content.decode()
    assert "Essays" not in page.split("<caption")[1].split("</table>")[0]


def test_one_batchs_notices_are_listed_in_full(client, owner, essays, reports):
    client.force_login(owner)
    page = client.get(f"/notifications?batch={essays.pk}").content.decode()

    for title in ("Essays finished", "Essays is 75 % done", "Essays is 50 % done", "Essays is 25 % done"):
        assert title in page
    assert "Reports nears its deadline" not in page
    assert "earlier notice" not in page


def test_a_batch_that_is_not_a_number_is_refused_with_a_sentence(client, owner, essays):
    client.force_login(owner)
    response = client.get("/notifications?batch=essays")
    assert response.status_code == 400
    assert "A batch is named by its id, a whole number." in response.content.decode()


def test_a_colleague_sees_only_their_own_group_of_a_shared_batch(client, owner, colleague, essays):
    assign_perm("view_jobbatch", colleague, essays)
    notice(essays, colleague, "Essays finished (for Colin)", 5, event=Event.BATCH_FINISHED)
    client.force_login(colleague)
    page = client.get(f"/notifications?batch={essays.pk}").content.decode()
    assert "Essays finished (for Colin)" in page
    assert "Essays is 50 % done" not in page
    assert "earlier notice" not in client.get("/notifications").content.decode()


def test_the_api_groups_per_batch_when_asked(owner, essays, reports):
    response = api(owner).get("/api/notifications?group=batch")

    assert response.status_code == 200
    entries = response.json()["results"]
    assert [(item["title"], item["earlier"], item["unread_in_group"]) for item in entries] == [
        ("Reports nears its deadline", 0, 1),
        ("Essays finished", 3, 3),
    ]
    # Without the parameter every notice stands alone, as before.
    assert api(owner).get("/api/notifications").json()["count"] == 5


def test_the_api_lists_one_batchs_notices_and_groups_the_unread_ones(owner, essays, reports):
    titles = [
        item["title"] for item in api(owner).get(f"/api/notifications?batch={essays.pk}").json()["results"]
    ]
    assert titles == ["Essays finished", "Essays is 75 % done", "Essays is 50 % done", "Essays is 25 % done"]

    unread = api(owner).get("/api/notifications?group=batch&unread=true").json()["results"]
    assert [(item["title"], item["earlier"]) for item in unread] == [
        ("Reports nears its deadline", 0),
        ("Essays finished", 2),
    ]


def test_the_api_marks_a_group_read(owner, essays, reports):
    head = Notification.objects.get(title="Essays finished")

    response = api(owner).post(f"/api/notifications/{head.pk}/read?group=batch")

    assert response.status_code == 200
    assert not Notification.objects.in_app_for(owner).of_batch(essays.pk).unread().exists()
    assert Notification.objects.in_app_for(owner).unread().count() == 1


def test_the_api_marks_one_batchs_notices_read(owner, essays, reports):
    response = api(owner).post(f"/api/notifications/read-all?batch={reports.pk}")

    assert response.json() == {"marked_read": 1}
    assert Notification.objects.in_app_for(owner).unread().count() == 3


@pytest.mark.parametrize(
    ("query", "field", "sentence"),
    [
        ("group=model", "group", "Group by `batch`, or leave `group` out for every notice."),
        ("batch=essays", "batch", "A batch is named by its id, a whole number."),
        ("batch=99999999999999999999", "batch", "A batch is named by its id, a whole number."),
    ],
)
def test_the_api_refuses_a_bad_grouping_or_batch_with_a_sentence(owner, essays, query, field, sentence):
    response = api(owner).get(f"/api/notifications?{query}")
    assert response.status_code == 400
    assert sentence in str(response.json())
    assert field in str(response.json())


def test_the_grouped_page_costs_the_same_queries_for_two_batches_or_six(client, owner, essays, reports):
    client.force_login(owner)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get("/notifications").status_code == 200
        return len(captured)

    two = queries()
    for index in range(4):
        batch = make_batch(owner, jobs=1, name=f"Batch {index}")
        notice(batch, owner, f"Batch {index} is 50 % done", 8)
        notice(batch, owner, f"Batch {index} finished", 2, event=Event.BATCH_FINISHED)
    assert queries() == two

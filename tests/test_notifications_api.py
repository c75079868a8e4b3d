"""The in-app list, preferences and per-batch webhooks over the API."""

import pytest
from guardian.shortcuts import assign_perm
from rest_framework.test import APIClient

from batches.models import BatchStatus
from notifications.events import Occurrence, notify
from notifications.models import BatchWebhook, Notification, NotificationPreference
from notifications.tasks import deliver
from tests.conftest import make_batch, set_status


def api(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


@pytest.fixture
def batch(owner, colleague):
    batch = set_status(make_batch(owner, jobs=2, name="Essays"), BatchStatus.PROCESSING)
    assign_perm("view_jobbatch", colleague, batch)
    return batch


def milestone(batch, mark: int) -> None:
    occurrence = Occurrence("progress_milestone", str(mark), f'Batch "Essays" is {mark} % done', "body")
    notify(batch, occurrence, batch.progress())


def test_a_user_lists_only_their_own_in_app_notifications_newest_first(batch, owner, colleague, stranger):
    milestone(batch, 25)
    milestone(batch, 50)
    response = api(owner).get("/api/notifications")
    assert response.status_code == 200
    titles = [item["title"] for item in response.json()["results"]]
    assert titles == ['Batch "Essays" is 50 % done', 'Batch "Essays" is 25 % done']
    assert response["X-Unread-Count"] == "2"
    assert api(stranger).get("/api/notifications").json()["count"] == 0
    first = response.json()["results"][0]
    assert first["batch"] == batch.pk
    assert first["read"] is False
    assert first["payload"]["batch"]["name"] == "Essays"


def test_anonymous_requests_are_refused(db):
    assert api().get("/api/notifications").status_code in (401, 403)


def test_marking_one_read_and_then_all(batch, owner):
    milestone(batch, 25)
    milestone(batch, 50)
    ids = [item["id"] for item in api(owner).get("/api/notifications").json()["results"]]
    response = api(owner).post(f"/api/notifications/{ids[0]}/read")
    assert response.status_code == 200
    assert response.json()["read"] is True
    unread = api(owner).get("/api/notifications?unread=true").json()
    assert [item["id"] for item in unread["results"]] == [ids[1]]
    assert api(owner).post("/api/notifications/read-all").json() == {"marked_read": 1}
    assert api(owner).get("/api/notifications?unread=1").json()["count"] == 0


def test_another_users_notification_cannot_be_read_or_marked(batch, owner, colleague):
    milestone(batch, 25)
    theirs = Notification.objects.get(recipient=colleague, channel="in_app")
    assert api(owner).get(f"/api/notifications/{theirs.pk}").status_code == 404
    assert api(owner).post(f"/api/notifications/{theirs.pk}/read").status_code == 404
    theirs.refresh_from_db()
    assert theirs.read_at is None


def test_preferences_show_the_defaults_and_accept_changes(owner):
    grid = api(owner).get("/api/notifications/preferences").json()
    assert grid["in_app"]["progress_milestone"] is True
    assert grid["email"]["progress_milestone"] is False
    assert grid["email"]["batch_finished"] is True
    response = api(owner).patch(
        "/api/notifications/preferences", {"email": {"batch_finished": False}}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["email"]["batch_finished"] is False
    assert response.json()["email"]["error_alert"] is True
    assert NotificationPreference.objects.filter(user=owner).count() == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"sms": {"batch_finished": True}}, "sms"),
        ({"email": {"batch_exploded": True}}, "email.batch_exploded"),
        ({"email": {"batch_finished": "yes"}}, "email.batch_finished"),
        ({"webhook": {"batch_finished": True}}, "webhook"),
    ],
)
def test_bad_preferences_are_refused_field_by_field(owner, body, field):
    response = api(owner).put("/api/notifications/preferences", body, format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert not NotificationPreference.objects.exists()


def test_the_owner_adds_a_webhook_and_gets_its_secret(batch, owner):
    response = api(owner).post(
        f"/api/batches/{batch.pk}/webhooks",
        {"url": "https://hooks.example.com/grades", "events": ["batch_finished", "error_alert"]},
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert len(body["secret"]) == 64
    assert body["events"] == ["batch_finished", "error_alert"]
    assert BatchWebhook.objects.get(pk=body["id"]).secret == body["secret"]
    listed = api(owner).get(f"/api/batches/{batch.pk}/webhooks").json()
    assert [hook["url"] for hook in listed["results"]] == ["https://hooks.example.com/grades"]


def test_a_colleague_who_may_view_the_batch_cannot_manage_its_webhooks(batch, colleague):
    response = api(colleague).post(
        f"/api/batches/{batch.pk}/webhooks", {"url": "https://example.com/h"}, format="json"
    )
    assert response.status_code == 403
    assert response.json()["detail"] == "Only the batch's owner can manage its webhooks."
    assert not BatchWebhook.objects.exists()


def test_a_stranger_gets_404_for_the_webhooks_of_a_batch_they_cannot_see(batch, owner, stranger):
    hook = BatchWebhook.objects.create(batch=batch, url="https://example.com/h", created_by=owner)
    assert api(stranger).get(f"/api/batches/{batch.pk}/webhooks").status_code == 404
    assert api(stranger).delete(f"/api/batches/{batch.pk}/webhooks/{hook.pk}").status_code == 404
    assert BatchWebhook.objects.filter(pk=hook.pk).exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://example.com/h"}, "url"),
        ({"url": "not a url"}, "url"),
        ({"url": "https://example.com/h", "events": ["everything"]}, "events"),
    ],
)
def test_bad_webhooks_are_refused(batch, owner, body, field):
    response = api(owner).post(f"/api/batches/{batch.pk}/webhooks", body, format="json")
    assert response.status_code == 400
    assert field in response.json()


def test_the_same_url_twice_on_one_batch_is_refused(batch, owner):
    BatchWebhook.objects.create(batch=batch, url="https://example.com/h", created_by=owner)
    response = api(owner).post(
        f"/api/batches/{batch.pk}/webhooks", {"url": "https://example.com/h"}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["url"] == ["This batch already sends to that URL."]


def test_the_owner_reads_each_delivery_with_its_attempts(batch, owner, webhook_receiver):
    hook = BatchWebhook.objects.create(batch=batch, url=webhook_receiver.url, created_by=owner)
    milestone(batch, 25)
    deliver(Notification.objects.get(webhook=hook).pk)
    response = api(owner).get(f"/api/batches/{batch.pk}/webhooks/{hook.pk}/deliveries")
    assert response.status_code == 200
    [delivery] = response.json()["results"]
    assert delivery["status"] == "sent"
    assert delivery["attempts"][0]["status_code"] == 200


def test_rotating_the_secret_signs_later_deliveries_with_the_new_one(batch, owner):
    hook = BatchWebhook.objects.create(batch=batch, url="https://example.com/h", created_by=owner)
    old = hook.secret
    response = api(owner).post(f"/api/batches/{batch.pk}/webhooks/{hook.pk}/rotate-secret")
    assert response.status_code == 200
    hook.refresh_from_db()
    assert hook.secret == response.json()["secret"] != old


def test_the_schema_describes_the_notification_and_webhook_endpoints(owner):
    paths = api(owner).get("/api/schema", {"format": "json"}).json()["paths"]
    for path in (
        "/api/notifications",
        "/api/notifications/{id}/read",
        "/api/notifications/read-all",
        "/api/notifications/preferences",
        "/api/batches/{batch_id}/webhooks",
        "/api/batches/{batch_id}/webhooks/{id}/deliveries",
    ):
        assert path in paths, path


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9000/h",
        "http://localhost/h",
        "http://hooks.localhost./h",  # a fully qualified name, trailing dot and all
        "http://10.0.0.5/h",
        "http://[::1]/h",
        "http://169.254.169.254/",
        # 10.0.0.1 and 127.0.0.1 in other clothes
        "http://[64:ff9b::a00:1]/h",  # NAT64
        "http://[64:ff9b:1::a00:1]/h",  # local-use NAT64
        "http://[2002:a00:1::]/h",  # 6to4
        "http://[2001:0:4136:e378:8000:63bf:f5ff:fffe]/h",  # Teredo, client 10.0.0.1
        "http://[::ffff:10.0.0.1]/h",  # IPv4-mapped
        "http://[::10.0.0.1]/h",  # IPv4-compatible
    ],
)
def test_webhooks_to_internal_addresses_are_refused_outside_development(batch, owner, settings, url):
    settings.NOTIFY_WEBHOOK_ALLOW_PRIVATE = False
    response = api(owner).post(f"/api/batches/{batch.pk}/webhooks", {"url": url}, format="json")
    assert response.status_code == 400
    assert response.json()["url"] == ["Webhooks cannot point at loopback or private addresses."]


@pytest.mark.parametrize(
    "url", ["https://hooks.example.com/h", "https://[64:ff9b::5db8:d822]/h", "https://[2002:5db8:d822::]/h"]
)
def test_webhooks_to_global_addresses_and_names_are_accepted(batch, owner, settings, url):
    settings.NOTIFY_WEBHOOK_ALLOW_PRIVATE = False
    response = api(owner).post(f"/api/batches/{batch.pk}/webhooks", {"url": url}, format="json")
    assert response.status_code == 201, response.json()


@pytest.mark.parametrize("url", ["https://2130706433/h", "http://0x7f.1/h", "http://127.1:8080/h"])
def test_numeric_shorthands_for_loopback_are_refused_too(batch, owner, settings, url):
    # Django's URL validation refuses them already; were it to let one through,
    # notifications.addresses.literal_address reads them as the resolver would.
    from notifications.addresses import literal_address

    settings.NOTIFY_WEBHOOK_ALLOW_PRIVATE = False
    response = api(owner).post(f"/api/batches/{batch.pk}/webhooks", {"url": url}, format="json")
    assert response.status_code == 400
    assert "url" in response.json()
    host = url.split("//")[1].split("/")[0].split(":")[0]
    assert str(literal_address(host)) == "127.0.0.1"

"""GET /api/batches/{id}/permissions, POST …/share and …/unshare: who may share, and what it changes."""

import pytest
from django.contrib.auth.models import Group

from core.permissions import Level, level_of, share
from tests.api_support import client_for


@pytest.fixture
def markers(db, colleague) -> Group:
    group = Group.objects.create(name="markers")
    colleague.groups.add(group)
    return group


def url(batch, what: str = "") -> str:
    return f"/api/batches/{batch.pk}/{what}" if what else f"/api/batches/{batch.pk}"


def test_the_owner_lists_who_the_batch_is_shared_with(owner, colleague, markers, batch):
    share(batch, colleague, Level.CHANGE)
    share(batch, markers, Level.VIEW)

    response = client_for(owner).get(url(batch, "permissions"))

    assert response.status_code == 200
    assert response.json() == {
        "owner": "olivia",
        "users": [{"user": "colin", "permission": "change", "permissions": ["view", "change"]}],
        "groups": [{"group": "markers", "permission": "view", "permissions": ["view"]}],
    }


def test_sharing_takes_effect_on_the_next_request(owner, colleague, batch):
    assert client_for(colleague).get(url(batch)).status_code == 404

    response = client_for(owner).post(
        url(batch, "share"), {"user": "colin", "permission": "view"}, format="json"
    )

    assert response.status_code == 200
    assert response.json()["users"] == [{"user": "colin", "permission": "view", "permissions": ["view"]}]
    assert client_for(colleague).get(url(batch)).status_code == 200
    assert [row["id"] for row in client_for(colleague).get("/api/batches").json()["results"]] == [batch.pk]


def test_unsharing_takes_effect_on_the_next_request(owner, colleague, batch):
    share(batch, colleague, Level.CHANGE)
    viewer = client_for(colleague)
    assert viewer.get(url(batch)).status_code == 200

    client_for(owner).post(url(batch, "unshare"), {"user": "colin", "permission": "view"}, format="json")

    assert viewer.get(url(batch)).status_code == 404
    assert viewer.get("/api/batches").json()["results"] == []
    assert viewer.get("/api/jobs").json()["results"] == []


def test_unsharing_change_leaves_view_so_changes_answer_403(owner, colleague, batch):
    share(batch, colleague, Level.CHANGE)

    client_for(owner).post(url(batch, "unshare"), {"user": "colin", "permission": "change"}, format="json")

    assert client_for(colleague).get(url(batch)).status_code == 200
    assert client_for(colleague).patch(url(batch), {"name": "Mine now"}, format="json").status_code == 403


def test_a_member_of_a_group_shared_at_manage_may_share_further(colleague, stranger, markers, batch):
    share(batch, markers, Level.MANAGE)

    response = client_for(colleague).post(
        url(batch, "share"), {"user": "stella", "permission": "change"}, format="json"
    )

    assert response.status_code == 200
    assert level_of(stranger, batch) == Level.CHANGE


@pytest.mark.parametrize("level", [Level.VIEW, Level.CHANGE])
def test_a_holder_of_view_or_change_cannot_reshare(colleague, stranger, batch, level):
    share(batch, colleague, level)
    client = client_for(colleague)

    shared = client.post(url(batch, "share"), {"user": "stella", "permission": "view"}, format="json")
    listed = client.get(url(batch, "permissions"))

    assert shared.status_code == 403 and listed.status_code == 403
    assert "manage" in shared.json()["detail"]
    assert level_of(stranger, batch) is None


def test_a_holder_of_view_cannot_raise_their_own_level(colleague, batch):
    share(batch, colleague, Level.VIEW)

    response = client_for(colleague).post(
        url(batch, "share"), {"user": "colin", "permission": "manage"}, format="json"
    )

    assert response.status_code == 403
    assert level_of(colleague, batch) == Level.VIEW


@pytest.mark.parametrize("what", ["permissions", "share", "unshare"])
def test_a_stranger_gets_404_from_every_sharing_endpoint(stranger, batch, what):
    client = client_for(stranger)
    body = {"user": "stella", "permission": "view"}

    response = (
        client.get(url(batch, what))
        if what == "permissions"
        else client.post(url(batch, what), body, format="json")
    )

    assert response.status_code == 404
    assert "Essays" not in response.content.decode()


@pytest.mark.parametrize("what", ["permissions", "share", "unshare"])
def test_anonymous_gets_401_from_every_sharing_endpoint(batch, what):
    client = client_for(None)

    response = (
        client.get(url(batch, what))
        if what == "permissions"
        else client.post(url(batch, what), {}, format="json")
    )

    assert response.status_code == 401


def test_unsharing_the_last_manager_other_than_the_owner_leaves_the_owner_in_control(owner, colleague, batch):
    share(batch, colleague, Level.MANAGE)

    response = client_for(colleague).post(
        url(batch, "unshare"), {"user": "colin", "permission": "view"}, format="json"
    )

    assert response.status_code == 200
    assert response.json() == {"owner": "olivia", "users": [], "groups": []}
    owner_client = client_for(owner)
    assert owner_client.get(url(batch, "permissions")).status_code == 200
    assert (
        owner_client.post(
            url(batch, "share"), {"user": "colin", "permission": "view"}, format="json"
        ).status_code
        == 200
    )
    assert owner_client.patch(url(batch), {"name": "Still mine"}, format="json").status_code == 200


def test_a_manager_cannot_unshare_the_owner(owner, colleague, batch):
    share(batch, colleague, Level.MANAGE)

    response = client_for(colleague).post(
        url(batch, "unshare"), {"user": "olivia", "permission": "view"}, format="json"
    )

    assert response.status_code == 400
    assert "always keeps full control" in response.json()["user"][0]
    assert level_of(owner, batch) == Level.MANAGE


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"user": "nobody", "permission": "view"}, "user", "No user “nobody”."),
        ({"group": "nobody", "permission": "view"}, "group", "No group “nobody”."),
        ({"user": "colin", "permission": "admin"}, "permission", "not a valid choice"),
        ({"user": "colin"}, "permission", "required"),
        ({"permission": "view"}, "user", 'Give either "user" (a username) or "group"'),
        ({"user": "colin", "group": "markers", "permission": "view"}, "group", "not both"),
        ({"user": "colin", "permission": "view", "level": 3}, "level", "Unknown field"),
        ({"user": "olivia", "permission": "view"}, "user", "always keeps full control"),
    ],
)
def test_bad_sharing_requests_get_400_with_a_field_error(
    owner, colleague, markers, batch, body, field, message
):
    response = client_for(owner).post(url(batch, "share"), body, format="json")

    assert response.status_code == 400
    assert message in " ".join(response.json()[field])
    assert level_of(colleague, batch) is None


def test_a_malformed_body_gets_400(owner, batch):
    response = client_for(owner).post(url(batch, "share"), "{not json", content_type="application/json")

    assert response.status_code == 400


def test_sharing_with_a_group_reaches_its_members_on_the_next_request(owner, colleague, markers, batch):
    response = client_for(owner).post(
        url(batch, "share"), {"group": "markers", "permission": "change"}, format="json"
    )

    assert response.status_code == 200
    assert (
        client_for(colleague).post(url(batch, "pause")).status_code == 409
    )  # allowed, but a draft cannot pause
    assert client_for(colleague).patch(url(batch), {"priority": 7}, format="json").status_code == 200

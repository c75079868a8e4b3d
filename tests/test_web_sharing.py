import pytest
from django.contrib.auth.models import Group

from batches.models import BatchStatus
from core.permissions import Level, level_held_by, share
from tests.web_support import messages_of

pytestmark = pytest.mark.django_db


def test_the_owner_sees_who_has_access_and_can_share(client, owner, colleague, batch):
    share(batch, colleague, Level.CHANGE)
    client.force_login(owner)
    html = client.get(f"/batches/{batch.pk}").content.decode()
    assert 'id="sharing"' in html
    assert "colin" in html
    assert '<option value="change" selected>' in html


def test_sharing_with_a_user_sets_exactly_that_level(client, owner, colleague, batch):
    client.force_login(owner)
    response = client.post(
        f"/batches/{batch.pk}/share", {"kind": "user", "name": "colin", "permission": "manage"}
    )
    assert response["Location"] == f"/batches/{batch.pk}#sharing"
    assert "User “colin” now has manage (change and re-share) access." in messages_of(response)
    assert level_held_by(batch, colleague) == Level.MANAGE
    client.post(f"/batches/{batch.pk}/share", {"kind": "user", "name": "colin", "permission": "view"})
    assert level_held_by(batch, colleague) == Level.VIEW


def test_sharing_with_a_group_reaches_its_members(client, owner, stranger, batch):
    markers = Group.objects.create(name="markers")
    stranger.groups.add(markers)
    client.force_login(owner)
    client.post(f"/batches/{batch.pk}/share", {"kind": "group", "name": "markers", "permission": "view"})
    client.force_login(stranger)
    assert client.get(f"/batches/{batch.pk}").status_code == 200


def test_removing_a_share_takes_every_level_away(client, owner, colleague, batch):
    share(batch, colleague, Level.MANAGE)
    client.force_login(owner)
    response = client.post(f"/batches/{batch.pk}/unshare", {"kind": "user", "name": "colin"})
    assert "“colin” no longer has access to “Essays”." in messages_of(response)
    assert level_held_by(batch, colleague) is None
    client.force_login(colleague)
    assert client.get(f"/batches/{batch.pk}").status_code == 404


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"kind": "user", "name": "nobody", "permission": "view"}, "No user is called “nobody”."),
        (
            {"kind": "group", "name": "nobody", "permission": "view"},
            "No group is called “nobody”.",
        ),
        ({"kind": "user", "name": "colin", "permission": "own"}, "Select a valid choice."),
        (
            {"kind": "user", "name": "olivia", "permission": "view"},
            "owns this batch and always keeps full control",
        ),
    ],
)
def test_a_share_that_cannot_be_done_says_why_in_the_sharing_card(
    client, owner, colleague, batch, data, message
):
    client.force_login(owner)
    response = client.post(f"/batches/{batch.pk}/share", data)
    assert response.status_code == 400
    html = response.content.decode()
    # Beside the form in the sharing card, not among the page's messages at the top.
    card = html[html.index('id="sharing"') :]
    assert message in card and "Not shared" in card
    assert message not in html[: html.index('id="sharing"')]
    # What was typed is kept, and the form posts back to the card.
    assert f'value="{data["name"]}"' in card
    assert f'action="/batches/{batch.pk}/share#sharing"' in card
    assert level_held_by(batch, colleague) is None


def test_a_change_holder_may_act_but_not_share(
    client, owner, colleague, batch, django_capture_on_commit_callbacks
):
    share(batch, colleague, Level.CHANGE)
    client.force_login(colleague)
    html = client.get(f"/batches/{batch.pk}").content.decode()
    assert 'id="sharing"' not in html
    assert f'action="/batches/{batch.pk}/start"' in html
    assert f"/batches/{batch.pk}/delete" not in html
    with django_capture_on_commit_callbacks(execute=False):
        client.post(f"/batches/{batch.pk}/start")
    batch.refresh_from_db()
    assert batch.status == BatchStatus.PENDING
    response = client.post(
        f"/batches/{batch.pk}/share", {"kind": "user", "name": "stella", "permission": "view"}
    )
    assert response.status_code == 403
    assert "You can view this batch but not share it." in response.content.decode()
    assert client.post(f"/batches/{batch.pk}/delete").status_code == 403


def test_a_manage_holder_through_a_group_may_share(client, owner, colleague, stranger, batch):
    leads = Group.objects.create(name="leads")
    colleague.groups.add(leads)
    share(batch, leads, Level.MANAGE)
    client.force_login(colleague)
    assert 'id="sharing"' in client.get(f"/batches/{batch.pk}").content.decode()
    client.post(f"/batches/{batch.pk}/share", {"kind": "user", "name": "stella", "permission": "view"})
    assert level_held_by(batch, stranger) == Level.VIEW


def test_a_viewer_cannot_unshare_and_a_stranger_cannot_find_the_batch(
    client, owner, colleague, stranger, batch
):
    share(batch, colleague, Level.VIEW)
    client.force_login(colleague)
    assert client.post(f"/batches/{batch.pk}/unshare", {"kind": "user", "name": "colin"}).status_code == 403
    client.force_login(stranger)
    assert client.post(f"/batches/{batch.pk}/share", {"kind": "user", "name": "stella"}).status_code == 404
    assert level_held_by(batch, colleague) == Level.VIEW


def test_an_unknown_username_is_flagged_on_its_field(client, owner, batch):
    client.force_login(owner)
    response = client.post(
        f"/batches/{batch.pk}/share", {"kind": "user", "name": "nobdy", "permission": "change"}
    )
    html = response.content.decode()
    assert '<ul class="errors" id="id_name_error"><li>No user is called “nobdy”.</li></ul>' in html
    assert '<option value="change" selected>' in html

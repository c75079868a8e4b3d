"""guardian's object-permission pages in the admin, as sharing levels, open to those who may share."""

import pytest
from django.contrib.auth.models import Group

from core.permissions import Level, level_held_by, level_of, share
from templates_app.models import BatchTemplate


@pytest.fixture
def staff_client(client, staff_admin):
    client.force_login(staff_admin)
    return client


def _pages(batch, user=None, group=None) -> str:
    base = f"/admin/batches/jobbatch/{batch.pk}/permissions/"
    if user is not None:
        return f"{base}user-manage/{user.pk}/"
    if group is not None:
        return f"{base}group-manage/{group.pk}/"
    return base


def test_a_manager_opens_the_permissions_page_and_sees_who_holds_what(
    staff_client, staff_admin, batch, colleague
):
    share(batch, staff_admin, Level.MANAGE)
    share(batch, colleague, Level.VIEW)

    response = staff_client.get(_pages(batch))

    assert response.status_code == 200
    assert b"colin" in response.content


def test_a_manager_shares_with_a_user_at_a_level_from_the_admin(staff_client, staff_admin, batch, colleague):
    share(batch, staff_admin, Level.MANAGE)

    response = staff_client.post(_pages(batch, user=colleague), {"permission": "change"})

    assert response.status_code == 302
    assert level_held_by(batch, colleague) == Level.CHANGE


def test_lowering_a_level_in_the_admin_removes_the_higher_ones(staff_client, staff_admin, batch, colleague):
    share(batch, staff_admin, Level.MANAGE)
    share(batch, colleague, Level.MANAGE)

    staff_client.post(_pages(batch, user=colleague), {"permission": "view"})

    assert level_of(colleague, batch) == Level.VIEW


def test_choosing_not_shared_removes_every_level(staff_client, staff_admin, batch, colleague):
    share(batch, staff_admin, Level.MANAGE)
    share(batch, colleague, Level.CHANGE)

    staff_client.post(_pages(batch, user=colleague), {"permission": ""})

    assert level_of(colleague, batch) is None


def test_a_manager_shares_with_a_group_from_the_admin(staff_client, staff_admin, batch):
    share(batch, staff_admin, Level.MANAGE)
    group = Group.objects.create(name="markers")

    staff_client.post(_pages(batch, group=group), {"permission": "view"})

    assert level_held_by(batch, group) == Level.VIEW


def test_the_owner_cannot_be_edited_out_from_the_admin(staff_client, staff_admin, batch, owner):
    share(batch, staff_admin, Level.MANAGE)

    response = staff_client.post(_pages(batch, user=owner), {"permission": ""})

    assert response.status_code == 200
    assert b"always keeps full control" in response.content
    assert level_of(owner, batch) == Level.MANAGE
    assert level_held_by(batch, owner) == Level.MANAGE


@pytest.mark.parametrize("level", [Level.VIEW, Level.CHANGE])
def test_a_staff_member_who_may_not_share_is_refused_the_permission_pages(
    staff_client, staff_admin, batch, colleague, level
):
    share(batch, staff_admin, level)

    assert staff_client.get(_pages(batch)).status_code == 403
    assert staff_client.post(_pages(batch, user=colleague), {"permission": "manage"}).status_code == 403
    assert level_of(colleague, batch) is None
    assert level_of(staff_admin, batch) == level


def test_the_permission_pages_of_a_hidden_batch_answer_not_found(staff_client, batch, colleague):
    assert staff_client.get(_pages(batch)).status_code == 404
    assert staff_client.post(_pages(batch, user=colleague), {"permission": "view"}).status_code == 404


def test_the_owner_shares_a_template_from_the_admin(client, owner, colleague, essay_template):
    owner.is_staff = True
    owner.save()
    template = BatchTemplate.objects.create(
        name="Mine", slug="mine", default_settings=essay_template.default_settings, owner=owner
    )
    client.force_login(owner)

    response = client.post(
        f"/admin/templates_app/batchtemplate/{template.pk}/permissions/user-manage/{colleague.pk}/",
        {"permission": "view"},
    )

    assert response.status_code == 302
    assert template in BatchTemplate.objects.visible_to(colleague)

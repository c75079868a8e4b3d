"""Sharing batches and templates with users and groups at nested levels: view < change < manage."""

import pytest
from django.contrib.auth.models import Group, User
from guardian.shortcuts import get_perms

from batches.models import JobBatch
from core.permissions import (
    Level,
    SharingError,
    can_change,
    can_delete,
    can_share,
    can_view,
    level_held_by,
    level_of,
    permissions_of,
    set_level,
    share,
    unshare,
)
from templates_app.models import BatchTemplate


@pytest.fixture
def tas(db, colleague) -> Group:
    group = Group.objects.create(name="teaching-assistants")
    colleague.groups.add(group)
    return group


def test_sharing_at_view_lets_the_user_see_but_not_change(batch, colleague):
    share(batch, colleague, Level.VIEW)

    assert can_view(colleague, batch)
    assert not can_change(colleague, batch)
    assert not can_share(colleague, batch)


def test_sharing_at_change_brings_view_along(batch, colleague):
    share(batch, colleague, "change")

    assert sorted(get_perms(colleague, batch)) == ["change_jobbatch", "view_jobbatch"]
    assert can_view(colleague, batch) and can_change(colleague, batch)
    assert not can_share(colleague, batch)


def test_sharing_at_manage_brings_view_and_change_but_never_delete(batch, colleague):
    share(batch, colleague, Level.MANAGE)

    assert sorted(get_perms(colleague, batch)) == ["change_jobbatch", "manage_jobbatch", "view_jobbatch"]
    assert can_share(colleague, batch)
    assert not can_delete(colleague, batch)


def test_sharing_the_same_level_twice_changes_nothing(batch, colleague):
    share(batch, colleague, Level.CHANGE)
    share(batch, colleague, Level.CHANGE)

    assert batch.jobbatchuserobjectpermission_set.filter(user=colleague).count() == 2


def test_sharing_a_lower_level_keeps_what_is_already_held(batch, colleague):
    share(batch, colleague, Level.CHANGE)
    share(batch, colleague, Level.VIEW)

    assert level_of(colleague, batch) == Level.CHANGE


def test_unsharing_change_leaves_view(batch, colleague):
    share(batch, colleague, Level.MANAGE)

    unshare(batch, colleague, Level.CHANGE)

    assert level_of(colleague, batch) == Level.VIEW


def test_unsharing_view_removes_every_level(batch, colleague):
    share(batch, colleague, Level.MANAGE)

    unshare(batch, colleague, Level.VIEW)

    assert level_of(colleague, batch) is None
    assert get_perms(colleague, batch) == []


def test_unsharing_manage_leaves_change(batch, colleague):
    share(batch, colleague, Level.MANAGE)

    unshare(batch, colleague, Level.MANAGE)

    assert level_of(colleague, batch) == Level.CHANGE


def test_a_group_share_reaches_every_member(batch, colleague, tas):
    share(batch, tas, Level.CHANGE)

    assert level_of(colleague, batch) == Level.CHANGE
    assert JobBatch.objects.changeable_by(colleague).filter(pk=batch.pk).exists()


def test_leaving_the_group_ends_the_access_it_gave(batch, colleague, tas):
    share(batch, tas, Level.VIEW)
    colleague.groups.remove(tas)

    assert not can_view(colleague, batch)


def test_the_higher_of_a_direct_and_a_group_share_applies(batch, colleague, tas):
    share(batch, colleague, Level.VIEW)
    share(batch, tas, Level.MANAGE)

    assert level_of(colleague, batch) == Level.MANAGE


def test_a_lone_change_row_granted_outside_share_still_lets_its_holder_see(batch, colleague):
    # As guardian's own assign_perm or the raw admin would leave it.
    from guardian.shortcuts import assign_perm

    assign_perm("change_jobbatch", colleague, batch)

    assert can_view(colleague, batch)
    assert JobBatch.objects.visible_to(colleague).filter(pk=batch.pk).exists()


def test_sharing_with_the_owner_is_refused(batch, owner):
    with pytest.raises(SharingError, match="always keeps full control"):
        share(batch, owner, Level.VIEW)


def test_an_unknown_level_is_refused(batch, colleague):
    with pytest.raises(ValueError):
        share(batch, colleague, "admin")


def test_unsharing_the_last_manager_leaves_the_owner_in_control(batch, owner, colleague):
    share(batch, colleague, Level.MANAGE)

    unshare(batch, colleague, Level.VIEW)

    assert permissions_of(batch).users == []
    assert can_share(owner, batch) and can_change(owner, batch) and can_delete(owner, batch)


def test_set_level_makes_the_level_exact_in_both_directions(batch, colleague, tas):
    set_level(batch, colleague, Level.MANAGE)
    set_level(batch, colleague, Level.VIEW)
    set_level(batch, tas, Level.CHANGE)

    assert level_held_by(batch, colleague) == Level.VIEW
    assert level_held_by(batch, tas) == Level.CHANGE

    set_level(batch, tas, None)
    assert level_held_by(batch, tas) is None


def test_permissions_of_lists_users_and_groups_with_their_levels(batch, owner, colleague, stranger, tas):
    share(batch, colleague, Level.CHANGE)
    share(batch, stranger, Level.VIEW)
    share(batch, tas, Level.MANAGE)

    listing = permissions_of(batch).as_dict()

    assert listing == {
        "owner": "olivia",
        "users": [
            {"user": "colin", "permission": "change", "permissions": ["view", "change"]},
            {"user": "stella", "permission": "view", "permissions": ["view"]},
        ],
        "groups": [
            {
                "group": "teaching-assistants",
                "permission": "manage",
                "permissions": ["view", "change", "manage"],
            }
        ],
    }


def test_permissions_of_takes_three_queries_however_many_grants(batch, django_assert_num_queries):
    users = User.objects.bulk_create([User(username=f"reader{i}") for i in range(30)])
    groups = Group.objects.bulk_create([Group(name=f"section{i}") for i in range(10)])
    for principal in users + groups:
        share(batch, principal, Level.VIEW)

    with django_assert_num_queries(3):
        listing = permissions_of(batch)

    assert len(listing.users) == 30 and len(listing.groups) == 10


def test_templates_are_shared_the_same_way(owner, colleague):
    template = BatchTemplate.objects.create(
        name="Private rubric", slug="private-rubric", default_settings={}, owner=owner
    )

    share(template, colleague, Level.VIEW)

    assert BatchTemplate.objects.visible_to(colleague).filter(pk=template.pk).exists()
    assert not BatchTemplate.objects.changeable_by(colleague).filter(pk=template.pk).exists()
    assert permissions_of(template).as_dict()["users"] == [
        {"user": "colin", "permission": "view", "permissions": ["view"]}
    ]

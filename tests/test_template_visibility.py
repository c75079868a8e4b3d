"""Public templates are visible to every signed-in user; private ones to their owner and those shared with."""

import pytest
from django.contrib.auth.models import AnonymousUser, Group

from core.permissions import Level, can_change, can_share, can_view, share
from templates_app.models import BatchTemplate


@pytest.fixture
def private_template(owner) -> BatchTemplate:
    return BatchTemplate.objects.create(
        name="Olivia's rubric", slug="olivias-rubric", default_settings={}, owner=owner, is_public=False
    )


@pytest.fixture
def public_template(owner) -> BatchTemplate:
    return BatchTemplate.objects.create(
        name="Olivia's shared rubric",
        slug="olivias-public-rubric",
        default_settings={},
        owner=owner,
        is_public=True,
    )


def test_the_prebuilt_templates_are_public_to_every_signed_in_user(stranger, essay_template):
    slugs = set(BatchTemplate.objects.visible_to(stranger).values_list("slug", flat=True))

    assert {"academic-essay", "business-report", "research-paper"} <= slugs


def test_a_public_template_is_visible_but_not_changeable_by_others(stranger, public_template):
    assert can_view(stranger, public_template)
    assert not can_change(stranger, public_template)
    assert public_template in BatchTemplate.objects.visible_to(stranger)
    assert public_template not in BatchTemplate.objects.changeable_by(stranger)


def test_a_private_template_is_hidden_from_strangers(stranger, private_template):
    assert not can_view(stranger, private_template)
    assert private_template not in BatchTemplate.objects.visible_to(stranger)


def test_a_private_template_is_visible_to_its_owner(owner, private_template):
    assert private_template in BatchTemplate.objects.visible_to(owner)
    assert can_share(owner, private_template)


def test_a_private_template_shared_with_a_group_is_visible_to_its_members(colleague, private_template):
    group = Group.objects.create(name="department")
    colleague.groups.add(group)
    share(private_template, group, Level.VIEW)

    assert private_template in BatchTemplate.objects.visible_to(colleague)


def test_anonymous_sees_no_template_not_even_a_public_one(public_template, essay_template):
    assert not BatchTemplate.objects.visible_to(AnonymousUser()).exists()
    assert not can_view(AnonymousUser(), public_template)


def test_a_prebuilt_template_without_owner_is_changed_only_by_a_superuser(
    staff_admin, superuser, essay_template
):
    assert not can_change(staff_admin, essay_template)
    assert can_change(superuser, essay_template)


def test_each_template_is_listed_once_however_it_is_reached(owner, colleague, public_template):
    share(public_template, colleague, Level.CHANGE)

    assert BatchTemplate.objects.visible_to(colleague).filter(pk=public_template.pk).count() == 1

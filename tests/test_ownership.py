"""Whoever creates a batch, template, document or job owns it and holds every permission on it."""

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from guardian.shortcuts import get_perms

from batches.models import JobBatch
from core.permissions import (
    Level,
    SharingError,
    can_change,
    can_delete,
    can_share,
    can_view,
    level_of,
    unshare,
)
from grading.models import Document, GradingJob
from templates_app.models import BatchTemplate
from tests.conftest import make_batch, make_document


def test_the_creator_of_a_batch_holds_view_change_delete_and_manage(owner, essay_template):
    batch = make_batch(owner, essay_template)

    assert sorted(get_perms(owner, batch)) == [
        "change_jobbatch",
        "delete_jobbatch",
        "manage_jobbatch",
        "view_jobbatch",
    ]
    assert owner.has_perm("batches.manage_jobbatch", batch)


def test_the_creator_of_a_template_holds_every_permission_on_it(owner):
    template = BatchTemplate.objects.create(
        name="Lab reports", slug="lab-reports", default_settings={}, owner=owner
    )

    assert sorted(get_perms(owner, template)) == [
        "change_batchtemplate",
        "delete_batchtemplate",
        "manage_batchtemplate",
        "view_batchtemplate",
    ]


def test_a_duplicated_batch_belongs_to_whoever_duplicated_it(owner, colleague, batch):
    copy = batch.duplicate(owner=colleague)

    assert level_of(colleague, copy) == Level.MANAGE
    assert "manage_jobbatch" in get_perms(colleague, copy)
    assert not can_view(owner, copy)


def test_a_new_owner_receives_every_permission_when_a_batch_is_handed_over(owner, colleague, batch):
    batch.owner = colleague
    batch.save()

    assert sorted(get_perms(colleague, batch)) == [
        "change_jobbatch",
        "delete_jobbatch",
        "manage_jobbatch",
        "view_jobbatch",
    ]


def test_a_transition_does_not_touch_the_permission_tables(owner, batch):
    # Transitions save with update_fields; the owner signal must cost them nothing.
    with CaptureQueriesContext(connection) as queries:
        batch.cancel_batch()

    assert not [q for q in queries.captured_queries if "objectpermission" in q["sql"]]


def test_the_owner_keeps_control_even_without_any_permission_row(owner, batch):
    # Rows can vanish (an admin edit, a bad script); ownership is read from the owner field.
    JobBatch.objects.get(pk=batch.pk).jobbatchuserobjectpermission_set.all().delete()

    assert can_view(owner, batch) and can_change(owner, batch)
    assert can_share(owner, batch) and can_delete(owner, batch)
    assert JobBatch.objects.manageable_by(owner).filter(pk=batch.pk).exists()


def test_the_owner_of_a_document_or_job_may_see_and_change_it(owner, stranger):
    document = make_document(owner)
    job = GradingJob.objects.create(name="Loose job", document=document, owner=owner)

    assert can_view(owner, document) and can_change(owner, document)
    assert can_view(owner, job) and can_change(owner, job)
    assert not can_view(stranger, document) and not can_view(stranger, job)


def test_a_superuser_holds_every_level_on_every_object(superuser, batch):
    assert level_of(superuser, batch) == Level.MANAGE
    assert can_delete(superuser, batch)


def test_an_inactive_owner_holds_nothing(owner, batch):
    User.objects.filter(pk=owner.pk).update(is_active=False)
    owner.refresh_from_db()

    assert level_of(owner, batch) is None
    assert not JobBatch.objects.visible_to(owner).exists()
    assert not Document.objects.visible_to(owner).exists()


def test_unsharing_from_the_owner_is_refused_with_a_sentence(owner, batch):
    with pytest.raises(SharingError, match="owns this batch and always keeps full control"):
        unshare(batch, owner, Level.VIEW)
    assert can_share(owner, batch)

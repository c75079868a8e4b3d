"""In the admin, staff who are not superusers see and change only what they may."""

import pytest
from django.contrib.auth.models import Group

from batches.models import BatchStatus, JobBatch
from core.permissions import Level, share
from grading.models import GradingJob, GradingResult
from templates_app.models import BatchTemplate
from tests.conftest import make_batch

CHANGELISTS = {
    "batches": "/admin/batches/jobbatch/",
    "templates": "/admin/templates_app/batchtemplate/",
    "documents": "/admin/grading/document/",
    "jobs": "/admin/grading/gradingjob/",
    "results": "/admin/grading/gradingresult/",
}


@pytest.fixture
def world(owner, staff_admin, essay_template):
    """One batch shared with the staff member at view, one at change, one not at all."""
    viewed = make_batch(owner, essay_template, jobs=1, name="Viewed batch")
    changed = make_batch(owner, essay_template, jobs=1, name="Changed batch")
    hidden = make_batch(owner, essay_template, jobs=1, name="Hidden batch")
    share(viewed, staff_admin, Level.VIEW)
    share(changed, staff_admin, Level.CHANGE)
    for batch in (viewed, changed, hidden):
        GradingResult.objects.create(
            job=batch.jobs.get(), provider="builtin", model="builtin", score=5, max_score=10
        )
    private = BatchTemplate.objects.create(
        name="Hidden template", slug="hidden-template", default_settings={}, owner=owner
    )
    return {"viewed": viewed, "changed": changed, "hidden": hidden, "private_template": private}


@pytest.fixture
def staff_client(client, staff_admin):
    client.force_login(staff_admin)
    return client


def _listed(response, model) -> set[int]:
    return {obj.pk for obj in response.context["cl"].result_list}


def test_the_batch_changelist_holds_only_batches_the_staff_member_may_view(staff_client, world):
    response = staff_client.get(CHANGELISTS["batches"])

    assert response.status_code == 200
    assert _listed(response, JobBatch) == {world["viewed"].pk, world["changed"].pk}
    assert b"Hidden batch" not in response.content


@pytest.mark.parametrize("name", ["documents", "jobs", "results"])
def test_documents_jobs_and_results_are_listed_only_through_visible_batches(staff_client, world, name):
    response = staff_client.get(CHANGELISTS[name])

    assert response.status_code == 200
    hidden_job = world["hidden"].jobs.get()
    hidden = {"documents": hidden_job.document_id, "jobs": hidden_job.pk, "results": hidden_job.result.pk}
    assert hidden[name] not in _listed(response, None)
    assert len(_listed(response, None)) == 2


def test_the_template_changelist_holds_public_templates_but_not_private_ones(staff_client, world):
    response = staff_client.get(CHANGELISTS["templates"])

    listed = _listed(response, BatchTemplate)
    assert world["private_template"].pk not in listed
    assert BatchTemplate.objects.get(slug="academic-essay").pk in listed


def test_the_template_filter_names_no_template_of_a_hidden_batch(staff_client, world, owner, essay_template):
    secret = BatchTemplate.objects.create(
        name="Secret exam rubric",
        slug="secret-exam",
        default_settings=essay_template.default_settings,
        owner=owner,
    )
    make_batch(owner, secret, jobs=0, name="Exam")

    response = staff_client.get(CHANGELISTS["batches"])

    assert b"Secret exam rubric" not in response.content


def test_opening_a_hidden_batch_finds_nothing(staff_client, world):
    response = staff_client.get(f"/admin/batches/jobbatch/{world['hidden'].pk}/change/", follow=True)

    assert b"Hidden batch" not in response.content
    assert b"doesn" in response.content  # "... with ID ... doesn't exist"


def test_a_batch_shared_at_view_opens_read_only(staff_client, world):
    url = f"/admin/batches/jobbatch/{world['viewed'].pk}/change/"

    page = staff_client.get(url)
    refused = staff_client.post(url, {"name": "Renamed", "priority": 5})

    assert page.status_code == 200 and page.context["has_change_permission"] is False
    assert refused.status_code == 403
    assert JobBatch.objects.get(pk=world["viewed"].pk).name == "Viewed batch"


def test_a_batch_shared_at_change_opens_for_editing(staff_client, world):
    page = staff_client.get(f"/admin/batches/jobbatch/{world['changed'].pk}/change/")

    assert page.status_code == 200 and page.context["has_change_permission"] is True
    assert "owner" not in page.context["adminform"].form.fields  # only a superuser hands a batch over


def test_an_admin_action_skips_batches_the_staff_member_may_only_view(staff_client, world):
    response = staff_client.post(
        CHANGELISTS["batches"],
        {
            "action": "cancel_batches",
            "_selected_action": [world["viewed"].pk, world["changed"].pk],
            "confirmed": "yes",  # the intermediate page's answer: cancel asks first
        },
        follow=True,
    )

    assert JobBatch.objects.get(pk=world["changed"].pk).status == BatchStatus.CANCELLED
    assert JobBatch.objects.get(pk=world["viewed"].pk).status == BatchStatus.DRAFT
    assert "you may view this batch but not change it" in response.content.decode()


def test_an_admin_action_cannot_reach_a_hidden_batch(staff_client, world):
    staff_client.post(
        CHANGELISTS["batches"], {"action": "cancel_batches", "_selected_action": [world["hidden"].pk]}
    )

    assert JobBatch.objects.get(pk=world["hidden"].pk).status == BatchStatus.DRAFT


def test_deleting_a_batch_shared_at_change_is_refused(staff_client, world):
    response = staff_client.post(f"/admin/batches/jobbatch/{world['changed'].pk}/delete/", {"post": "yes"})

    assert response.status_code == 403
    assert JobBatch.objects.filter(pk=world["changed"].pk).exists()


def test_a_job_cannot_be_moved_into_a_batch_the_staff_member_may_only_view(staff_client, world, staff_admin):
    job = world["changed"].jobs.get()
    form = staff_client.get(f"/admin/grading/gradingjob/{job.pk}/change/").context["adminform"].form

    batches = form.fields["batch"].queryset

    assert set(batches) == {world["changed"]}


def test_a_job_grades_only_documents_the_staff_member_may_change(staff_client, world, staff_admin):
    job = world["changed"].jobs.get()
    form = staff_client.get(f"/admin/grading/gradingjob/{job.pk}/change/").context["adminform"].form

    documents = form.fields["document"].queryset

    # The viewed batch's document may be seen, not copied into another batch.
    assert set(documents) == {job.document}
    assert world["viewed"].jobs.get().document not in documents


def test_a_job_cleared_of_its_batch_in_the_admin_stays_with_the_batchs_owner(
    staff_client, world, staff_admin, owner
):
    job = world["changed"].jobs.get()
    GradingJob.objects.filter(pk=job.pk).update(owner=staff_admin)
    url = f"/admin/grading/gradingjob/{job.pk}/change/"
    page = staff_client.get(url)
    data = {
        "name": job.name,
        "batch": "",
        "document": job.document_id,
        "provider": "",
        "model": "",
        "overrides": "{}",
        "status": job.status,
        "max_attempts": job.max_attempts,
        "created_at_0": page.context["adminform"].form["created_at"].value().strftime("%Y-%m-%d"),
        "created_at_1": page.context["adminform"].form["created_at"].value().strftime("%H:%M:%S"),
        "result-TOTAL_FORMS": 1,
        "result-INITIAL_FORMS": 1,
        "result-MIN_NUM_FORMS": 0,
        "result-MAX_NUM_FORMS": 1,
        "result-0-id": job.result.pk,
        "result-0-job": job.pk,
        "result-0-reviewed_criteria": "[]",
        "result-0-review_comment": "",
    }

    response = staff_client.post(url, data)

    assert response.status_code == 302, response.context["adminform"].form.errors
    job.refresh_from_db()
    assert job.batch_id is None and job.owner == owner


def test_a_batch_created_in_the_admin_belongs_to_whoever_created_it(staff_client, staff_admin, owner):
    response = staff_client.post(
        "/admin/batches/jobbatch/add/",
        {
            "name": "Staff batch",
            "description": "",
            "priority": 5,
            "tags": "[]",
            "settings": "{}",
            "jobs-TOTAL_FORMS": 0,
            "jobs-INITIAL_FORMS": 0,
        },
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    created = JobBatch.objects.get(name="Staff batch")
    assert created.owner == staff_admin
    assert created in JobBatch.objects.manageable_by(staff_admin)


def test_a_group_share_shows_the_batch_to_a_staff_member_in_the_group(client, world, staff_admin, owner):
    group = Group.objects.create(name="office")
    staff_admin.groups.add(group)
    share(world["hidden"], group, Level.VIEW)
    client.force_login(staff_admin)

    response = client.get(CHANGELISTS["batches"])

    assert world["hidden"].pk in _listed(response, JobBatch)


def test_a_superuser_sees_every_batch(client, superuser, world):
    client.force_login(superuser)

    response = client.get(CHANGELISTS["batches"])

    assert _listed(response, JobBatch) == {world["viewed"].pk, world["changed"].pk, world["hidden"].pk}


def test_a_signed_in_user_who_is_not_staff_is_kept_out_of_the_admin(client, colleague, world):
    share(world["viewed"], colleague, Level.MANAGE)
    client.force_login(colleague)

    response = client.get(CHANGELISTS["batches"])

    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_the_job_inline_of_a_viewable_batch_is_shown(staff_client, world):
    page = staff_client.get(f"/admin/batches/jobbatch/{world['viewed'].pk}/change/")

    assert GradingJob.objects.get(batch=world["viewed"]).name.encode() in page.content

"""No one-click loss of graded work: removing a graded job and cancelling a batch ask first.

A graded (or reviewed) job's "Remove…" opens a page naming what goes with it;
its removal can be undone from the batch's page ("Put back"). An ungraded job
is still removed in one click. Cancel, whose table entry sets `confirm`,
opens a confirmation page on the web and an intermediate page in the admin.
"""

import re

import pytest
from django.urls import reverse
from django.utils import timezone

from batches.actions import BY_NAME
from batches.exceptions import InvalidTransition
from batches.models import BatchStatus, JobBatch
from grading.models import GradingJob, GradingResult, JobStatus
from tests.api_support import client_for
from tests.conftest import make_batch, set_status
from tests.web_support import messages_of, share_for_viewing

pytestmark = pytest.mark.django_db


@pytest.fixture
def graded(owner, batch):
    """The first job graded 23/35 and reviewed to 25 by the owner; the second ungraded."""
    set_status(batch, BatchStatus.COMPLETED)
    JobBatch.objects.filter(pk=batch.pk).update(started_at=timezone.now(), completed_at=timezone.now())
    job, spare = batch.jobs.order_by("pk")
    GradingJob.objects.filter(pk=job.pk).update(status=JobStatus.COMPLETED)
    result = GradingResult.objects.create(
        job=job, provider="builtin", model="builtin-v1", score=23, max_score=35, feedback="Solid."
    )
    result.record_review(owner, 25, comment="Fairer.")
    return job, spare


def graded_count(client, batch) -> str:
    html = client.get(f"/batches/{batch.pk}").content.decode()
    return re.search(r"<dt>Graded</dt><dd>(\d+)<span class=\"muted\"> / (\d+)", html).groups()


def test_a_graded_job_offers_no_one_click_remove(client, owner, batch, graded):
    job, spare = graded
    client.force_login(owner)
    html = client.get(f"/batches/{batch.pk}").content.decode()
    remove_graded = reverse("batches:job-remove", args=[batch.pk, job.pk])
    remove_spare = reverse("batches:job-remove", args=[batch.pk, spare.pk])
    # The graded job: a button that opens a confirmation page, no form that posts the removal.
    assert f'<form method="post" action="{remove_graded}"' not in html
    assert f'<form method="get" action="{remove_graded}">' in html
    # The ungraded job: still one click.
    assert f'<form method="post" action="{remove_spare}">' in html


def test_the_confirmation_names_the_grade_and_the_review(client, owner, batch, graded):
    job, _ = graded
    client.force_login(owner)
    page = client.get(f"/batches/{batch.pk}/jobs/{job.pk}/remove")
    html = page.content.decode()
    assert page.status_code == 200
    assert "Remove “<bdi>essay-0.txt</bdi>” from “<bdi>Essays</bdi>”?" in html
    assert "the AI's grade, 23 / 35" in html
    assert "the review, 25 / 35 by <bdi>olivia</bdi>, with its comment" in html
    assert 'name="confirmed" value="yes"' in html
    job.refresh_from_db()
    assert job.batch_id == batch.pk


def test_posting_without_confirming_removes_nothing_and_asks(client, owner, batch, graded):
    job, _ = graded
    client.force_login(owner)
    response = client.post(f"/batches/{batch.pk}/jobs/{job.pk}/remove")
    assert response.status_code == 200
    assert "Remove the job and its grade" in response.content.decode()
    job.refresh_from_db()
    assert job.batch_id == batch.pk


def test_a_confirmed_removal_can_be_undone_with_the_grade_and_review(client, owner, batch, graded):
    job, _ = graded
    client.force_login(owner)
    assert graded_count(client, batch) == ("1", "2")

    response = client.post(
        f"/batches/{batch.pk}/jobs/{job.pk}/remove", {"confirmed": "yes", "next": f"/batches/{batch.pk}"}
    )
    assert response.status_code == 302
    assert "“Put back”" in messages_of(response)[0]
    job.refresh_from_db()
    assert job.batch_id is None and job.removed_from_id == batch.pk
    assert graded_count(client, batch) == ("0", "1")

    html = client.get(f"/batches/{batch.pk}").content.decode()
    restore = reverse("batches:job-restore", args=[batch.pk, job.pk])
    assert 'id="removed-jobs"' in html and f'action="{restore}"' in html

    response = client.post(restore)
    assert response.status_code == 302
    assert messages_of(response) == [f"Put “{job.name}” back into the batch, with its grade."]
    job.refresh_from_db()
    assert (job.batch_id, job.removed_from_id, job.status) == (batch.pk, None, JobStatus.COMPLETED)
    assert (job.result.score, job.result.reviewed_score, job.result.review_comment) == (23, 25, "Fairer.")
    assert graded_count(client, batch) == ("1", "2")
    assert 'id="removed-jobs"' not in client.get(f"/batches/{batch.pk}").content.decode()


def test_an_ungraded_job_is_still_removed_in_one_click(client, owner, batch, graded):
    _, spare = graded
    client.force_login(owner)
    response = client.post(f"/batches/{batch.pk}/jobs/{spare.pk}/remove")
    assert response.status_code == 302
    assert messages_of(response) == [f"Removed “{spare.name}” from the batch."]
    spare.refresh_from_db()
    assert spare.batch_id is None


def test_only_a_job_removed_from_this_batch_can_be_put_back(client, owner, colleague, batch, graded):
    job, _ = graded
    batch.remove_job(job)
    other = make_batch(owner, name="Other", jobs=0)
    client.force_login(owner)
    # Not removed from `other`: not found under it.
    assert client.post(reverse("batches:job-restore", args=[other.pk, job.pk])).status_code == 404
    with pytest.raises(InvalidTransition):
        other.restore_job(job)
    # A viewer of the batch may not put it back.
    share_for_viewing(batch, colleague)
    client.force_login(colleague)
    assert client.post(reverse("batches:job-restore", args=[batch.pk, job.pk])).status_code == 403
    assert 'id="removed-jobs"' not in client.get(f"/batches/{batch.pk}").content.decode()
    job.refresh_from_db()
    assert job.batch_id is None


def test_an_archived_batch_takes_nothing_back(owner, batch, graded):
    job, _ = graded
    batch.remove_job(job)
    batch.archive()
    with pytest.raises(InvalidTransition, match="archived"):
        batch.restore_job(job)


# --- cancel asks first ------------------------------------------------------------------


def test_the_cancel_button_opens_a_confirmation_page(client, owner, batch):
    set_status(batch, BatchStatus.PROCESSING, JobStatus.QUEUED)
    client.force_login(owner)
    html = client.get(f"/batches/{batch.pk}").content.decode()
    # Cancel's form GETs its page; Pause beside it still posts at once.
    assert re.search(rf'<form method="get" action="/batches/{batch.pk}/cancel">', html)
    assert re.search(rf'<form method="post" action="/batches/{batch.pk}/pause">', html)

    page = client.get(f"/batches/{batch.pk}/cancel")
    text = page.content.decode()
    assert page.status_code == 200
    assert "Cancel “<bdi>Essays</bdi>”?" in text
    assert BY_NAME["cancel"].confirm in text
    assert f'<form method="post" action="/batches/{batch.pk}/cancel"' in text
    batch.refresh_from_db()
    assert batch.status == BatchStatus.PROCESSING  # looking is not cancelling

    response = client.post(f"/batches/{batch.pk}/cancel", {"next": f"/batches/{batch.pk}"})
    assert response.status_code == 302
    batch.refresh_from_db()
    assert batch.status == BatchStatus.CANCELLED


def test_actions_that_do_not_ask_have_no_confirmation_page(client, owner, batch):
    client.force_login(owner)
    assert client.get(f"/batches/{batch.pk}/start").status_code == 405


def test_the_confirmation_page_says_when_the_action_is_no_longer_possible(client, owner, batch):
    set_status(batch, BatchStatus.COMPLETED, JobStatus.COMPLETED)
    client.force_login(owner)
    html = client.get(f"/batches/{batch.pk}/cancel").content.decode()
    assert "This cannot be done now" in html and "disabled" in html


def test_a_viewer_gets_no_confirmation_page(client, colleague, batch):
    share_for_viewing(batch, colleague)
    client.force_login(colleague)
    assert client.get(f"/batches/{batch.pk}/cancel").status_code == 403


def test_the_admin_asks_before_cancelling(admin_client, admin_user):
    batch = set_status(make_batch(admin_user, name="Busy"), BatchStatus.PROCESSING, JobStatus.QUEUED)
    changelist = reverse("admin:batches_jobbatch_changelist")
    page = admin_client.post(changelist, {"action": "cancel_batches", "_selected_action": [batch.pk]})
    html = page.content.decode()
    assert page.status_code == 200
    assert "Cancel the selected batches?" in html and "Busy" in html
    assert 'name="confirmed" value="yes"' in html
    batch.refresh_from_db()
    assert batch.status == BatchStatus.PROCESSING

    admin_client.post(
        changelist, {"action": "cancel_batches", "_selected_action": [batch.pk], "confirmed": "yes"}
    )
    batch.refresh_from_db()
    assert batch.status == BatchStatus.CANCELLED


def test_the_api_still_cancels_at_once(owner, batch):
    set_status(batch, BatchStatus.PROCESSING, JobStatus.QUEUED)
    assert client_for(owner).post(f"/api/batches/{batch.pk}/cancel").status_code == 200
    batch.refresh_from_db()
    assert batch.status == BatchStatus.CANCELLED


def test_a_live_refresh_keeps_the_forms_returning_to_the_page(client, owner, batch):
    set_status(batch, BatchStatus.PROCESSING, JobStatus.QUEUED)
    client.force_login(owner)
    html = client.get(
        f"/batches/{batch.pk}/live",
        headers={"HX-Request": "true", "HX-Current-URL": f"http://testserver/batches/{batch.pk}?page=1"},
    ).content.decode()
    assert f'name="next" value="/batches/{batch.pk}?page=1"' in html
    assert f"/batches/{batch.pk}/live" not in re.findall(r'name="next" value="([^"]*)"', html)


def test_removing_a_job_removed_meanwhile_says_so_rather_than_failing(client, owner, batch, monkeypatch):
    # "Remove" clicked twice: the second request finds the job, then the first takes it out.
    from batches import views

    job = batch.jobs.order_by("pk").first()
    find = views._job_or_404

    def found_then_removed(seen_batch, job_id):
        found = find(seen_batch, job_id)
        JobBatch.objects.get(pk=seen_batch.pk).remove_job(found)
        return found

    monkeypatch.setattr(views, "_job_or_404", found_then_removed)
    client.force_login(owner)

    response = client.post(f"/batches/{batch.pk}/jobs/{job.pk}/remove")

    assert response.status_code == 302
    assert messages_of(response) == [
        f"Removing “{job.name}” refused: This job is no longer in the batch: it was removed meanwhile."
    ]
    assert GradingJob.objects.get(pk=job.pk).batch_id is None

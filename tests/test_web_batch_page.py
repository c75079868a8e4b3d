import re

import pytest

from batches.models import BatchStatus
from grading.models import GradingJob, GradingResult, JobStatus
from tests.conftest import make_batch, set_status
from tests.web_support import messages_of, share_for_viewing

pytestmark = pytest.mark.django_db


def action_urls(html: str, batch) -> set[str]:
    return set(re.findall(rf'action="/batches/{batch.pk}/(\w+)"', html)) - {
        "delete",
        "upload",
        "share",
        "unshare",
        "calibrate",
        "roster",  # the class roster's form, not a batch action
    }


def test_the_owner_sees_the_overview_jobs_and_rubric(client, owner, batch):
    client.force_login(owner)
    response = client.get(f"/batches/{batch.pk}")
    html = response.content.decode()
    assert response.status_code == 200
    for text in (
        "Essays",
        "Academic Essay Grading",
        "olivia",
        "essay-0.txt",
        "essay-1.txt",
        "Thesis and argument",
    ):
        assert text in html
    assert 'aria-valuenow="0"' in html


def test_a_viewer_sees_the_page_without_any_action(client, owner, colleague, batch):
    share_for_viewing(batch, colleague)
    client.force_login(colleague)
    html = client.get(f"/batches/{batch.pk}").content.decode()
    assert "essay-0.txt" in html
    assert action_urls(html, batch) == set()
    assert "/remove" not in html and f"/batches/{batch.pk}/delete" not in html


def test_a_stranger_gets_404(client, stranger, batch):
    client.force_login(stranger)
    assert client.get(f"/batches/{batch.pk}").status_code == 404
    assert client.get(f"/batches/{batch.pk}/live").status_code == 404
    assert client.get(f"/batches/{batch.pk}/documents").status_code == 404


@pytest.mark.parametrize(
    ("status", "job_status", "actions"),
    [
        (BatchStatus.DRAFT, None, {"start", "cancel", "duplicate"}),
        (BatchStatus.PENDING, "queued", {"pause", "cancel", "duplicate"}),
        (BatchStatus.PROCESSING, "queued", {"pause", "cancel", "duplicate"}),
        (BatchStatus.PAUSED, "queued", {"resume", "cancel", "duplicate"}),
        (BatchStatus.COMPLETED, "completed", {"archive", "duplicate"}),
        (BatchStatus.COMPLETED_WITH_ERRORS, "failed", {"retry", "archive", "duplicate"}),
        (BatchStatus.CANCELLED, "cancelled", {"retry", "archive", "duplicate"}),
        (BatchStatus.ARCHIVED, "completed", {"unarchive", "duplicate"}),
    ],
)
def test_the_page_offers_exactly_the_actions_valid_now(client, owner, batch, status, job_status, actions):
    set_status(batch, status, job_status)
    client.force_login(owner)
    assert action_urls(client.get(f"/batches/{batch.pk}").content.decode(), batch) == actions


def test_retry_is_not_offered_when_no_job_failed(client, owner, batch):
    set_status(batch, BatchStatus.CANCELLED, "completed")
    client.force_login(owner)
    assert "retry" not in action_urls(client.get(f"/batches/{batch.pk}").content.decode(), batch)


def test_the_jobs_table_is_paginated(client, owner):
    batch = make_batch(owner, jobs=30)
    client.force_login(owner)
    first = client.get(f"/batches/{batch.pk}").content.decode()
    assert "essay-0.txt" in first and "essay-24.txt" in first and "essay-25.txt" not in first
    second = client.get(f"/batches/{batch.pk}?page=2").content.decode()
    assert "essay-25.txt" in second and "essay-0.txt<" not in second
    assert "Page 2 of 2" in second


def test_scores_appear_in_the_jobs_table(client, owner, batch):
    job = batch.jobs.first()
    GradingJob.objects.filter(pk=job.pk).update(status=JobStatus.COMPLETED)
    GradingResult.objects.create(job=job, provider="builtin", model="builtin-v1", score=72.5, max_score=100)
    client.force_login(owner)
    assert "72.5 / 100" in client.get(f"/batches/{batch.pk}").content.decode()


def test_the_page_polls_only_while_the_batch_is_live(client, owner, batch):
    client.force_login(owner)
    assert "hx-trigger" not in client.get(f"/batches/{batch.pk}").content.decode()
    set_status(batch, BatchStatus.PROCESSING, "queued")
    html = client.get(f"/batches/{batch.pk}").content.decode()
    assert f'hx-get="/batches/{batch.pk}/live"' in html


def test_a_paused_batch_with_calls_in_flight_is_still_live(client, owner, batch):
    set_status(batch, BatchStatus.PAUSED, "processing")
    client.force_login(owner)
    assert f'hx-get="/batches/{batch.pk}/live"' in client.get(f"/batches/{batch.pk}").content.decode()


def test_the_live_parts_swap_in_and_the_page_reloads_once_the_batch_ends(client, owner, batch):
    set_status(batch, BatchStatus.PROCESSING, "queued")
    client.force_login(owner)
    response = client.get(f"/batches/{batch.pk}/live")
    html = response.content.decode()
    for part in ("batch-status", "batch-actions", "batch-progress", "batch-jobs"):
        assert re.search(rf'id="{part}"[^>]*hx-swap-oob="true"', html), part
    assert "HX-Refresh" not in response
    assert (
        '<p id="progress-announcer" hx-swap-oob="innerHTML">0 of 2 jobs done; the batch is processing.</p>'
        in html
    )
    set_status(batch, BatchStatus.COMPLETED, "completed")
    response = client.get(f"/batches/{batch.pk}/live")
    assert response["HX-Refresh"] == "true"
    assert 'aria-valuenow="100"' in response.content.decode()


def test_removing_a_job_takes_it_out_of_the_batch(client, owner, batch):
    job = batch.jobs.first()
    client.force_login(owner)
    response = client.post(
        f"/batches/{batch.pk}/jobs/{job.pk}/remove", {"next": f"/batches/{batch.pk}?page=1"}
    )
    assert response["Location"] == f"/batches/{batch.pk}?page=1"
    assert f"Removed “{job.name}” from the batch." in messages_of(response)
    job.refresh_from_db()
    assert job.batch_id is None


def test_removing_a_job_being_graded_is_refused_with_the_reason(client, owner, batch):
    job = batch.jobs.first()
    set_status(batch, BatchStatus.PROCESSING)
    GradingJob.objects.filter(pk=job.pk).update(status=JobStatus.PROCESSING)
    client.force_login(owner)
    response = client.post(f"/batches/{batch.pk}/jobs/{job.pk}/remove", follow=True)
    assert "Cannot remove a job while a worker is grading it." in response.content.decode()
    job.refresh_from_db()
    assert job.batch_id == batch.pk


def test_a_viewer_cannot_remove_a_job_and_a_stranger_cannot_find_it(
    client, owner, colleague, stranger, batch
):
    job = batch.jobs.first()
    share_for_viewing(batch, colleague)
    client.force_login(colleague)
    assert client.post(f"/batches/{batch.pk}/jobs/{job.pk}/remove").status_code == 403
    client.force_login(stranger)
    assert client.post(f"/batches/{batch.pk}/jobs/{job.pk}/remove").status_code == 404
    job.refresh_from_db()
    assert job.batch_id == batch.pk


def test_a_job_of_another_batch_is_not_found_under_this_one(client, owner, batch):
    other = make_batch(owner, name="Other", jobs=1)
    foreign = other.jobs.get()
    client.force_login(owner)
    assert client.get(f"/batches/{batch.pk}/jobs/{foreign.pk}").status_code == 404
    assert client.post(f"/batches/{batch.pk}/jobs/{foreign.pk}/remove").status_code == 404


def test_a_draft_shows_what_grading_will_take_before_it_starts(client, owner, batch):
    client.force_login(owner)
    html = client.get(f"/batches/{batch.pk}").content.decode()
    assert "What grading will take" in html
    assert "Provider calls</dt><dd>2" in html
    assert "$0.0000" in html
    assert "What grading will take" in client.get(f"/batches/{batch.pk}/documents").content.decode()
    set_status(batch, BatchStatus.PROCESSING, "queued")
    assert "What grading will take" not in client.get(f"/batches/{batch.pk}").content.decode()


def test_agreement_from_a_single_review_is_flagged_as_too_few_pairs(client, owner):
    from tests.analytics_support import MODEL_A, result_of, worked_batch

    batch = worked_batch(owner)
    result_of(batch, "d2.txt", MODEL_A).record_review(owner, 5)
    client.force_login(owner)

    page = client.get(f"/batches/{batch.pk}").content.decode()

    assert "Only 1 pair: too few to trust these figures yet." in page

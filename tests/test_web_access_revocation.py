"""Revoked access does not linger on the web pages either: every page of a batch follows the batch.

A colleague with change access uploads a document through the batch's upload
form (so the document and job are his), and it is graded. The owner then
revokes:

- unshare: every address under /batches/{id} answers 404, as for a stranger,
  GET and POST alike (a 405 for a method the address never takes), and the
  lists (batches, their live refresh, the queue) no longer name the batch;
- downgrade to view: he may still read (the batch, its job, the feedback sheet,
  the comparison), but every POST that changes the batch or its jobs is a 403
  and changes nothing, his own upload included.

The addresses are read from batches/urls.py, so a page added later is asked too.
"""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from batches import urls
from batches.models import JobBatch
from core.permissions import Level, share, unshare
from grading.models import GradingJob, GradingResult, JobStatus

pytestmark = pytest.mark.django_db

MARK = "Colins-private-batch-name"
# What a viewer may still do by POST: copies that become the viewer's own.
VIEWER_MAY_POST = {"save-as-template"}
READABLE_BY_A_VIEWER = {"detail", "live", "job", "job-feedback", "compare"}


@pytest.fixture
def uploaded_job(client, owner, colleague, batch):
    JobBatch.objects.filter(pk=batch.pk).update(name=MARK)
    share(batch, colleague, Level.CHANGE)
    client.force_login(colleague)
    response = client.post(
        f"/batches/{batch.pk}/upload",
        {"files": [SimpleUploadedFile("colin.txt", b"Colin's essay on rivers.")]},
    )
    assert response.status_code == 302
    job = GradingJob.objects.get(batch=batch, document__original_name="colin.txt")
    assert job.owner == colleague and job.document.owner == colleague
    GradingJob.objects.filter(pk=job.pk).update(status=JobStatus.COMPLETED)
    GradingResult.objects.create(job=job, provider="builtin", model="builtin", score=5, max_score=10)
    return job


def batch_addresses(batch: JobBatch, job: GradingJob) -> dict[str, str]:
    addresses = {}
    for pattern in urls.urlpatterns:
        route = str(pattern.pattern)
        if route.startswith("batches/<int:pk>"):
            addresses[pattern.name] = "/" + route.replace("<int:pk>", str(batch.pk)).replace(
                "<int:job_id>", str(job.pk)
            )
    return addresses


def snapshot(batch: JobBatch, job: GradingJob) -> tuple:
    return (
        JobBatch.objects.filter(pk=batch.pk).values_list("name", "status", "settings").get(),
        sorted(GradingJob.objects.filter(batch=batch).values_list("pk", "status")),
        GradingResult.objects.filter(job=job).values_list("reviewer", "reviewed_at", "score").get(),
    )


def test_the_addresses_cover_the_batch_job_and_review_pages(batch, uploaded_job):
    names = set(batch_addresses(batch, uploaded_job))
    assert {"detail", "job", "job-feedback", "compare", "review-accept", "upload", "edit", "cancel"} <= names


def test_after_an_unshare_every_page_of_the_batch_is_a_404(client, colleague, batch, uploaded_job):
    unshare(batch, colleague, Level.VIEW)

    answers = {}
    for name, address in batch_addresses(batch, uploaded_job).items():
        for method in ("get", "post"):
            status = getattr(client, method)(address).status_code
            if status not in (404, 405):
                answers[f"{method.upper()} {name}"] = status
    assert answers == {}


def test_after_an_unshare_no_list_names_the_batch(client, colleague, batch, uploaded_job):
    unshare(batch, colleague, Level.VIEW)

    for address in ("/batches", "/batches/live", "/queue", "/inbox"):
        response = client.get(address)
        assert response.status_code == 200, address
        assert MARK not in response.content.decode(), address


def test_after_a_downgrade_to_view_every_change_is_a_403_and_reading_goes_on(
    client, colleague, batch, uploaded_job
):
    unshare(batch, colleague, Level.CHANGE)
    before = snapshot(batch, uploaded_job)

    answers = {}
    for name, address in batch_addresses(batch, uploaded_job).items():
        if name in READABLE_BY_A_VIEWER:
            answers.update(
                {f"GET {name}": status} if (status := client.get(address).status_code) != 200 else {}
            )
        if name not in VIEWER_MAY_POST:
            status = client.post(address).status_code
            if status not in (403, 405):
                answers[f"POST {name}"] = status
    assert answers == {}
    assert snapshot(batch, uploaded_job) == before

"""GET/POST /api/batches/{id}/jobs and DELETE /api/batches/{id}/jobs/{job_id}."""

import pytest

from batches.models import BatchStatus
from core.permissions import Level, unshare
from grading.models import GradingJob, GradingResult, JobStatus
from tests.api_support import client_for, share
from tests.conftest import make_batch, make_document, set_status

pytestmark = pytest.mark.django_db


def test_a_batchs_jobs_list_with_documents_and_results(owner, batch):
    job = batch.jobs.first()
    GradingResult.objects.create(job=job, provider="builtin", model="builtin-v1", score=70, max_score=100)
    response = client_for(owner).get(f"/api/batches/{batch.pk}/jobs")
    assert response.status_code == 200
    rows = response.json()["results"]
    assert response.json()["count"] == 2
    assert [row["document"]["name"] for row in rows] == ["essay-0.txt", "essay-1.txt"]
    assert rows[0]["result"]["score"] == 70
    assert rows[0]["result"]["final_score"] == 70
    assert rows[1]["result"] is None


def test_a_batchs_jobs_filter_by_status(owner, batch):
    GradingJob.objects.filter(pk=batch.jobs.first().pk).update(status=JobStatus.FAILED)
    response = client_for(owner).get(f"/api/batches/{batch.pk}/jobs?status=failed")
    assert response.json()["count"] == 1


def test_adding_jobs_for_uploaded_documents(owner, batch):
    documents = [make_document(owner, f"extra-{i}.txt") for i in range(3)]
    response = client_for(owner).post(
        f"/api/batches/{batch.pk}/jobs", {"documents": [d.pk for d in documents]}, format="json"
    )
    assert response.status_code == 201, response.json()
    assert [row["document"]["name"] for row in response.json()["jobs"]] == [
        "extra-0.txt",
        "extra-1.txt",
        "extra-2.txt",
    ]
    assert batch.jobs.count() == 5


def test_adding_someone_elses_document_is_not_found_and_names_it(owner, stranger, batch):
    theirs = make_document(stranger, "theirs.txt")
    mine = make_document(owner, "mine.txt")
    response = client_for(owner).post(
        f"/api/batches/{batch.pk}/jobs", {"documents": [mine.pk, theirs.pk]}, format="json"
    )
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert str(theirs.pk) in response.json()["detail"] and str(mine.pk) not in response.json()["detail"]
    assert "theirs.txt" not in response.json()["detail"]
    assert batch.jobs.count() == 2


def test_a_viewer_cannot_attach_the_owners_documents_to_a_batch_of_their_own(owner, colleague, batch):
    share(batch, colleague, "view")
    own = make_batch(colleague, jobs=0, name="Colin's own")
    documents = [job.document for job in batch.jobs.order_by("pk")]
    response = client_for(colleague).post(
        f"/api/batches/{own.pk}/jobs", {"documents": [d.pk for d in documents]}, format="json"
    )
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    for document in documents:
        assert f"{document.pk} (“{document.original_name}”)" in response.json()["detail"]
    assert own.jobs.count() == 0


def test_a_change_holder_may_attach_documents_of_the_batch_they_may_change(owner, colleague, batch):
    share(batch, colleague, "view", "change")
    own = make_batch(colleague, jobs=0, name="Colin's own")
    document = batch.jobs.first().document
    response = client_for(colleague).post(
        f"/api/batches/{own.pk}/jobs", {"documents": [document.pk]}, format="json"
    )
    assert response.status_code == 201, response.json()
    assert own.jobs.get().document == document


def test_ones_own_upload_is_attachable_only_while_in_no_batch(owner, colleague, batch):
    share(batch, colleague, "view", "change")
    uploaded = make_document(colleague, "colins.txt")
    client = client_for(colleague)
    assert (
        client.post(f"/api/batches/{batch.pk}/jobs", {"documents": [uploaded.pk]}, format="json").status_code
        == 201
    )
    # Now it is in olivia's batch: it follows that batch, and a downgrade takes it away.
    unshare(batch, colleague, Level.CHANGE)
    own = make_batch(colleague, jobs=0, name="Colin's own")
    response = client.post(f"/api/batches/{own.pk}/jobs", {"documents": [uploaded.pk]}, format="json")
    assert response.status_code == 403
    assert "colins.txt" in response.json()["detail"]
    assert own.jobs.count() == 0


def test_one_refused_document_attaches_none(owner, colleague, batch):
    share(batch, colleague, "view")
    own = make_batch(colleague, jobs=0, name="Colin's own")
    fresh = make_document(colleague, "fresh.txt")
    theirs = batch.jobs.first().document
    response = client_for(colleague).post(
        f"/api/batches/{own.pk}/jobs", {"documents": [fresh.pk, theirs.pk]}, format="json"
    )
    assert response.status_code == 403
    assert f"{theirs.pk} (“{theirs.original_name}”)" in response.json()["detail"]
    assert "fresh.txt" not in response.json()["detail"]
    assert own.jobs.count() == 0


@pytest.mark.parametrize(
    "body", [{}, {"documents": []}, {"documents": ["x"]}, {"documents": list(range(1, 502))}]
)
def test_adding_jobs_needs_a_bounded_list_of_document_ids(owner, batch, body):
    assert client_for(owner).post(f"/api/batches/{batch.pk}/jobs", body, format="json").status_code == 400


def test_adding_jobs_to_a_running_batch_is_refused(owner, batch):
    batch.start_batch()
    document = make_document(owner, "late.txt")
    response = client_for(owner).post(
        f"/api/batches/{batch.pk}/jobs", {"documents": [document.pk]}, format="json"
    )
    assert response.status_code == 409
    assert response.json()["action"] == "add_jobs"


def test_removing_a_job_keeps_it_as_a_stand_alone_job(owner, batch):
    job = batch.jobs.first()
    response = client_for(owner).delete(f"/api/batches/{batch.pk}/jobs/{job.pk}")
    assert response.status_code == 204
    job.refresh_from_db()
    assert job.batch_id is None
    assert batch.jobs.count() == 1
    assert client_for(owner).get(f"/api/jobs/{job.pk}").status_code == 200


def test_removing_a_job_of_another_batch_is_not_found(owner, batch):
    other = make_batch(owner, name="Other")
    job = other.jobs.first()
    assert client_for(owner).delete(f"/api/batches/{batch.pk}/jobs/{job.pk}").status_code == 404
    assert (
        client_for(owner).delete(f"/api/batches/{batch.pk}/jobs/99999999999999999999999").status_code == 404
    )


def test_removing_a_job_being_graded_is_refused(owner, batch):
    job = batch.jobs.first()
    set_status(batch, BatchStatus.PROCESSING)
    GradingJob.objects.filter(pk=job.pk).update(status=JobStatus.PROCESSING)
    response = client_for(owner).delete(f"/api/batches/{batch.pk}/jobs/{job.pk}")
    assert response.status_code == 409
    assert response.json()["code"] == "invalid_transition"


def test_a_viewer_can_list_but_not_add_or_remove_jobs(owner, colleague, batch):
    share(batch, colleague, "view")
    client = client_for(colleague)
    assert client.get(f"/api/batches/{batch.pk}/jobs").status_code == 200
    document = make_document(colleague, "mine.txt")
    assert (
        client.post(f"/api/batches/{batch.pk}/jobs", {"documents": [document.pk]}, format="json").status_code
        == 403
    )
    job = batch.jobs.first()
    assert client.delete(f"/api/batches/{batch.pk}/jobs/{job.pk}").status_code == 403

"""GET /api/jobs and /api/jobs/{id}: jobs of visible batches, and one's own stand-alone jobs."""

import pytest

from grading.models import GradingJob, GradingResult, JobStatus
from tests.api_support import client_for, share
from tests.conftest import make_batch

pytestmark = pytest.mark.django_db


def test_a_job_reads_with_its_result(owner, batch):
    job = batch.jobs.first()
    GradingResult.objects.create(
        job=job,
        provider="builtin",
        model="builtin-v1",
        score=42,
        max_score=50,
        criteria=[{"key": "thesis", "name": "Thesis", "score": 10, "max_score": 20, "feedback": "Clear."}],
        feedback="Good work.",
    )
    response = client_for(owner).get(f"/api/jobs/{job.pk}")
    assert response.status_code == 200
    body = response.json()
    assert body["batch"] == batch.pk
    assert body["document"]["name"] == "essay-0.txt"
    assert body["result"]["score"] == 42
    assert body["result"]["percent"] == 84.0
    assert body["result"]["criteria"][0]["feedback"] == "Clear."


def test_the_job_list_holds_only_jobs_of_visible_batches(owner, colleague, stranger):
    make_batch(owner, name="Mine")
    shared = make_batch(stranger, name="Shared")
    share(shared, colleague, "view")
    make_batch(stranger, name="Private")
    assert client_for(owner).get("/api/jobs").json()["count"] == 2
    assert client_for(colleague).get("/api/jobs").json()["count"] == 2
    assert client_for(stranger).get("/api/jobs").json()["count"] == 4


def test_a_job_of_an_invisible_batch_is_not_found(stranger, batch):
    assert client_for(stranger).get(f"/api/jobs/{batch.jobs.first().pk}").status_code == 404


@pytest.mark.parametrize(
    "query, expected",
    [("status=failed", 1), ("status=failed,pending", 2), ("provider=openai", 1), ("model=gpt-x", 1), ("", 2)],
)
def test_jobs_filter_by_batch_status_provider_and_model(owner, batch, query, expected):
    first, second = batch.jobs.all()
    GradingJob.objects.filter(pk=first.pk).update(status=JobStatus.FAILED, provider="openai", model="gpt-x")
    other = make_batch(owner, name="Other")
    response = client_for(owner).get(f"/api/jobs?batch={batch.pk}&{query}")
    assert response.status_code == 200
    assert response.json()["count"] == expected
    assert client_for(owner).get(f"/api/jobs?batch={other.pk}").json()["count"] == 2


def test_jobs_are_read_only(owner, batch):
    job = batch.jobs.first()
    client = client_for(owner)
    assert client.post("/api/jobs", {}, format="json").status_code == 405
    assert client.delete(f"/api/jobs/{job.pk}").status_code == 405
    assert client.patch(f"/api/jobs/{job.pk}", {"name": "x"}, format="json").status_code == 405

"""GET /api/batches/{id}/analytics, /estimate and /export: who may read them and what they send."""

import csv
import io
import re
import zipfile

import pytest

from grading.models import GradingJob, JobStatus
from tests.analytics_support import MODEL_A, add_job, add_result, rubric_batch, worked_batch
from tests.api_support import client_for, share
from tests.conftest import make_document
from tests.support.instances import watching

pytestmark = pytest.mark.django_db

ENDPOINTS = ["analytics", "estimate", "export", "export?format=csv"]


@pytest.fixture
def worked(owner):
    return worked_batch(owner)


def _streamed(response) -> bytes:
    return b"".join(response.streaming_content)


def test_the_owner_reads_analytics(owner, worked):
    response = client_for(owner).get(f"/api/batches/{worked.pk}/analytics")
    assert response.status_code == 200
    body = response.json()
    assert body["jobs"]["total"] == 8
    assert body["processing"]["median_ms"] == 4000
    assert body["model_comparison"][0]["documents"] == 2


def test_the_owner_reads_the_estimate(owner, worked):
    response = client_for(owner).get(f"/api/batches/{worked.pk}/estimate")
    assert response.status_code == 200
    assert response.json()["jobs"] == 1  # the one queued job is all that is left


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_a_colleague_with_view_permission_can_read(colleague, worked, endpoint):
    share(worked, colleague, "view")
    assert client_for(colleague).get(f"/api/batches/{worked.pk}/{endpoint}").status_code == 200


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_a_stranger_cannot_see_the_batch_at_all(stranger, worked, endpoint):
    response = client_for(stranger).get(f"/api/batches/{worked.pk}/{endpoint}")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_an_anonymous_client_must_sign_in(worked, endpoint):
    assert client_for(None).get(f"/api/batches/{worked.pk}/{endpoint}").status_code == 401


def test_a_missing_batch_is_a_404(owner):
    assert client_for(owner).get("/api/batches/999999/analytics").status_code == 404


def test_the_export_streams_a_zip_named_after_the_batch(owner, worked):
    response = client_for(owner).get(f"/api/batches/{worked.pk}/export")
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "application/zip"
    disposition = response["Content-Disposition"]
    assert re.fullmatch(r'attachment; filename="worked-example-\d{8}T\d{6}Z\.zip"', disposition)
    archive = zipfile.ZipFile(io.BytesIO(_streamed(response)))
    assert archive.namelist()[:3] == ["README.txt", "batch.json", "gradebook.csv"]


@pytest.mark.parametrize("kind", ["zip", "csv"])
def test_the_export_answers_before_reading_the_jobs_and_sends_the_zip_as_it_reads_them(owner, kind):
    batch = rubric_batch(owner)
    for number in range(23):
        job = add_job(batch, make_document(owner, f"essay-{number}.txt"), MODEL_A, JobStatus.COMPLETED, 100)
        add_result(job, 3, 2)
    with watching(GradingJob) as jobs:
        response = client_for(owner).get(f"/api/batches/{batch.pk}/export", {"format": kind})
        assert response.status_code == 200
        # A view that built the body before answering would have read every job by now.
        assert jobs.built == 0
        chunks = iter(response.streaming_content)
        first = next(chunks)
        if kind == "zip":
            # README.txt is on its way before a single job is read.
            assert first.startswith(b"PK")
            assert jobs.built == 0
        body = first + b"".join(chunks)
    assert jobs.built == (69 if kind == "zip" else 23)
    if kind == "zip":
        # README, batch.json, gradebook.csv, two files per job and a feedback sheet per document.
        assert len(zipfile.ZipFile(io.BytesIO(body)).namelist()) == 3 + 2 * 23 + 23


def test_the_csv_format_returns_the_gradebook_alone(owner, worked):
    response = client_for(owner).get(f"/api/batches/{worked.pk}/export", {"format": "csv"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].endswith('.csv"')
    body = _streamed(response)
    assert body.startswith(b"\xef\xbb\xbf")  # the UTF-8 BOM spreadsheet programs look for
    rows = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))
    assert [row["file_name"] for row in rows] == ["d1.txt", "d2.txt", "d3.txt", "d4.txt"]


def test_an_unknown_export_format_is_a_400_naming_the_choices(owner, worked):
    response = client_for(owner).get(f"/api/batches/{worked.pk}/export", {"format": "xlsx"})
    assert response.status_code == 400
    assert response.json() == {"format": ["Choose one of: zip, csv, canvas, moodle, classroom."]}


def test_the_schema_describes_the_results_endpoints(owner):
    schema = client_for(owner).get("/api/schema", {"format": "json"}).json()
    paths = schema["paths"]
    assert (
        "Analytics"
        in paths["/api/batches/{id}/analytics"]["get"]["responses"]["200"]["content"]["application/json"][
            "schema"
        ]["$ref"]
    )
    assert "/api/batches/{id}/estimate" in paths
    export = paths["/api/batches/{id}/export"]["get"]
    assert set(export["responses"]["200"]["content"]) == {"application/zip", "text/csv"}
    assert {"post", "delete"} <= set(paths["/api/jobs/{id}/review"])

"""Analytics per provider and model: jobs in every status and the mean time per job."""

import pytest

from grading.models import JobStatus
from tests.analytics_support import MODEL_A, MODEL_B, add_job, worked_batch
from tests.api_support import client_for
from tests.conftest import make_document

pytestmark = pytest.mark.django_db


def test_every_status_and_the_mean_time_per_job_per_provider_and_model(owner):
    batch = worked_batch(owner)  # tests/analytics_support.py: two openai models, four documents
    # And the builtin grader's jobs in the other statuses, in the same batch.
    for index, status in enumerate([JobStatus.PROCESSING, JobStatus.CANCELLED, JobStatus.QUEUED]):
        add_job(batch, make_document(owner, f"b{index}.txt"), "builtin-v1", status, provider="builtin")
    add_job(
        batch, make_document(owner, "b9.txt"), "builtin-v1", JobStatus.COMPLETED, 1500, provider="builtin"
    )

    rows = client_for(owner).get(f"/api/batches/{batch.pk}/analytics").json()["by_model"]
    by_model = {(row["provider"], row["model"]): row for row in rows}
    assert by_model[("openai", MODEL_A)]["by_status"] == {
        "pending": 0,
        "queued": 0,
        "processing": 0,
        "completed": 2,
        "failed": 2,
        "cancelled": 0,
    }
    assert by_model[("openai", MODEL_B)]["by_status"]["queued"] == 1
    builtin = by_model[("builtin", "builtin-v1")]
    assert builtin["by_status"] == {
        "pending": 0,
        "queued": 1,
        "processing": 1,
        "completed": 1,
        "failed": 0,
        "cancelled": 1,
    }
    assert builtin["jobs"] == 4 and builtin["mean_duration_ms"] == 1500
    # Model A ran 1000, 3000, 10000 and 6000 ms: 5000 ms a job on average.
    assert by_model[("openai", MODEL_A)]["mean_duration_ms"] == 5000
    for row in rows:
        assert sum(row["by_status"].values()) == row["jobs"]


def test_the_batch_page_shows_the_figures_per_provider_and_model(client, owner):
    batch = worked_batch(owner)
    client.force_login(owner)
    html = client.get(f"/batches/{batch.pk}").content.decode()
    assert "By connection and model" in html
    assert f"openai · {MODEL_A}" in html and "5.0 s" in html  # model A's mean time per job

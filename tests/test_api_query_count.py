"""The batch list costs the same number of queries however many batches it shows."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from guardian.shortcuts import assign_perm

from grading.models import GradingJob, JobStatus
from tests.api_support import client_for
from tests.conftest import make_batch

pytestmark = pytest.mark.django_db


def queries_for_list(user, path="/api/batches?page_size=100") -> int:
    client = client_for(user)
    with CaptureQueriesContext(connection) as captured:
        response = client.get(path)
    assert response.status_code == 200
    return len(captured)


def make_batches(owner, colleague, count: int) -> None:
    for i in range(count):
        batch = make_batch(owner, name=f"Batch {i}", jobs=2, tags=["t"])
        GradingJob.objects.filter(pk=batch.jobs.first().pk).update(status=JobStatus.COMPLETED)
        assign_perm("view_jobbatch", colleague, batch)


def test_the_batch_list_runs_as_many_queries_for_50_batches_as_for_5(owner, colleague):
    make_batches(owner, colleague, 5)
    few_owner, few_shared = queries_for_list(owner), queries_for_list(colleague)
    make_batches(owner, colleague, 45)
    assert queries_for_list(owner) == few_owner
    assert queries_for_list(colleague) == few_shared
    assert (
        queries_for_list(colleague, "/api/batches?page_size=100&tags=t&status=draft&search=Batch")
        == few_shared
    )


def test_the_job_list_runs_as_many_queries_for_50_jobs_as_for_5(owner):
    make_batch(owner, jobs=5)
    few = queries_for_list(owner, "/api/jobs?page_size=100")
    make_batch(owner, jobs=45)
    assert queries_for_list(owner, "/api/jobs?page_size=100") == few

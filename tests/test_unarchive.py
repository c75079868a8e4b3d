"""Archived batches leave the lists unless asked for, and come back with "Unarchive".

Archiving keeps the finished state it left (`archived_from`); unarchiving
returns to it (or, for a batch archived before that was kept, to the state its
jobs give). The daily archival leaves an unarchived batch for another
ARCHIVE_AFTER.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from batches.archival import archive_finished_batches
from batches.models import BatchStatus, JobBatch
from grading.models import JobStatus
from tests.api_support import client_for
from tests.conftest import make_batch, set_status
from tests.web_support import messages_of

pytestmark = pytest.mark.django_db


def finished(owner, name: str, status: str = BatchStatus.COMPLETED, days_ago: float = 40) -> JobBatch:
    batch = make_batch(owner, jobs=1, name=name)
    set_status(batch, status, JobStatus.COMPLETED if status == BatchStatus.COMPLETED else JobStatus.CANCELLED)
    JobBatch.objects.filter(pk=batch.pk).update(completed_at=timezone.now() - timedelta(days=days_ago))
    batch.refresh_from_db()
    return batch


@pytest.fixture
def shelved(owner) -> tuple[JobBatch, JobBatch]:
    """An archived batch and a completed one."""
    archived = finished(owner, "Last year")
    archived.archive()
    return archived, finished(owner, "This term")


def names(response) -> list[str]:
    return [row["name"] for row in response.json()["results"]]


def test_the_api_list_leaves_archived_batches_out_unless_asked(owner, shelved):
    api = client_for(owner)
    assert names(api.get("/api/batches")) == ["This term"]
    assert names(api.get("/api/batches?status=archived")) == ["Last year"]
    assert sorted(names(api.get("/api/batches?status=archived,completed"))) == ["Last year", "This term"]
    # An archived batch is still found by its id.
    archived, _ = shelved
    assert api.get(f"/api/batches/{archived.pk}").json()["status"] == BatchStatus.ARCHIVED


def test_the_page_leaves_archived_batches_out_unless_archived_is_ticked(client, owner, shelved):
    client.force_login(owner)
    page = client.get("/batches").content.decode()
    assert "This term" in page and "Last year" not in page
    assert 'value="archived"' in page  # the "Archived" filter
    ticked = client.get("/batches?status=archived").content.decode()
    assert "Last year" in ticked and "This term" not in ticked


def test_unarchive_returns_to_the_state_it_was_archived_from(owner):
    cancelled = finished(owner, "Stopped", BatchStatus.CANCELLED)
    cancelled.archive()
    assert cancelled.archived_from == BatchStatus.CANCELLED

    cancelled.unarchive()

    cancelled.refresh_from_db()
    assert cancelled.status == BatchStatus.CANCELLED
    assert (cancelled.archived_at, cancelled.archived_from) == (None, "")
    assert cancelled.unarchived_at is not None


def test_a_batch_archived_before_its_state_was_kept_gets_the_state_its_jobs_give(owner):
    batch = set_status(make_batch(owner), BatchStatus.ARCHIVED, JobStatus.COMPLETED)
    assert batch.archived_from == ""
    batch.unarchive()
    assert batch.status == BatchStatus.COMPLETED


def test_the_page_offers_unarchive_and_the_batch_is_listed_again(client, owner, shelved):
    archived, _ = shelved
    client.force_login(owner)
    assert (
        f'action="/batches/{archived.pk}/unarchive"' in client.get(f"/batches/{archived.pk}").content.decode()
    )

    response = client.post(f"/batches/{archived.pk}/unarchive")

    assert messages_of(response) == [
        "Unarchived “Last year”: it is back in the lists, in the state it was archived from."
    ]
    assert "Last year" in client.get("/batches").content.decode()


def test_the_api_unarchives_and_refuses_a_batch_that_is_not_archived(owner, shelved):
    archived, current = shelved
    api = client_for(owner)
    response = api.post(f"/api/batches/{archived.pk}/unarchive")
    assert response.status_code == 200
    assert response.json()["status"] == BatchStatus.COMPLETED
    refused = api.post(f"/api/batches/{current.pk}/unarchive")
    assert refused.status_code == 409
    assert refused.json()["action"] == "unarchive"


def test_the_daily_archival_leaves_an_unarchived_batch_for_another_period(owner, shelved):
    archived, current = shelved
    archived.unarchive()

    report = archive_finished_batches(timedelta(days=30))

    assert [batch.pk for batch in report.archived] == [current.pk]
    archived.refresh_from_db()
    assert archived.status == BatchStatus.COMPLETED
    later = archive_finished_batches(timedelta(days=30), now=timezone.now() + timedelta(days=31))
    assert [batch.pk for batch in later.archived] == [archived.pk]

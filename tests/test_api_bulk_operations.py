"""POST /api/batches/bulk-operations: one action over many batches, one outcome per id."""

import pytest

from batches.models import BatchStatus, JobBatch
from tests.api_support import client_for, share
from tests.conftest import make_batch, set_status

pytestmark = pytest.mark.django_db


def bulk(user, **body):
    return client_for(user).post("/api/batches/bulk-operations", body, format="json")


def test_starting_several_batches_reports_each_outcome(owner, stranger):
    drafts = [make_batch(owner, name=f"Draft {i}") for i in range(2)]
    running = make_batch(owner, name="Running")
    running.start_batch()
    foreign = make_batch(stranger, name="Foreign")
    ids = [drafts[0].pk, running.pk, foreign.pk, drafts[1].pk, 99999999]
    response = bulk(owner, action="start", batch_ids=ids)
    assert response.status_code == 200
    results = response.json()["results"]
    assert [row["id"] for row in results] == ids
    assert results[0] == {"id": drafts[0].pk, "ok": True, "status": "pending"}
    assert results[1]["ok"] is False and results[1]["code"] == "invalid_transition"
    assert "Cannot start" in results[1]["error"]
    assert results[2] == {"id": foreign.pk, "ok": False, "code": "not_found", "error": results[2]["error"]}
    assert results[3]["ok"] is True
    assert results[4]["code"] == "not_found"
    foreign.refresh_from_db()
    assert foreign.status == "draft"


def test_a_viewer_is_told_a_batch_is_forbidden(owner, colleague):
    batch = make_batch(owner)
    share(batch, colleague, "view")
    results = bulk(colleague, action="pause", batch_ids=[batch.pk]).json()["results"]
    assert results == [
        {"id": batch.pk, "ok": False, "code": "permission_denied", "error": results[0]["error"]}
    ]


@pytest.mark.parametrize(
    "action, start_status, end_status",
    [
        ("pause", "processing", "paused"),
        ("resume", "paused", "processing"),
        ("cancel", "draft", "cancelled"),
        ("archive", "completed", "archived"),
    ],
)
def test_each_transition_runs_in_bulk(owner, action, start_status, end_status):
    batches = [set_status(make_batch(owner, name=f"B{i}"), start_status) for i in range(3)]
    results = bulk(owner, action=action, batch_ids=[b.pk for b in batches]).json()["results"]
    assert [row["status"] for row in results] == [end_status] * 3
    assert set(JobBatch.objects.values_list("status", flat=True)) == {end_status}


def test_retry_in_bulk(owner):
    batch = make_batch(owner)
    batch.start_batch()
    batch.cancel_batch()
    assert bulk(owner, action="retry", batch_ids=[batch.pk]).json()["results"][0]["status"] == "pending"


def test_duplicate_in_bulk_names_the_copies(owner):
    batch = make_batch(owner)
    result = bulk(owner, action="duplicate", batch_ids=[batch.pk]).json()["results"][0]
    assert result["ok"] is True
    assert JobBatch.objects.get(pk=result["duplicate_id"]).name == "Essays (copy)"


def test_delete_in_bulk_spares_busy_batches(owner):
    idle = make_batch(owner, name="Idle")
    busy = make_batch(owner, name="Busy")
    busy.start_batch()
    results = bulk(owner, action="delete", batch_ids=[idle.pk, busy.pk]).json()["results"]
    assert results[0] == {"id": idle.pk, "ok": True, "status": "deleted"}
    assert results[1]["ok"] is False and results[1]["code"] == "invalid_transition"
    assert list(JobBatch.objects.values_list("name", flat=True)) == ["Busy"]


def test_priority_and_tags_in_bulk(owner):
    batches = [make_batch(owner, name=f"B{i}", tags=["old"]) for i in range(2)]
    ids = [b.pk for b in batches]
    assert bulk(owner, action="set_priority", batch_ids=ids, priority=9).status_code == 200
    bulk(owner, action="add_tags", batch_ids=ids, tags=["new", "old"])
    assert {tuple(b.tags) for b in JobBatch.objects.all()} == {("old", "new")}
    bulk(owner, action="remove_tags", batch_ids=ids, tags=["old"])
    assert {(b.priority, tuple(b.tags)) for b in JobBatch.objects.all()} == {(9, ("new",))}


def test_edits_in_bulk_are_refused_for_archived_batches(owner):
    batch = set_status(make_batch(owner), BatchStatus.ARCHIVED)
    result = bulk(owner, action="set_priority", batch_ids=[batch.pk], priority=1).json()["results"][0]
    assert result["ok"] is False and result["code"] == "invalid_transition"


@pytest.mark.parametrize(
    "body, field",
    [
        ({"action": "explode", "batch_ids": [1]}, "action"),
        ({"action": "start", "batch_ids": []}, "batch_ids"),
        ({"action": "start", "batch_ids": list(range(1, 502))}, "batch_ids"),
        ({"action": "start", "batch_ids": ["a"]}, "batch_ids"),
        ({"action": "start", "batch_ids": [0]}, "batch_ids"),
        ({"action": "start", "batch_ids": [10**30]}, "batch_ids"),
        ({"action": "set_priority", "batch_ids": [1]}, "priority"),
        ({"action": "set_priority", "batch_ids": [1], "priority": 11}, "priority"),
        ({"action": "add_tags", "batch_ids": [1]}, "tags"),
        ({"action": "start", "batch_ids": [1], "force": True}, "force"),
    ],
)
def test_bad_bulk_requests_are_a_400(owner, body, field):
    response = bulk(owner, **body)
    assert response.status_code == 400
    assert field in response.json()


def test_five_hundred_ids_are_accepted(owner):
    batch = make_batch(owner, jobs=0)
    ids = [batch.pk, *range(10**6, 10**6 + 499)]
    results = bulk(owner, action="cancel", batch_ids=ids).json()["results"]
    assert len(results) == 500
    assert results[0]["ok"] is True

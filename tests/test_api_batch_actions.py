"""POST /api/batches/{id}/start|pause|resume|cancel|retry|duplicate|archive."""

import pytest

from batches.models import TRANSITIONS, BatchStatus, JobBatch
from grading.models import JobStatus
from tests.api_support import client_for
from tests.conftest import make_batch, set_status

pytestmark = pytest.mark.django_db

REFUSED = [
    (status, action)
    for action, sources in TRANSITIONS.items()
    if sources is not None
    for status in BatchStatus.values
    if status not in sources
]


def post(user, batch, action):
    return client_for(user).post(f"/api/batches/{batch.pk}/{action}")


def test_starting_a_draft_queues_its_jobs(owner, batch):
    response = post(owner, batch, "start")
    assert response.status_code == 200
    assert response.json()["status"] == "pending"
    assert response.json()["progress"]["queued"] == 2
    assert response.json()["started_at"]


def test_starting_a_batch_without_jobs_is_refused(owner):
    empty = make_batch(owner, jobs=0)
    response = post(owner, empty, "start")
    assert response.status_code == 409
    assert response.json() == {
        "detail": "A batch needs at least one job to start.",
        "code": "invalid_transition",
        "status": "draft",
        "action": "start",
    }


def test_pausing_and_resuming(owner, batch):
    batch.start_batch()
    assert post(owner, batch, "pause").json()["status"] == "paused"
    assert post(owner, batch, "resume").json()["status"] == "processing"


def test_cancelling_cancels_queued_jobs(owner, batch):
    batch.start_batch()
    response = post(owner, batch, "cancel")
    assert response.json()["status"] == "cancelled"
    assert response.json()["progress"]["cancelled"] == 2


def test_retrying_requeues_failed_jobs(owner, batch):
    batch.start_batch()
    set_status(batch, BatchStatus.FAILED, job_status=JobStatus.FAILED)
    response = post(owner, batch, "retry")
    assert response.status_code == 200
    assert response.json()["status"] == "pending"
    assert response.json()["progress"]["queued"] == 2


def test_archiving_a_finished_batch(owner, batch):
    set_status(batch, BatchStatus.COMPLETED, job_status=JobStatus.COMPLETED)
    response = post(owner, batch, "archive")
    assert response.json()["status"] == "archived"
    assert response.json()["archived_at"]


def test_duplicating_makes_a_new_draft_owned_by_the_requester(owner, batch):
    set_status(batch, BatchStatus.COMPLETED, job_status=JobStatus.COMPLETED)
    response = post(owner, batch, "duplicate")
    assert response.status_code == 201
    copy = response.json()
    assert copy["id"] != batch.pk
    assert copy["status"] == "draft"
    assert copy["progress"]["total"] == 2
    assert copy["progress"]["pending"] == 2
    assert JobBatch.objects.get(pk=copy["id"]).owner == owner


@pytest.mark.parametrize("status, action", REFUSED)
def test_every_refused_transition_answers_409_with_the_contract_body(owner, batch, status, action):
    set_status(batch, status)
    response = post(owner, batch, action)
    assert response.status_code == 409
    body = response.json()
    assert set(body) == {"detail", "code", "status", "action"}
    assert body["code"] == "invalid_transition"
    assert body["status"] == status
    assert body["action"] == action
    assert body["detail"]
    batch.refresh_from_db()
    assert batch.status == status


def test_actions_accept_a_trailing_slash(owner, batch):
    assert client_for(owner).post(f"/api/batches/{batch.pk}/start/").status_code == 200


def test_actions_answer_405_to_get(owner, batch):
    assert client_for(owner).get(f"/api/batches/{batch.pk}/start").status_code == 405

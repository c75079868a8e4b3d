"""/api/batches: create from a template, read, edit by the rules of the state, delete."""

import pytest

from batches.models import BatchStatus, JobBatch
from templates_app.models import BatchTemplate
from tests.api_support import client_for, share
from tests.conftest import make_batch, prebuilt, set_status

pytestmark = pytest.mark.django_db


def test_creating_a_batch_from_a_template_slug_makes_a_draft_and_counts_the_use(owner, essay_template):
    before = essay_template.usage_count
    response = client_for(owner).post(
        "/api/batches",
        {
            "name": "Term 1 essays",
            "template": "academic-essay",
            "settings": {"temperature": 0.2},
            "priority": 8,
            "tags": ["term-1", " english ", "term-1"],
            "deadline": "2030-01-31T17:00:00Z",
            "description": "First term.",
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "draft"
    assert body["template"] == essay_template.pk
    assert body["template_slug"] == "academic-essay"
    assert body["owner"] == "olivia"
    assert body["priority"] == 8
    assert body["tags"] == ["term-1", "english"]
    assert body["settings"] == {"temperature": 0.2}
    assert body["effective_settings"]["temperature"] == 0.2
    assert body["effective_settings"]["rubric"]["criteria"]
    assert body["progress"] == {
        "total": 0,
        "pending": 0,
        "queued": 0,
        "processing": 0,
        "completed": 0,
        "failed": 0,
        "cancelled": 0,
        "percent": 0.0,
    }
    assert body["allowed_actions"] == ["start", "cancel", "duplicate"]
    essay_template.refresh_from_db()
    assert essay_template.usage_count == before + 1
    assert JobBatch.objects.get(pk=body["id"]).owner == owner


def test_creating_a_batch_from_a_template_id_works_too(owner):
    template = prebuilt("business-report")
    response = client_for(owner).post(
        "/api/batches", {"name": "Reports", "template": template.pk}, format="json"
    )
    assert response.status_code == 201
    assert response.json()["template_slug"] == "business-report"
    assert response.json()["priority"] == 5


def test_invalid_settings_are_refused_field_by_field(owner, essay_template):
    response = client_for(owner).post(
        "/api/batches",
        {"name": "Bad", "template": "academic-essay", "settings": {"temperature": 9, "colour": "red"}},
        format="json",
    )
    assert response.status_code == 400
    errors = response.json()["settings"]
    assert "temperature" in errors and "colour" in errors
    assert errors["colour"] == ["Unknown setting."]
    assert not JobBatch.objects.exists()


def test_a_template_the_user_may_not_see_is_refused_as_unknown(owner, stranger):
    private = BatchTemplate.objects.create(
        name="Private",
        slug="private",
        default_settings=prebuilt().default_settings,
        owner=stranger,
    )
    response = client_for(owner).post("/api/batches", {"name": "X", "template": private.slug}, format="json")
    assert response.status_code == 400
    assert "template" in response.json()


@pytest.mark.parametrize(
    "body, field",
    [
        ({"template": "academic-essay"}, "name"),
        ({"name": "", "template": "academic-essay"}, "name"),
        ({"name": "X", "template": "academic-essay", "priority": 11}, "priority"),
        ({"name": "X", "template": "academic-essay", "priority": 0}, "priority"),
        ({"name": "X", "template": "academic-essay", "tags": "one"}, "tags"),
        ({"name": "X", "template": "academic-essay", "tags": ["x" * 51]}, "tags"),
        ({"name": "X", "template": "academic-essay", "deadline": "tomorrow"}, "deadline"),
        ({"name": "X", "template": "no-such-template"}, "template"),
        ({"name": "X", "template": ["academic-essay"]}, "template"),
        ({"name": "X", "template": "academic-essay", "settings": [1]}, "settings"),
        ({"name": "X", "template": "academic-essay", "colour": "red"}, "colour"),
    ],
)
def test_bad_fields_get_a_400_naming_the_field(owner, essay_template, body, field):
    response = client_for(owner).post("/api/batches", body, format="json")
    assert response.status_code == 400
    assert field in response.json()


def test_a_batch_reads_with_progress_from_its_jobs(owner, batch):
    response = client_for(owner).get(f"/api/batches/{batch.pk}")
    assert response.status_code == 200
    assert response.json()["progress"]["total"] == 2
    assert response.json()["progress"]["pending"] == 2


def test_a_trailing_slash_is_accepted_too(owner, batch):
    assert client_for(owner).get(f"/api/batches/{batch.pk}/").status_code == 200
    assert client_for(owner).get("/api/batches/").status_code == 200


def test_the_list_holds_only_batches_the_user_may_view(owner, colleague, stranger):
    mine = make_batch(owner, name="Mine")
    shared = make_batch(stranger, name="Shared with me")
    share(shared, owner, "view")
    make_batch(stranger, name="Not mine")
    response = client_for(owner).get("/api/batches")
    names = {row["name"] for row in response.json()["results"]}
    assert names == {mine.name, shared.name}
    assert response.json()["count"] == 2


def test_a_batch_the_user_may_not_view_is_not_found(stranger, batch):
    client = client_for(stranger)
    assert client.get(f"/api/batches/{batch.pk}").status_code == 404
    assert client.patch(f"/api/batches/{batch.pk}", {"name": "Mine now"}, format="json").status_code == 404
    assert client.delete(f"/api/batches/{batch.pk}").status_code == 404
    assert client.post(f"/api/batches/{batch.pk}/start").status_code == 404
    assert client.get("/api/batches/999999999").json() == {
        "detail": "No JobBatch matches the given query.",
        "code": "not_found",
    }


def test_a_viewer_can_read_but_cannot_change_a_batch(colleague, batch):
    share(batch, colleague, "view")
    client = client_for(colleague)
    assert client.get(f"/api/batches/{batch.pk}").status_code == 200
    response = client.patch(f"/api/batches/{batch.pk}", {"name": "Renamed"}, format="json")
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert client.post(f"/api/batches/{batch.pk}/start").status_code == 403
    assert client.delete(f"/api/batches/{batch.pk}").status_code == 403
    batch.refresh_from_db()
    assert (batch.name, batch.status) == ("Essays", "draft")


def test_a_colleague_with_change_can_edit_and_start(colleague, batch):
    share(batch, colleague, "view", "change")
    client = client_for(colleague)
    assert client.patch(f"/api/batches/{batch.pk}", {"priority": 9}, format="json").status_code == 200
    assert client.post(f"/api/batches/{batch.pk}/start").status_code == 200


def test_anonymous_requests_get_401(batch):
    client = client_for(None)
    assert client.get("/api/batches").status_code == 401
    assert client.get(f"/api/batches/{batch.pk}").status_code == 401
    assert client.post("/api/batches", {"name": "X"}, format="json").status_code == 401


# --- editing ----------------------------------------------------------------


def test_settings_can_change_while_draft(owner, batch):
    response = client_for(owner).patch(
        f"/api/batches/{batch.pk}", {"settings": {"temperature": 0.7}}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["effective_settings"]["temperature"] == 0.7


@pytest.mark.parametrize("status", ["pending", "processing", "completed", "failed", "cancelled"])
def test_settings_cannot_change_unless_draft_or_paused(owner, batch, status):
    set_status(batch, status)
    response = client_for(owner).patch(
        f"/api/batches/{batch.pk}", {"settings": {"temperature": 0.7}}, format="json"
    )
    assert response.status_code == 409
    assert response.json() == {
        "detail": "Settings can be changed only while the batch is a draft or paused.",
        "code": "invalid_transition",
        "status": status,
        "action": "edit_settings",
    }
    batch.refresh_from_db()
    assert batch.settings == {}


@pytest.mark.parametrize("status", ["processing", "completed", "cancelled"])
def test_name_tags_priority_and_deadline_can_change_until_archived(owner, batch, status):
    set_status(batch, status)
    response = client_for(owner).patch(
        f"/api/batches/{batch.pk}",
        {
            "name": "Renamed",
            "description": "New words",
            "tags": ["a"],
            "priority": 2,
            "deadline": "2031-05-01T00:00:00Z",
        },
        format="json",
    )
    assert response.status_code == 200, response.json()
    batch.refresh_from_db()
    assert (batch.name, batch.tags, batch.priority) == ("Renamed", ["a"], 2)


def test_an_archived_batch_cannot_be_edited(owner, batch):
    set_status(batch, BatchStatus.ARCHIVED)
    response = client_for(owner).patch(f"/api/batches/{batch.pk}", {"name": "Renamed"}, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "invalid_transition"
    assert response.json()["action"] == "edit"


def test_sending_back_unchanged_settings_of_a_running_batch_is_not_a_change(owner, batch):
    client = client_for(owner)
    client.patch(f"/api/batches/{batch.pk}", {"settings": {"temperature": 0.3}}, format="json")
    set_status(batch, BatchStatus.PROCESSING)
    current = client.get(f"/api/batches/{batch.pk}").json()
    response = client.put(f"/api/batches/{batch.pk}", {**current, "name": "Renamed"}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["name"] == "Renamed"


def test_editing_a_paused_batchs_settings_reaches_its_queued_jobs(owner, batch):
    batch.start_batch()
    set_status(batch, BatchStatus.PAUSED)
    response = client_for(owner).patch(
        f"/api/batches/{batch.pk}", {"settings": {"temperature": 0.9}}, format="json"
    )
    assert response.status_code == 200
    assert {job.settings["temperature"] for job in batch.jobs.all()} == {0.9}
    assert {job.status for job in batch.jobs.all()} == {"queued"}


# --- delete -------------------------------------------------------------------


def test_deleting_a_draft_batch(owner, batch):
    assert client_for(owner).delete(f"/api/batches/{batch.pk}").status_code == 204
    assert not JobBatch.objects.filter(pk=batch.pk).exists()


def test_deleting_a_batch_with_queued_jobs_is_refused(owner, batch):
    batch.start_batch()
    response = client_for(owner).delete(f"/api/batches/{batch.pk}")
    assert response.status_code == 409
    assert response.json()["code"] == "invalid_transition"
    assert response.json()["action"] == "delete"
    assert JobBatch.objects.filter(pk=batch.pk).exists()

"""/api/batch-templates: CRUD with settings validated field by field."""

import copy

import pytest

from batches.models import BatchStatus
from templates_app.models import BatchTemplate
from templates_app.prebuilt import ACADEMIC_ESSAY
from tests.api_support import client_for, share
from tests.conftest import make_batch, prebuilt, set_status

pytestmark = pytest.mark.django_db

ESSAY_SETTINGS = ACADEMIC_ESSAY["default_settings"]


def template_body(**overrides):
    body = {
        "name": "Lab reports",
        "description": "Chemistry lab reports.",
        "category": "academic",
        "default_settings": copy.deepcopy(ESSAY_SETTINGS),
        "processing_rules": {"max_attempts": 2, "auto_start": True},
        "job_structure": {"naming": "{filename} ({batch})", "per_model": True},
    }
    body.update(overrides)
    return body


def test_listing_shows_the_prebuilt_public_templates(owner):
    response = client_for(owner).get("/api/batch-templates")
    assert response.status_code == 200
    slugs = {row["slug"] for row in response.json()["results"]}
    assert {"academic-essay", "business-report", "research-paper"} <= slugs


def test_creating_a_template_makes_the_user_its_owner_and_a_slug(owner):
    response = client_for(owner).post("/api/batch-templates", template_body(), format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["slug"] == "lab-reports"
    assert body["owner"] == "olivia"
    assert body["usage_count"] == 0
    assert body["is_public"] is False
    template = BatchTemplate.objects.get(pk=body["id"])
    assert template.owner == owner
    again = client_for(owner).post("/api/batch-templates", template_body(), format="json")
    assert again.json()["slug"] == "lab-reports-2"


def test_a_new_template_can_make_batches(owner):
    template = client_for(owner).post("/api/batch-templates", template_body(), format="json").json()
    response = client_for(owner).post(
        "/api/batches", {"name": "Labs", "template": template["slug"]}, format="json"
    )
    assert response.status_code == 201
    assert response.json()["effective_settings"]["processing"]["max_attempts"] == 2
    assert client_for(owner).get(f"/api/batch-templates/{template['id']}").json()["usage_count"] == 1


@pytest.mark.parametrize(
    "overrides, field, path",
    [
        ({"default_settings": {"provider": "builtin"}}, "default_settings", "rubric"),
        ({"default_settings": {**ESSAY_SETTINGS, "temperature": 5}}, "default_settings", "temperature"),
        ({"default_settings": {**ESSAY_SETTINGS, "provider": "nope"}}, "default_settings", "provider"),
        ({"processing_rules": {"max_attempts": 0}}, "processing_rules", "max_attempts"),
        ({"processing_rules": {"retries": 3}}, "processing_rules", "retries"),
        ({"job_structure": {"naming": "{student}"}}, "job_structure", "naming"),
        ({"job_structure": {"per_document": True}}, "job_structure", "per_document"),
    ],
)
def test_invalid_settings_are_refused_under_the_field_and_path_they_came_in(owner, overrides, field, path):
    response = client_for(owner).post("/api/batch-templates", template_body(**overrides), format="json")
    assert response.status_code == 400
    assert path in response.json()[field], response.json()
    assert not BatchTemplate.objects.filter(name="Lab reports").exists()


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"slug": "academic-essay"}, "slug"),
        ({"slug": "1234"}, "slug"),
        ({"slug": "not a slug"}, "slug"),
        ({"category": "poetry"}, "category"),
        ({"default_settings": "text"}, "default_settings"),
        ({"name": ""}, "name"),
        ({"usage": 3}, "usage"),
    ],
)
def test_bad_template_fields_are_a_400(owner, overrides, field):
    response = client_for(owner).post("/api/batch-templates", template_body(**overrides), format="json")
    assert response.status_code == 400
    assert field in response.json()


def test_the_owner_edits_a_template(owner):
    created = client_for(owner).post("/api/batch-templates", template_body(), format="json").json()
    response = client_for(owner).patch(
        f"/api/batch-templates/{created['id']}",
        {"processing_rules": {"max_attempts": 5}, "is_public": True},
        format="json",
    )
    assert response.status_code == 200
    assert response.json()["processing_rules"] == {"max_attempts": 5}
    assert response.json()["is_public"] is True


def test_a_patch_is_validated_against_the_stored_settings(owner):
    created = client_for(owner).post("/api/batch-templates", template_body(), format="json").json()
    response = client_for(owner).patch(
        f"/api/batch-templates/{created['id']}", {"processing_rules": {"concurrency": 0}}, format="json"
    )
    assert response.status_code == 400
    assert "concurrency" in response.json()["processing_rules"]


def test_public_templates_are_readable_but_not_changeable_by_others(owner, stranger):
    essay = prebuilt()
    client = client_for(stranger)
    assert client.get(f"/api/batch-templates/{essay.pk}").status_code == 200
    assert (
        client.patch(f"/api/batch-templates/{essay.pk}", {"name": "Mine"}, format="json").status_code == 403
    )
    assert client.delete(f"/api/batch-templates/{essay.pk}").status_code == 403


def test_private_templates_are_not_found_by_strangers_and_editable_when_shared(owner, colleague, stranger):
    created = client_for(owner).post("/api/batch-templates", template_body(), format="json").json()
    path = f"/api/batch-templates/{created['id']}"
    assert client_for(stranger).get(path).status_code == 404
    template = BatchTemplate.objects.get(pk=created["id"])
    share(template, colleague, "view", "change")
    assert client_for(colleague).patch(path, {"name": "Shared labs"}, format="json").status_code == 200


def test_deleting_an_unused_template(owner):
    created = client_for(owner).post("/api/batch-templates", template_body(), format="json").json()
    assert client_for(owner).delete(f"/api/batch-templates/{created['id']}").status_code == 204
    assert not BatchTemplate.objects.filter(pk=created["id"]).exists()


def test_deleting_a_template_in_use_is_refused_until_its_batches_are_archived(owner):
    created = client_for(owner).post("/api/batch-templates", template_body(), format="json").json()
    template = BatchTemplate.objects.get(pk=created["id"])
    batch = make_batch(owner, template)
    response = client_for(owner).delete(f"/api/batch-templates/{template.pk}")
    assert response.status_code == 409
    assert response.json()["code"] == "template_in_use"
    set_status(batch, BatchStatus.ARCHIVED)
    assert client_for(owner).delete(f"/api/batch-templates/{template.pk}").status_code == 204


def test_anonymous_template_requests_get_401():
    assert client_for(None).get("/api/batch-templates").status_code == 401

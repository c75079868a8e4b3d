"""A batch started from scratch on the web: no template, its settings typed in and held by the batch."""

import pytest

from batches.models import JobBatch
from grading.schema import validate_settings

pytestmark = pytest.mark.django_db


@pytest.fixture
def signed_in(client, owner):
    client.force_login(owner)
    return client


def scratch(**fields):
    return {
        "name": "Lab reports",
        "priority": 6,
        "provider": "builtin",
        "model": "builtin-v1",
        "instructions": "Year 9 lab reports.",
        "criterion_1_name": "Method",
        "criterion_1_points": 10,
        "criterion_1_description": "Steps anyone could repeat.",
        "criterion_2_name": "Conclusion",
        "criterion_2_points": 5,
        **fields,
    }


def test_the_new_batch_page_offers_to_start_from_scratch(signed_in):
    html = signed_in.get("/batches/new").content.decode()
    assert 'href="/batches/new/scratch"' in html and "Start from scratch" in html
    assert signed_in.get("/batches/new/scratch").status_code == 200


def test_a_batch_from_scratch_holds_its_own_settings(signed_in, owner):
    response = signed_in.post("/batches/new/scratch", scratch(auto_start="on", tags="lab, y9"))
    batch = JobBatch.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/batches/{batch.pk}/documents"
    assert (
        batch.template is None
        and batch.owner == owner
        and batch.priority == 6
        and batch.tags == ["lab", "y9"]
    )
    settings = validate_settings(batch.settings)  # complete on its own: nothing comes from a template
    assert (settings.provider, settings.model, settings.instructions) == (
        "builtin",
        "builtin-v1",
        "Year 9 lab reports.",
    )
    assert [(c.key, c.name, c.points) for c in settings.rubric.criteria] == [
        ("method", "Method", 10),
        ("conclusion", "Conclusion", 5),
    ]
    assert settings.processing.auto_start is True
    # Its page and its edit page work without a template.
    assert "Method" in signed_in.get(f"/batches/{batch.pk}").content.decode()
    assert signed_in.get(f"/batches/{batch.pk}/edit").status_code == 200


def test_repeated_criterion_names_get_distinct_keys(signed_in):
    signed_in.post("/batches/new/scratch", scratch(criterion_2_name="Method"))
    keys = [c["key"] for c in JobBatch.objects.get().settings["rubric"]["criteria"]]
    assert keys == ["method", "method_2"]


def test_a_rubric_is_required_and_each_row_complete(signed_in):
    response = signed_in.post(
        "/batches/new/scratch",
        scratch(criterion_1_name="", criterion_1_points="", criterion_2_points=""),
    )
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert "criterion_1_name" in errors and "criterion_2_points" in errors
    assert not JobBatch.objects.exists()

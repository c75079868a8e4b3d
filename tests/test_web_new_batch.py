import re
from datetime import timedelta

import pytest
from django.utils import timezone

from batches.models import JobBatch
from templates_app.models import BatchTemplate

pytestmark = pytest.mark.django_db


def form_data(template: BatchTemplate, **overrides) -> dict:
    data = {
        "template": template.pk,
        "name": "Week 3 essays",
        "description": "Persuasive essays",
        "priority": "7",
        "tags": "english, week-3, english",
        "deadline": "",
        "provider": "",
        "model": "",
        "compare_models": "",
    }
    data.update(overrides)
    return data


def test_the_form_offers_the_templates_with_the_chosen_ones_rubric(client, owner, essay_template):
    client.force_login(owner)
    response = client.get("/batches/new?template=academic-essay")
    html = response.content.decode()
    assert response.status_code == 200
    assert "Academic Essay Grading" in html and "Business Report Review" in html
    assert "Thesis and argument" in html
    assert essay_template.description in html
    assert f'value="{essay_template.pk}"' in html
    assert re.search(rf'value="{essay_template.pk}"[^>]*checked', html)


def test_the_preview_swaps_in_another_templates_rubric(client, owner):
    report = BatchTemplate.objects.get(slug="business-report")
    client.force_login(owner)
    html = client.get(f"/batches/new/template?template={report.pk}").content.decode()
    assert "Executive summary" in html
    assert "Thesis and argument" not in html


def test_the_preview_never_shows_a_private_template_of_someone_else(client, owner, stranger):
    private = BatchTemplate.objects.create(
        name="Secret rubric",
        slug="secret",
        owner=stranger,
        default_settings=BatchTemplate.objects.get(slug="academic-essay").default_settings,
    )
    client.force_login(owner)
    assert "Secret rubric" not in client.get(f"/batches/new/template?template={private.pk}").content.decode()
    assert "Secret rubric" not in client.get("/batches/new").content.decode()
    response = client.post("/batches/new", form_data(private))
    assert response.status_code == 400
    assert not JobBatch.objects.exists()


def test_creating_a_batch_leads_to_the_document_step(client, owner, essay_template):
    client.force_login(owner)
    deadline = (timezone.now() + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M")
    response = client.post("/batches/new", form_data(essay_template, deadline=deadline, model="builtin-v1"))
    batch = JobBatch.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/batches/{batch.pk}/documents"
    assert batch.owner == owner and batch.template == essay_template
    assert batch.priority == 7
    assert batch.tags == ["english", "week-3"]
    assert batch.settings == {"model": "builtin-v1"}
    assert batch.deadline is not None
    essay_template.refresh_from_db()
    assert essay_template.usage_count == 1
    step = client.get(response["Location"]).content.decode()
    assert "Documents" in step and "Week 3 essays" in step


def test_a_comparison_of_models_is_stored_as_a_list(client, owner, essay_template):
    client.force_login(owner)
    client.post("/batches/new", form_data(essay_template, compare_models="builtin-v1, builtin-v1, other"))
    assert JobBatch.objects.get().settings == {"models": ["builtin-v1", "other"]}


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("name", "", "This field is required."),
        ("priority", "11", "Ensure this value is less than or equal to 10."),
        ("priority", "0", "Ensure this value is greater than or equal to 1."),
        ("deadline", "2001-01-01T10:00", "The deadline must be in the future."),
        ("deadline", "next tuesday", "Enter a valid date/time."),
        ("provider", "carrier-pigeon", "Select a valid choice."),
        ("tags", ",".join(f"t{n}" for n in range(21)), "Use at most 20 tags."),
    ],
)
def test_bad_input_is_shown_beside_its_field_and_creates_nothing(
    client, owner, essay_template, field, value, message
):
    client.force_login(owner)
    response = client.post("/batches/new", form_data(essay_template, **{field: value}))
    html = response.content.decode()
    assert response.status_code == 400
    assert message in html.replace("&#x27;", "'")
    assert f'id="id_{field}_error"' in html
    assert not JobBatch.objects.exists()


def test_settings_the_schema_refuses_come_back_on_their_field(client, owner, essay_template):
    client.force_login(owner)
    eleven = ", ".join(f"model-{n}" for n in range(11))
    response = client.post("/batches/new", form_data(essay_template, compare_models=eleven))
    assert response.status_code == 400
    assert not JobBatch.objects.exists()
    html = response.content.decode()
    assert 'id="id_compare_models_error"' in html
    assert "at most 10 items" in html

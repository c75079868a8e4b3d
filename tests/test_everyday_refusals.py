"""Small things a grader meets: past deadlines, copies named after the copy, popular templates, private rubrics."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from batches.models import JobBatch
from templates_app.models import BatchTemplate
from tests.api_support import client_for
from tests.conftest import make_batch, prebuilt

pytestmark = pytest.mark.django_db


def test_a_deadline_in_the_past_is_refused_by_the_api(owner, essay_template):
    past = (timezone.now() - timedelta(hours=1)).isoformat()

    response = client_for(owner).post(
        "/api/batches", {"name": "Late", "template": "academic-essay", "deadline": past}, format="json"
    )

    assert response.status_code == 400
    assert "in the past" in response.json()["deadline"][0]
    assert not JobBatch.objects.exists()


def test_a_batch_whose_deadline_passed_can_be_sent_back_unchanged(owner, batch):
    passed = timezone.now() - timedelta(days=1)
    JobBatch.objects.filter(pk=batch.pk).update(deadline=passed)
    body = client_for(owner).get(f"/api/batches/{batch.pk}").json()

    response = client_for(owner).put(
        f"/api/batches/{batch.pk}", {"name": "Renamed", "deadline": body["deadline"]}, format="json"
    )

    assert response.status_code == 200, response.json()


def test_a_duplicate_names_its_jobs_after_itself_and_counts_as_a_use_of_the_template(owner):
    template = prebuilt("academic-essay")
    batch = make_batch(owner, template, jobs=2, name="Week 3")
    uses = BatchTemplate.objects.get(pk=template.pk).usage_count

    copy = batch.duplicate(name="Week 4")

    assert sorted(copy.jobs.values_list("name", flat=True)) == [
        "Week 4 – essay-0.txt",
        "Week 4 – essay-1.txt",
    ]
    assert BatchTemplate.objects.get(pk=template.pk).usage_count == uses + 1


def test_templates_sort_by_popularity_and_an_unknown_order_is_a_400(owner):
    prebuilt("academic-essay")
    BatchTemplate.objects.filter(slug="business-report").update(usage_count=50)
    BatchTemplate.objects.filter(slug="academic-essay").update(usage_count=5)

    listed = client_for(owner).get("/api/batch-templates?ordering=-usage_count").json()["results"]
    refused = client_for(owner).get("/api/batch-templates?ordering=-secret")

    assert listed[0]["slug"] == "business-report"
    assert [row["usage_count"] for row in listed] == sorted(
        (row["usage_count"] for row in listed), reverse=True
    )
    assert refused.status_code == 400


def test_grading_with_someone_elses_private_template_is_refused_without_naming_it(owner, stranger, tmp_path):
    essay = prebuilt("academic-essay")
    BatchTemplate.objects.create(
        name="Olivia's secret rubric",
        slug="olivia-secret",
        default_settings=essay.default_settings,
        owner=owner,
    )
    (tmp_path / "essay.txt").write_text("An essay.")
    out = StringIO()

    with pytest.raises(CommandError) as refused:
        call_command(
            "grade", str(tmp_path), "--template", "olivia-secret", "--owner", stranger.username, stdout=out
        )
    with pytest.raises(CommandError) as unknown:
        call_command("grade", str(tmp_path), "--template", "nope", "--owner", stranger.username, stdout=out)

    assert refused.value.returncode == 2
    assert "There is no template “olivia-secret”" in str(refused.value)
    assert "olivia-secret" not in str(unknown.value)
    assert not JobBatch.objects.exists()

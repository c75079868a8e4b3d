"""A template's exemplar set on the web: listed for viewers, added and removed by change holders."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from grading.models import Exemplar
from templates_app.models import BatchTemplate
from tests.api_support import share
from tests.conftest import make_batch, prebuilt

pytestmark = pytest.mark.django_db


@pytest.fixture
def template(owner) -> BatchTemplate:
    essay = prebuilt("academic-essay")
    return BatchTemplate.objects.create(
        name="Olivia's rubric", slug="olivia-rubric", default_settings=essay.default_settings, owner=owner
    )


def add(
    client, template, score="70", name="graded.txt", data=b"An essay the teacher graded with care.", **extra
):
    body = {"file": SimpleUploadedFile(name, data), "score": score, **extra}
    return client.post(f"/templates/{template.pk}/exemplars", body)


def test_the_owner_adds_an_exemplar_with_criterion_scores_and_sees_it_listed(client, owner, template):
    key = template.default_settings["rubric"]["criteria"][0]["key"]
    client.force_login(owner)

    response = add(client, template, **{f"criterion_{key}": "10"})

    assert response.status_code == 302
    exemplar = Exemplar.objects.get()
    assert (exemplar.template, exemplar.score, exemplar.criteria) == (template, 70, {key: 10})
    page = client.get(f"/templates/{template.pk}/exemplars").content.decode()
    assert "graded.txt" in page and "Add an exemplar" in page


def test_a_score_off_the_rubric_is_refused_with_a_sentence_and_nothing_stored(client, owner, template):
    client.force_login(owner)

    response = add(client, template, score="1000")

    assert response.status_code == 400
    assert '<ul class="errors" id="id_score_error"><li>The score must be between 0 and 100.</li></ul>' in (
        response.content.decode()
    )
    assert not Exemplar.objects.exists()


@pytest.mark.parametrize("score", ["nan", "inf", "-inf", "lots"])
def test_a_score_that_is_not_a_number_is_refused_with_a_sentence_and_nothing_stored(
    client, owner, template, score
):
    client.force_login(owner)

    response = add(client, template, score=score)

    assert response.status_code == 400
    assert (
        '<ul class="errors" id="id_score_error"><li>Give the teacher&#x27;s score as a number.</li></ul>'
        in response.content.decode()
    )
    assert not Exemplar.objects.exists()


def test_a_viewer_sees_the_exemplars_but_can_neither_add_nor_remove(client, owner, colleague, template):
    share(template, colleague, "view")
    client.force_login(owner)
    add(client, template)
    exemplar = Exemplar.objects.get()
    client.force_login(colleague)

    page = client.get(f"/templates/{template.pk}/exemplars").content.decode()

    assert "graded.txt" in page and "Add an exemplar" not in page
    assert add(client, template).status_code == 403
    assert client.post(f"/templates/{template.pk}/exemplars/{exemplar.pk}/remove").status_code == 403
    assert Exemplar.objects.count() == 1


def test_the_owner_removes_an_exemplar(client, owner, template):
    client.force_login(owner)
    add(client, template)
    exemplar = Exemplar.objects.get()

    response = client.post(f"/templates/{template.pk}/exemplars/{exemplar.pk}/remove")

    assert response.status_code == 302
    assert not Exemplar.objects.exists()


def test_a_stranger_gets_a_404_for_a_private_templates_exemplars(client, stranger, template):
    client.force_login(stranger)

    assert client.get(f"/templates/{template.pk}/exemplars").status_code == 404


def test_the_batch_page_links_to_its_templates_exemplars(client, owner, template):
    from grading.models import GradingJob, GradingResult, JobStatus

    batch = make_batch(owner, template, jobs=1)
    job = batch.jobs.get()
    GradingResult.objects.create(job=job, provider="builtin", model="builtin-v1", score=50, max_score=100)
    GradingJob.objects.filter(pk=job.pk).update(status=JobStatus.COMPLETED)
    client.force_login(owner)

    page = client.get(f"/batches/{batch.pk}").content.decode()

    assert f'href="/templates/{template.pk}/exemplars"' in page


def test_each_problem_is_shown_on_its_field_with_what_was_typed_kept(client, owner, template):
    keys = [criterion["key"] for criterion in template.default_settings["rubric"]["criteria"]]
    client.force_login(owner)

    response = client.post(
        f"/templates/{template.pk}/exemplars",
        {"score": "72.5", f"criterion_{keys[0]}": "99", f"criterion_{keys[1]}": "12"},
    )

    html = response.content.decode()
    assert response.status_code == 400
    assert '<ul class="errors" id="id_file_error"><li>Choose the document the score is for.</li></ul>' in html
    assert 'id="id_score" step="any" min="0" required value="72.5"' in html
    assert f'id="id_criterion_{keys[1]}" value="12"' in html
    assert f'id="id_criterion_{keys[0]}" value="99" aria-invalid="true"' in html
    assert not Exemplar.objects.exists()


def test_a_criterion_off_the_rubric_is_named_on_its_own_field(client, owner, template):
    key = template.default_settings["rubric"]["criteria"][0]["key"]
    client.force_login(owner)

    html = add(client, template, **{f"criterion_{key}": "99"}).content.decode()

    error = html[html.index(f'id="id_criterion_{key}_error"') :].split("</ul>")[0]
    assert f"“{key}”" in error
    assert "choose it again" in html  # a browser does not keep the chosen file
    assert not Exemplar.objects.exists()

"""A template's exemplar set: documents with the teacher's grade, reused by every batch of the template."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from grading.models import Exemplar
from templates_app.models import BatchTemplate
from tests.api_support import client_for, share
from tests.conftest import make_document, prebuilt

pytestmark = pytest.mark.django_db


@pytest.fixture
def template(owner) -> BatchTemplate:
    essay = prebuilt("academic-essay")
    return BatchTemplate.objects.create(
        name="Olivia's rubric", slug="olivia-rubric", default_settings=essay.default_settings, owner=owner
    )


def upload(user, template, name="graded.txt", data=b"An essay the teacher graded with care.", **fields):
    body = {"file": SimpleUploadedFile(name, data), "score": "70", **fields}
    return client_for(user).post(f"/api/batch-templates/{template.pk}/exemplars", body, format="multipart")


def test_an_uploaded_exemplar_is_listed_with_its_score_and_criteria(owner, template):
    key = template.default_settings["rubric"]["criteria"][0]["key"]

    response = upload(owner, template, criteria=f'{{"{key}": 10}}')

    assert response.status_code == 201, response.json()
    listed = client_for(owner).get(f"/api/batch-templates/{template.pk}/exemplars").json()
    assert [(e["name"], e["score"], e["criteria"]) for e in listed] == [("graded.txt", 70, {key: 10})]


def test_an_existing_document_can_be_named_instead_of_a_file(owner, template):
    document = make_document(owner, "mine.txt", "My own essay.")

    response = client_for(owner).post(
        f"/api/batch-templates/{template.pk}/exemplars", {"document": document.pk, "score": 50}, format="json"
    )

    assert response.status_code == 201, response.json()
    assert Exemplar.objects.get().document == document


def test_someone_elses_document_cannot_be_made_an_exemplar(owner, stranger, template):
    document = make_document(stranger, "theirs.txt", "Not yours.")

    response = client_for(owner).post(
        f"/api/batch-templates/{template.pk}/exemplars", {"document": document.pk, "score": 50}, format="json"
    )

    assert response.status_code == 404
    assert not Exemplar.objects.exists()


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"score": "1000"}, "score"),
        ({"criteria": '{"nonsense": 1}'}, "criteria"),
        ({"criteria": "not json"}, "criteria"),
    ],
)
def test_a_grade_off_the_rubric_is_refused_naming_the_field(owner, template, fields, field):
    response = upload(owner, template, **fields)

    assert response.status_code == 400
    assert field in response.json()
    assert not Exemplar.objects.exists()


def test_an_exemplar_without_a_document_or_with_two_says_which(owner, template):
    document = make_document(owner, "mine.txt", "My own essay.")
    url = f"/api/batch-templates/{template.pk}/exemplars"

    neither = client_for(owner).post(url, {"score": 50}, format="json")
    both = upload(owner, template, document=str(document.pk))

    assert neither.status_code == 400
    assert neither.json()["file"] == ["Attach the exemplar's file, or name a document you may view."]
    assert both.status_code == 400
    assert both.json()["file"] == ["Attach a file, or name a document, not both."]
    assert not Exemplar.objects.exists()


def test_an_empty_or_unsupported_file_is_refused_with_its_name(owner, template):
    empty = upload(owner, template, name="blank.txt", data=b"   ")
    program = upload(owner, template, name="virus.exe", data=b"MZ")

    assert empty.status_code == 400 and "blank.txt" in str(empty.json())
    assert program.status_code == 400 and "virus.exe" in str(program.json())
    assert not Exemplar.objects.exists()


def test_a_viewer_cannot_add_or_remove_an_exemplar_but_sees_them(owner, colleague, template):
    share(template, colleague, "view")
    upload(owner, template)
    exemplar = Exemplar.objects.get()

    assert upload(colleague, template).status_code == 403
    url = f"/api/batch-templates/{template.pk}/exemplars/{exemplar.pk}"
    assert client_for(colleague).delete(url).status_code == 403
    assert len(client_for(colleague).get(f"/api/batch-templates/{template.pk}/exemplars").json()) == 1
    assert Exemplar.objects.count() == 1


def test_a_change_holder_removes_an_exemplar(owner, colleague, template):
    share(template, colleague, "view", "change")
    upload(owner, template)
    exemplar = Exemplar.objects.get()

    response = client_for(colleague).delete(f"/api/batch-templates/{template.pk}/exemplars/{exemplar.pk}")

    assert response.status_code == 204
    assert not Exemplar.objects.exists()


def test_a_stranger_does_not_see_a_private_templates_exemplars(owner, stranger, template):
    assert client_for(stranger).get(f"/api/batch-templates/{template.pk}/exemplars").status_code == 404

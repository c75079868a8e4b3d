"""Two requests making templates at once (a double-click on Copy, a form sent twice) both succeed.

Each picks the first free slug, then inserts: between the two, the other
request may take that slug. The unique index refuses the second insert, and
the template takes the next free slug instead of the request failing with a
500. Here the other request is a real template saved at exactly that moment.
"""

import pytest

from templates_app.models import BatchTemplate, BatchTemplateQuerySet
from tests.api_support import client_for
from tests.conftest import make_batch, prebuilt
from tests.test_api_templates import template_body

pytestmark = pytest.mark.django_db


@pytest.fixture
def another_request_takes_the_slug(monkeypatch, stranger):
    """The first free slug picked is taken by another request before this one inserts its row."""
    pick = BatchTemplateQuerySet.unique_slug
    taken = []

    def racing(self, name: str) -> str:
        slug = pick(self, name)
        if not taken:
            taken.append(
                BatchTemplate.objects.create(name=name, slug=slug, owner=stranger, default_settings={})
            )
        return slug

    monkeypatch.setattr(BatchTemplateQuerySet, "unique_slug", racing)
    return taken


def test_copying_while_another_copy_takes_the_slug_makes_the_copy_under_the_next_one(
    client, owner, another_request_takes_the_slug
):
    client.force_login(owner)

    response = client.post(f"/templates/{prebuilt().pk}/copy")

    copy = BatchTemplate.objects.get(owner=owner)
    assert response.status_code == 302 and response["Location"] == f"/templates/{copy.pk}"
    assert another_request_takes_the_slug[0].slug == "academic-essay-grading-copy"
    assert copy.slug == "academic-essay-grading-copy-2"


def test_saving_a_batch_as_a_template_twice_at_once_makes_two_templates(
    client, owner, another_request_takes_the_slug
):
    batch = make_batch(owner, jobs=1, name="Week 3")
    client.force_login(owner)

    response = client.post(f"/batches/{batch.pk}/save-as-template")

    made = BatchTemplate.objects.get(owner=owner)
    assert response["Location"] == f"/templates/{made.pk}"
    assert made.slug == "week-3-template-2"


def test_an_api_template_without_a_slug_takes_the_next_free_one_when_another_took_it(
    owner, another_request_takes_the_slug
):
    response = client_for(owner).post("/api/batch-templates", template_body(), format="json")

    assert response.status_code == 201, response.json()
    assert response.json()["slug"] == "lab-reports-2"


def test_a_slug_given_by_the_client_and_taken_meanwhile_is_a_400_on_the_slug(owner, stranger, monkeypatch):
    from templates_app.serializers import BatchTemplateSerializer

    check = BatchTemplateSerializer.validate_slug

    def racing(self, slug):
        checked = check(self, slug)
        BatchTemplate.objects.create(name="Theirs", slug=slug, owner=stranger, default_settings={})
        return checked

    monkeypatch.setattr(BatchTemplateSerializer, "validate_slug", racing)

    response = client_for(owner).post("/api/batch-templates", template_body(slug="labs"), format="json")

    assert response.status_code == 400
    assert "Another template has this slug." in str(response.json())
    assert not BatchTemplate.objects.filter(owner=owner).exists()

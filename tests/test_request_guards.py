"""A NUL in a URL: 400 for a query parameter, 404 for a path, never a 500 (PostgreSQL refuses NUL)."""

import pytest

from tests.api_support import client_for
from tests.conftest import make_batch

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "url",
    [
        "/batches/new?template=%00",
        "/batches?status=draft%00",
        "/batches?search=%00&page=1",
        "/batches/{batch}?page=%00",
        "/batches/new/template?template=1%00",
        "/notifications?page=%00",
        "/batches?%00=1",
    ],
)
def test_a_nul_in_a_web_pages_query_parameter_is_a_400_page(client, owner, url):
    batch = make_batch(owner)
    client.force_login(owner)
    response = client.get(url.format(batch=batch.pk))
    assert response.status_code == 400
    assert "That request could not be understood" in response.content.decode()


def test_a_nul_in_the_sign_in_pages_next_is_a_400_too(client):
    assert client.get("/accounts/login/?next=/batches%00").status_code == 400


@pytest.mark.parametrize(
    "url",
    [
        "/api/batches?template=%00",
        "/api/batches?search=essay%00",
        "/api/batches?ordering=%00name",
        "/api/batches/{batch}/jobs?page=%00",
        "/api/jobs?status=%00",
        "/api/batch-templates?search=%00",
        "/api/notifications?event=%00",
        "/api/batches/{batch}/export?format=csv%00",
        "/api/batches?%00=1",
    ],
)
def test_a_nul_in_an_api_query_parameter_is_a_json_400(owner, url):
    batch = make_batch(owner)
    response = client_for(owner).get(url.format(batch=batch.pk))
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid_query"
    assert "may not contain NUL" in body["detail"]


def test_the_400_names_the_parameter(owner):
    response = client_for(owner).get("/api/batches?tags=a&template=%00")
    assert response.json()["detail"] == "The query parameter “template” may not contain NUL (%00) characters."


@pytest.mark.parametrize("path", ["/batches/%00", "/batches/1%00/edit", "/api/batches/%00", "/api/jobs/1%00"])
def test_a_nul_in_the_path_is_a_404(client, owner, path):
    client.force_login(owner)
    response = client.get(path)
    assert response.status_code == 404
    if path.startswith("/api/"):
        assert response.json()["code"] == "not_found"


def test_a_nul_posted_to_the_token_endpoints_query_is_refused_before_authenticating(owner):
    response = client_for(owner).post(
        "/api/auth/token?x=%00", {"username": "olivia", "password": "pw-olivia"}
    )
    assert response.status_code == 400


def test_the_new_batch_page_itself_ignores_a_template_that_is_no_slug(
    client, owner, essay_template, settings
):
    """Behind the middleware too: a NUL never reaches the database (PostgreSQL would answer 500)."""
    settings.MIDDLEWARE = [
        m for m in settings.MIDDLEWARE if m != "core.request_guards.RejectInvalidQueryMiddleware"
    ]
    client.force_login(owner)
    for value in ("%00", "academic%00essay", "no such template"):
        response = client.get(f"/batches/new?template={value}")
        assert response.status_code == 200
        assert response.context["form"].initial["template"] is not None  # the first template, preselected
    chosen = client.get("/batches/new?template=academic-essay")
    assert chosen.context["form"].initial["template"] == essay_template

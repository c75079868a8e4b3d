"""Public and private templates through the API: who sees them, who may use, change, share or delete them."""

import pytest

from core.permissions import Level, level_of, share
from templates_app.models import BatchTemplate
from tests.api_support import client_for


def _template(owner, essay_template, slug: str, public: bool) -> BatchTemplate:
    return BatchTemplate.objects.create(
        name=f"Template {slug}",
        slug=slug,
        default_settings=essay_template.default_settings,
        owner=owner,
        is_public=public,
    )


@pytest.fixture
def private(owner, essay_template) -> BatchTemplate:
    return _template(owner, essay_template, "olivias-private", public=False)


@pytest.fixture
def public(owner, essay_template) -> BatchTemplate:
    return _template(owner, essay_template, "olivias-public", public=True)


def _listed(user) -> set[str]:
    response = client_for(user).get("/api/batch-templates?page_size=200")
    assert response.status_code == 200
    return {row["slug"] for row in response.json()["results"]}


def test_a_stranger_lists_public_templates_but_not_private_ones(stranger, private, public):
    slugs = _listed(stranger)

    assert "olivias-public" in slugs and "academic-essay" in slugs
    assert "olivias-private" not in slugs


def test_a_private_template_answers_404_to_a_stranger(stranger, private):
    assert client_for(stranger).get(f"/api/batch-templates/{private.pk}").status_code == 404


def test_a_private_template_shared_at_view_is_listed_and_readable(colleague, private):
    share(private, colleague, Level.VIEW)

    assert "olivias-private" in _listed(colleague)
    assert client_for(colleague).get(f"/api/batch-templates/{private.pk}").status_code == 200


def test_anonymous_gets_401_and_no_template(public):
    response = client_for(None).get("/api/batch-templates")

    assert response.status_code == 401
    assert b"olivias-public" not in response.content


def test_a_public_template_is_usable_by_anyone_signed_in(stranger, public):
    response = client_for(stranger).post(
        "/api/batches", {"name": "Mine", "template": "olivias-public"}, format="json"
    )

    assert response.status_code == 201
    assert response.json()["template"] == public.pk


@pytest.mark.parametrize("reference", ["slug", "id"])
def test_creating_a_batch_from_a_private_template_you_cannot_see_is_refused(stranger, private, reference):
    value = private.slug if reference == "slug" else private.pk

    response = client_for(stranger).post("/api/batches", {"name": "Mine", "template": value}, format="json")

    assert response.status_code == 400
    assert "template" in response.json()
    assert not stranger.batches.exists()
    private.refresh_from_db()
    assert private.usage_count == 0


def test_a_private_template_shared_with_you_is_usable(colleague, private):
    share(private, colleague, Level.VIEW)

    response = client_for(colleague).post(
        "/api/batches", {"name": "Mine", "template": private.slug}, format="json"
    )

    assert response.status_code == 201


def test_a_public_template_cannot_be_changed_shared_or_deleted_by_others(stranger, public):
    client = client_for(stranger)
    base = f"/api/batch-templates/{public.pk}"

    assert client.patch(base, {"name": "Hijacked"}, format="json").status_code == 403
    assert (
        client.post(f"{base}/share", {"user": "stella", "permission": "manage"}, format="json").status_code
        == 403
    )
    assert client.delete(base).status_code == 403
    assert level_of(stranger, public) == Level.VIEW


def test_a_template_shared_at_change_is_editable_but_only_its_owner_deletes_it(colleague, private):
    share(private, colleague, Level.CHANGE)
    client = client_for(colleague)

    assert (
        client.patch(
            f"/api/batch-templates/{private.pk}", {"description": "Sharper"}, format="json"
        ).status_code
        == 200
    )
    assert client.delete(f"/api/batch-templates/{private.pk}").status_code == 403
    assert BatchTemplate.objects.filter(pk=private.pk).exists()


def test_the_owner_shares_a_private_template_and_it_appears_on_the_next_request(owner, colleague, private):
    assert "olivias-private" not in _listed(colleague)

    response = client_for(owner).post(
        f"/api/batch-templates/{private.pk}/share", {"user": "colin", "permission": "view"}, format="json"
    )

    assert response.status_code == 200
    assert "olivias-private" in _listed(colleague)

    client_for(owner).post(
        f"/api/batch-templates/{private.pk}/unshare", {"user": "colin", "permission": "view"}, format="json"
    )
    assert "olivias-private" not in _listed(colleague)


def test_the_template_permissions_list_names_the_owner(owner, private):
    response = client_for(owner).get(f"/api/batch-templates/{private.pk}/permissions")

    assert response.json() == {"owner": "olivia", "users": [], "groups": []}


def test_a_prebuilt_template_is_shared_by_no_one_but_a_superuser(staff_admin, superuser, essay_template):
    refused = client_for(staff_admin).post(
        f"/api/batch-templates/{essay_template.pk}/share",
        {"user": "sam", "permission": "change"},
        format="json",
    )
    listed = client_for(superuser).get(f"/api/batch-templates/{essay_template.pk}/permissions")

    assert refused.status_code == 403
    assert listed.status_code == 200 and listed.json()["owner"] is None

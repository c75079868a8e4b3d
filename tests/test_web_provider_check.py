"""The new-batch and edit pages flag a provider that could not grade here, as it is chosen."""

import html

import pytest

from tests.conftest import make_batch, prebuilt
from tests.web_support import share_for_viewing

pytestmark = pytest.mark.django_db

FLAG = "This batch could not start with this choice"


@pytest.fixture
def no_openai_key(settings):
    settings.OPENAI_BASE_URL = "https://llm.example.com/v1"
    settings.OPENAI_API_KEY = ""


def check_new(client, **choice) -> str:
    template = prebuilt("academic-essay")
    return html.unescape(
        client.get("/batches/new/provider-check", {"template": template.pk, **choice}).content.decode()
    )


def test_choosing_openai_with_the_templates_builtin_model_is_flagged_on_the_new_batch_page(client, owner):
    client.force_login(owner)

    answer = check_new(client, provider="openai", model="")

    assert FLAG in answer
    assert "“builtin-v1” is the builtin grader's model, not one the openai provider serves" in answer


def test_a_remote_provider_without_a_key_is_flagged_with_the_setting_to_set(client, owner, no_openai_key):
    client.force_login(owner)

    answer = check_new(client, provider="openai", model="gpt-4o-mini")

    assert FLAG in answer
    assert "OPENAI_API_KEY" in answer


def test_a_choice_that_can_grade_is_not_flagged(client, owner):
    client.force_login(owner)

    assert FLAG not in check_new(client, provider="", model="")
    assert FLAG not in check_new(client, provider="builtin", model="")


def test_a_compared_model_of_a_provider_without_a_key_is_flagged(client, owner, no_openai_key):
    client.force_login(owner)

    answer = check_new(client, provider="", model="", compare_models="builtin-v1, openai:gpt-4o-mini")

    assert "OPENAI_API_KEY" in answer


def test_the_new_batch_page_asks_as_the_choice_changes_and_flags_a_refused_post(client, owner):
    client.force_login(owner)
    page = client.get("/batches/new").content.decode()
    assert 'id="provider-check"' in page and "/batches/new/provider-check" in page
    assert FLAG not in page

    template = prebuilt("academic-essay")
    response = client.post(
        "/batches/new", {"template": template.pk, "name": "", "priority": 5, "provider": "openai"}
    )
    assert response.status_code == 400  # the name is missing
    assert FLAG in response.content.decode()


def test_the_edit_page_flags_the_batchs_current_choice_and_a_new_one(client, owner, no_openai_key):
    batch = make_batch(owner, settings={"provider": "openai", "model": "gpt-4o-mini"})
    client.force_login(owner)

    page = html.unescape(client.get(f"/batches/{batch.pk}/edit").content.decode())
    assert FLAG in page and "OPENAI_API_KEY" in page

    fixed = client.get(f"/batches/{batch.pk}/edit/provider-check", {"provider": "builtin", "model": ""})
    assert FLAG not in fixed.content.decode()
    broken = html.unescape(
        client.get(
            f"/batches/{batch.pk}/edit/provider-check", {"provider": "openai", "model": ""}
        ).content.decode()
    )
    # A blank model is the template's, builtin-v1, which openai does not serve.
    assert "builtin-v1" in broken


def test_the_edit_check_follows_the_batchs_access_rules(client, owner, colleague, stranger):
    batch = make_batch(owner)
    share_for_viewing(batch, colleague)

    client.force_login(stranger)
    assert client.get(f"/batches/{batch.pk}/edit/provider-check", {"provider": "openai"}).status_code == 404
    client.force_login(colleague)
    assert client.get(f"/batches/{batch.pk}/edit/provider-check", {"provider": "openai"}).status_code == 403


def test_a_template_the_user_may_not_see_is_not_checked(client, owner, stranger):
    private = prebuilt("academic-essay")
    private.is_public = False
    private.owner = owner
    private.save()
    client.force_login(stranger)

    answer = client.get("/batches/new/provider-check", {"template": private.pk, "provider": "openai"})

    assert answer.status_code == 200
    assert FLAG not in answer.content.decode()


def test_a_batch_from_scratch_flags_its_provider_and_model_as_they_are_typed(client, owner, no_openai_key):
    client.force_login(owner)
    page = client.get("/batches/new/scratch").content.decode()
    assert "/batches/new/scratch/provider-check" in page and FLAG not in page

    answer = html.unescape(
        client.get(
            "/batches/new/scratch/provider-check", {"provider": "openai", "model": "gpt-4o-mini"}
        ).content.decode()
    )
    assert FLAG in answer and "OPENAI_API_KEY" in answer
    left_in = html.unescape(
        client.get(
            "/batches/new/scratch/provider-check", {"provider": "openai", "model": "builtin-v1"}
        ).content.decode()
    )
    assert "“builtin-v1” is the builtin grader's model" in left_in
    fine = client.get("/batches/new/scratch/provider-check", {"provider": "builtin", "model": "builtin-v1"})
    assert FLAG not in fine.content.decode()

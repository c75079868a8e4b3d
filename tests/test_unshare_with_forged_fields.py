"""An unshare posted with fields missing or naming nobody gets one clear sentence, and changes nothing."""

import pytest

from core.permissions import Level, level_of, share
from tests.api_support import client_for
from tests.inbox_support import rule
from tests.web_support import messages_of

pytestmark = pytest.mark.django_db

FORGED = [
    ({}, "user or a group"),
    ({"kind": "user"}, "username"),
    ({"name": "colin"}, "user or a group"),
    ({"kind": "robot", "name": "colin"}, "user or a group"),
    ({"kind": "user", "name": "nobody-here"}, "No user is called “nobody-here”."),
    ({"kind": "group", "name": "9999"}, "No group is called “9999”."),
]


@pytest.fixture
def shared_batch(batch, colleague):
    share(batch, colleague, Level.CHANGE)
    return batch


@pytest.fixture
def shared_rule(owner, colleague, batch):
    made = rule(owner, "Essays", 1, name_pattern="*essay*", target_batch=batch)
    share(made, colleague, Level.VIEW)
    return made


@pytest.mark.parametrize("fields, sentence", FORGED)
def test_a_forged_batch_unshare_says_one_sentence_and_keeps_the_share(
    client, owner, colleague, shared_batch, fields, sentence
):
    client.force_login(owner)

    response = client.post(f"/batches/{shared_batch.pk}/unshare", fields, follow=True)

    said = messages_of(response)
    assert len(said) == 1
    assert said[0].startswith("Nothing to remove: ") and sentence in said[0]
    assert "This field is required." not in response.content.decode()
    assert level_of(colleague, shared_batch) == Level.CHANGE


@pytest.mark.parametrize("fields, sentence", FORGED)
def test_a_forged_rule_unshare_says_one_sentence_and_keeps_the_share(
    client, owner, colleague, shared_rule, fields, sentence
):
    client.force_login(owner)

    response = client.post(f"/rules/{shared_rule.pk}/unshare", fields, follow=True)

    said = messages_of(response)
    assert len(said) == 1 and sentence in said[0]
    assert "This field is required." not in response.content.decode()
    assert level_of(colleague, shared_rule) == Level.VIEW


def api_objects(batch, shared_rule, essay_template, owner, colleague):
    from templates_app.models import BatchTemplate

    template = BatchTemplate.objects.create(
        name="Mine", slug="mine", default_settings=essay_template.default_settings, owner=owner
    )
    share(template, colleague, Level.VIEW)
    share(batch, colleague, Level.VIEW)
    return {
        "batches": batch,
        "batch-templates": template,
        "assignment-rules": shared_rule,
    }


@pytest.mark.parametrize("objects", ["batches", "batch-templates", "assignment-rules"])
@pytest.mark.parametrize(
    "body, field",
    [
        ({}, "user"),
        ({"permission": "view"}, "user"),
        ({"user": "nobody-here"}, "user"),
        ({"group": "9999", "permission": "view"}, "group"),
        ({"user": "colin", "permission": "owner"}, "permission"),
    ],
)
def test_a_forged_api_unshare_answers_400_with_one_message_naming_the_field(
    owner, colleague, batch, shared_rule, essay_template, objects, body, field
):
    obj = api_objects(batch, shared_rule, essay_template, owner, colleague)[objects]

    response = client_for(owner).post(f"/api/{objects}/{obj.pk}/unshare", body, format="json")

    assert response.status_code == 400
    errors = response.json()
    assert list(errors) == [field] and len(errors[field]) == 1, errors
    assert "This field is required." not in errors[field][0]
    assert level_of(colleague, obj) is not None


def test_an_api_unshare_without_a_level_takes_every_level_away(owner, colleague, batch):
    share(batch, colleague, Level.CHANGE)

    response = client_for(owner).post(f"/api/batches/{batch.pk}/unshare", {"user": "colin"}, format="json")

    assert response.status_code == 200
    assert level_of(colleague, batch) is None

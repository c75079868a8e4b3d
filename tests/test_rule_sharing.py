"""Assignment rules are shared like templates; a shared rule writes only where its uploader may.

olivia owns a rule and shares it with vera (view) and chad (change); stella
is a stranger and root a superuser. Every route of the API and the web is
asked by each of them. A rule shared with someone runs on their inbox
uploads after their own rules, and puts documents only into batches the
uploader may change, or new batches of the uploader's own.
"""

from pathlib import Path

import pytest
from django.contrib.auth.models import Group, User

from batches.models import AssignmentRule, InboxItem, JobBatch, RuleBatch
from core.permissions import Level, level_held_by, share, unshare
from grading.models import GradingJob
from templates_app.models import BatchTemplate
from tests.api_support import client_for
from tests.conftest import make_batch, prebuilt
from tests.inbox_support import rule, text_file

pytestmark = pytest.mark.django_db

OWNER, VIEWER, CHANGER, STRANGER, SUPERUSER = "owner", "viewer", "changer", "stranger", "superuser"


@pytest.fixture(autouse=True)
def media(settings, tmp_path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def people(owner, superuser) -> dict[str, User]:
    return {
        OWNER: owner,
        VIEWER: User.objects.create_user("vera", password="pw-vera"),
        CHANGER: User.objects.create_user("chad", password="pw-chad"),
        STRANGER: User.objects.create_user("stella", password="pw-stella"),
        SUPERUSER: superuser,
    }


@pytest.fixture
def shared_rule(people) -> AssignmentRule:
    made = rule(people[OWNER], "Olivia's essays", 1, extensions=[".txt"], template=prebuilt())
    share(made, people[VIEWER], Level.VIEW)
    share(made, people[CHANGER], Level.CHANGE)
    return made


def post_inbox(user, *files):
    return client_for(user).post("/api/inbox", {"files": list(files)}, format="multipart")


# --- the API, route by persona ------------------------------------------------------------------

API_MATRIX = {
    # route: (method, path suffix, body, {persona: status})
    "list": ("get", "", None, dict.fromkeys([OWNER, VIEWER, CHANGER, STRANGER, SUPERUSER], 200)),
    "detail": ("get", "{pk}", None, {OWNER: 200, VIEWER: 200, CHANGER: 200, STRANGER: 404, SUPERUSER: 200}),
    "update": (
        "patch",
        "{pk}",
        {"priority": 8},
        {OWNER: 200, VIEWER: 403, CHANGER: 200, STRANGER: 404, SUPERUSER: 200},
    ),
    "replace": (
        "put",
        "{pk}",
        {"name": "Renamed", "template": "academic-essay"},
        {OWNER: 200, VIEWER: 403, CHANGER: 200, STRANGER: 404, SUPERUSER: 200},
    ),
    "delete": (
        "delete",
        "{pk}",
        None,
        {OWNER: 204, VIEWER: 403, CHANGER: 403, STRANGER: 404, SUPERUSER: 204},
    ),
    "permissions": (
        "get",
        "{pk}/permissions",
        None,
        {OWNER: 200, VIEWER: 403, CHANGER: 403, STRANGER: 404, SUPERUSER: 200},
    ),
    "share": (
        "post",
        "{pk}/share",
        {"user": "extra", "permission": "view"},
        {OWNER: 200, VIEWER: 403, CHANGER: 403, STRANGER: 404, SUPERUSER: 200},
    ),
    "unshare": (
        "post",
        "{pk}/unshare",
        {"user": "vera", "permission": "view"},
        {OWNER: 200, VIEWER: 403, CHANGER: 403, STRANGER: 404, SUPERUSER: 200},
    ),
}


@pytest.mark.parametrize("persona", [OWNER, VIEWER, CHANGER, STRANGER, SUPERUSER])
@pytest.mark.parametrize("route", list(API_MATRIX))
def test_each_persona_gets_what_its_access_allows_on_every_rule_route(people, shared_rule, route, persona):
    User.objects.create_user("extra", password="pw")
    method, suffix, body, expected = API_MATRIX[route]
    url = "/api/assignment-rules/" + suffix.format(pk=shared_rule.pk)
    client = client_for(people[persona])
    response = getattr(client, method)(url, body, format="json") if body else getattr(client, method)(url)
    assert response.status_code == expected[persona], response.content[:300]
    if route == "list":
        listed = {row["id"] for row in response.json()["results"]}
        assert (shared_rule.pk in listed) == (persona != STRANGER)
    if response.status_code >= 400:
        assert response.json().get("detail"), "a refusal says why"
        assert AssignmentRule.objects.filter(pk=shared_rule.pk, priority=shared_rule.priority).exists()


def test_a_manager_may_share_further_but_not_delete(people, shared_rule):
    share(shared_rule, people[STRANGER], Level.MANAGE)
    client = client_for(people[STRANGER])
    answer = client.post(
        f"/api/assignment-rules/{shared_rule.pk}/share",
        {"user": "chad", "permission": "manage"},
        format="json",
    )
    assert answer.status_code == 200
    assert level_held_by(shared_rule, people[CHANGER]) == Level.MANAGE
    assert client.delete(f"/api/assignment-rules/{shared_rule.pk}").status_code == 403


def test_a_rule_shared_with_a_group_reaches_its_members(people, shared_rule):
    teachers = Group.objects.create(name="teachers")
    people[STRANGER].groups.add(teachers)
    share(shared_rule, teachers, Level.VIEW)
    assert client_for(people[STRANGER]).get(f"/api/assignment-rules/{shared_rule.pk}").status_code == 200


def test_sharing_a_rule_with_its_owner_or_nobody_is_a_clear_400(people, shared_rule):
    client = client_for(people[OWNER])
    to_owner = client.post(
        f"/api/assignment-rules/{shared_rule.pk}/share",
        {"user": "olivia", "permission": "view"},
        format="json",
    )
    assert to_owner.status_code == 400 and "owns this" in to_owner.json()["user"][0]
    to_nobody = client.post(
        f"/api/assignment-rules/{shared_rule.pk}/share",
        {"user": "nobody", "permission": "view"},
        format="json",
    )
    assert to_nobody.status_code == 400 and "No user" in to_nobody.json()["user"][0]


def test_a_viewer_is_not_told_the_name_of_a_batch_they_may_not_see(people):
    private = make_batch(people[OWNER], jobs=0, name="Olivia's private batch")
    made = rule(people[OWNER], "Into my batch", 1, target_batch=private)
    share(made, people[VIEWER], Level.VIEW)
    body = client_for(people[VIEWER]).get(f"/api/assignment-rules/{made.pk}").json()
    assert body["target_batch"] == private.pk
    assert body["target_batch_name"] is None
    assert client_for(people[OWNER]).get(f"/api/assignment-rules/{made.pk}").json()["target_batch_name"] == (
        "Olivia's private batch"
    )


def test_a_changer_cannot_point_the_rule_at_a_batch_its_owner_may_not_change(people, shared_rule):
    chads = make_batch(people[CHANGER], jobs=0, name="Chad's batch")
    answer = client_for(people[CHANGER]).patch(
        f"/api/assignment-rules/{shared_rule.pk}", {"template": None, "target_batch": chads.pk}, format="json"
    )
    assert answer.status_code == 400 and "target_batch" in answer.json()


# --- what a shared rule does on the uploader's inbox ----------------------------------------------


def test_unsharing_a_rule_takes_effect_at_once(people, shared_rule):
    vera = people[VIEWER]
    used = post_inbox(vera, text_file("first.txt")).json()["documents"][0]
    assert used["outcome"] == "assigned" and used["rule"]["name"] == "Olivia's essays"
    assert JobBatch.objects.get(pk=used["batch"]["id"]).owner == vera

    unshare(shared_rule, vera, Level.VIEW)

    client = client_for(vera)
    assert client.get(f"/api/assignment-rules/{shared_rule.pk}").status_code == 404
    assert shared_rule.pk not in {row["id"] for row in client.get("/api/assignment-rules").json()["results"]}
    assert (
        client.patch(f"/api/assignment-rules/{shared_rule.pk}", {"priority": 2}, format="json").status_code
        == 404
    )
    refused = post_inbox(vera, text_file("second.txt")).json()["documents"][0]
    assert refused["outcome"] == "inbox" and refused["rule"] is None
    assert InboxItem.objects.of(vera).get().document.original_name == "second.txt"


def test_lowering_a_changer_to_view_refuses_their_next_change(people, shared_rule):
    chad = people[CHANGER]
    client = client_for(chad)
    assert (
        client.patch(f"/api/assignment-rules/{shared_rule.pk}", {"priority": 7}, format="json").status_code
        == 200
    )
    unshare(shared_rule, chad, Level.CHANGE)
    assert (
        client.patch(f"/api/assignment-rules/{shared_rule.pk}", {"priority": 9}, format="json").status_code
        == 403
    )
    shared_rule.refresh_from_db()
    assert shared_rule.priority == 7


def test_a_shared_rule_targeting_the_owners_batch_skips_for_an_uploader_who_cannot_change_it(people):
    olivia, vera = people[OWNER], people[VIEWER]
    hers = make_batch(olivia, jobs=0, name="Olivia's week 5")
    made = rule(olivia, "Into week 5", 1, target_batch=hers)
    share(made, vera, Level.CHANGE)  # change on the rule is not change on its batch
    share(hers, vera, Level.VIEW)

    document = post_inbox(vera, text_file("essay.txt")).json()["documents"][0]

    assert document["outcome"] == "inbox"
    assert "Skipped rule “Into week 5”" in document["notes"][0]
    assert "batch you may not change" in document["notes"][0]
    assert not GradingJob.objects.filter(batch=hers).exists()
    assert InboxItem.objects.of(vera).count() == 1


def test_the_skip_note_never_names_a_batch_the_uploader_may_not_see(people):
    olivia, vera = people[OWNER], people[VIEWER]
    hers = make_batch(olivia, jobs=0, name="Secret seminar")
    share(rule(olivia, "Into the seminar", 1, target_batch=hers), vera, Level.VIEW)
    answer = post_inbox(vera, text_file("essay.txt"))
    assert "Secret seminar" not in answer.content.decode()
    assert "Secret seminar" not in InboxItem.objects.of(vera).get().reason


def test_a_shared_rule_fills_the_owners_batch_for_an_uploader_who_may_change_it(people):
    olivia, chad = people[OWNER], people[CHANGER]
    hers = make_batch(olivia, jobs=0, name="Team marking", settings={"processing": {"auto_start": False}})
    share(rule(olivia, "Team essays", 1, target_batch=hers), chad, Level.VIEW)
    share(hers, chad, Level.CHANGE)

    document = post_inbox(chad, text_file("essay.txt")).json()["documents"][0]

    assert document["batch"]["id"] == hers.pk
    assert GradingJob.objects.get(batch=hers).owner == chad


def test_a_shared_template_rule_makes_batches_of_the_uploaders_own(people, shared_rule):
    vera, olivia = people[VIEWER], people[OWNER]
    # Drafts, so that a later upload the same day joins the batch made for it.
    AssignmentRule.objects.filter(pk=shared_rule.pk).update(auto_start=False)
    for_vera = post_inbox(vera, text_file("a.txt")).json()["documents"][0]["batch"]
    for_olivia = post_inbox(olivia, text_file("b.txt")).json()["documents"][0]["batch"]
    again_vera = post_inbox(vera, text_file("c.txt")).json()["documents"][0]["batch"]

    assert JobBatch.objects.get(pk=for_vera["id"]).owner == vera
    assert JobBatch.objects.get(pk=for_olivia["id"]).owner == olivia
    assert for_olivia["id"] != for_vera["id"]
    assert again_vera["id"] == for_vera["id"] and not again_vera["created"]
    assert RuleBatch.objects.filter(rule=shared_rule).count() == 2


def test_a_shared_rule_whose_template_the_uploader_may_not_use_is_skipped(people):
    olivia, vera = people[OWNER], people[VIEWER]
    hers = BatchTemplate.objects.create(
        name="Olivia's rubric",
        slug="olivias-rubric",
        default_settings=prebuilt().default_settings,
        owner=olivia,
    )
    share(rule(olivia, "Her rubric", 1, template=hers), vera, Level.VIEW)
    document = post_inbox(vera, text_file("essay.txt")).json()["documents"][0]
    assert document["outcome"] == "inbox"
    assert "template you may not use" in document["notes"][0]
    assert not JobBatch.objects.filter(owner=vera).exists()


def test_the_uploaders_own_rules_come_before_shared_ones(people, shared_rule):
    vera = people[VIEWER]
    own = make_batch(vera, jobs=0, name="Vera's own", settings={"processing": {"auto_start": False}})
    rule(vera, "Mine first", 1, target_batch=own)
    document = post_inbox(vera, text_file("essay.txt")).json()["documents"][0]
    assert document["rule"]["name"] == "Mine first"


def test_a_superusers_upload_runs_only_their_own_and_shared_rules(people, shared_rule):
    document = post_inbox(people[SUPERUSER], text_file("essay.txt")).json()["documents"][0]
    assert document["outcome"] == "inbox"


def test_an_inactive_shared_rule_does_not_run(people, shared_rule):
    AssignmentRule.objects.filter(pk=shared_rule.pk).update(is_active=False)
    assert post_inbox(people[VIEWER], text_file("essay.txt")).json()["documents"][0]["outcome"] == "inbox"


def test_listing_shared_rules_costs_the_same_queries_however_many_there_are(people):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    olivia, vera = people[OWNER], people[VIEWER]
    client = client_for(vera)

    def queries_for_listing(count: int) -> int:
        for i in range(count):
            hers = make_batch(olivia, jobs=0, name=f"Batch {i}")
            share(rule(olivia, f"Rule {i}", 10 + i, target_batch=hers), vera, Level.VIEW)
        with CaptureQueriesContext(connection) as captured:
            assert client.get("/api/assignment-rules").status_code == 200
        return len(captured.captured_queries)

    few, many = queries_for_listing(2), queries_for_listing(6)
    assert few == many

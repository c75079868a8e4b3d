"""Sharing assignment rules on /rules and in the admin, and what each person sees there."""

import pytest
from django.contrib.auth.models import User

from batches.models import AssignmentRule, JobBatch
from core.permissions import Level, level_held_by, level_of, share
from tests.conftest import make_batch, prebuilt
from tests.inbox_support import rule
from tests.web_support import messages_of

pytestmark = pytest.mark.django_db

OWNER, VIEWER, CHANGER, STRANGER, SUPERUSER = "owner", "viewer", "changer", "stranger", "superuser"


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


def edit_body(name: str = "Renamed") -> dict[str, str]:
    return {
        "name": name,
        "is_active": "on",
        "extensions": ".txt",
        "name_pattern_kind": "glob",
        "template": str(prebuilt().pk),
        "priority": "5",
    }


WEB_MATRIX = {
    # route: (method, path, body, {persona: status})
    "page": ("get", "edit", None, {OWNER: 200, VIEWER: 200, CHANGER: 200, STRANGER: 404, SUPERUSER: 200}),
    "save": (
        "post",
        "edit",
        edit_body,
        {OWNER: 302, VIEWER: 403, CHANGER: 302, STRANGER: 404, SUPERUSER: 302},
    ),
    "move": (
        "post",
        "move",
        {"direction": "up"},
        {OWNER: 302, VIEWER: 403, CHANGER: 302, STRANGER: 404, SUPERUSER: 302},
    ),
    "delete": ("post", "delete", {}, {OWNER: 302, VIEWER: 403, CHANGER: 403, STRANGER: 404, SUPERUSER: 302}),
    "share": (
        "post",
        "share",
        {"kind": "user", "name": "stella", "permission": "view"},
        {OWNER: 302, VIEWER: 403, CHANGER: 403, STRANGER: 404, SUPERUSER: 302},
    ),
    "unshare": (
        "post",
        "unshare",
        {"kind": "user", "name": "vera"},
        {OWNER: 302, VIEWER: 403, CHANGER: 403, STRANGER: 404, SUPERUSER: 302},
    ),
}


@pytest.mark.parametrize("persona", [OWNER, VIEWER, CHANGER, STRANGER, SUPERUSER])
@pytest.mark.parametrize("route", list(WEB_MATRIX))
def test_each_persona_gets_what_its_access_allows_on_every_rule_page(
    client, people, shared_rule, route, persona
):
    method, action, body, expected = WEB_MATRIX[route]
    client.force_login(people[persona])
    url = f"/rules/{shared_rule.pk}/{action}"
    body = body() if callable(body) else body
    response = client.get(url) if method == "get" else client.post(url, body)
    assert response.status_code == expected[persona]
    if response.status_code in (403, 404):
        assert AssignmentRule.objects.filter(pk=shared_rule.pk, name="Olivia's essays").exists()
    if response.status_code == 403:
        assert b"rule" in response.content  # the page says what is missing


def test_the_owner_shares_and_unshares_a_rule_on_its_page(client, people, shared_rule):
    client.force_login(people[OWNER])
    page = client.get(f"/rules/{shared_rule.pk}/edit")
    assert b'id="sharing"' in page.content and b"vera" in page.content

    shared = client.post(
        f"/rules/{shared_rule.pk}/share", {"kind": "user", "name": "stella", "permission": "change"}
    )
    assert shared.status_code == 302 and shared["Location"].endswith("#sharing")
    assert level_held_by(shared_rule, people[STRANGER]) == Level.CHANGE

    client.post(f"/rules/{shared_rule.pk}/unshare", {"kind": "user", "name": "stella"})
    assert level_of(people[STRANGER], shared_rule) is None
    assert client_get_status(people[STRANGER], f"/rules/{shared_rule.pk}/edit") == 404


def client_get_status(user, url: str) -> int:
    from django.test import Client

    other = Client()
    other.force_login(user)
    return other.get(url).status_code


def test_sharing_with_nobody_is_refused_beside_the_field(client, people, shared_rule):
    client.force_login(people[OWNER])
    response = client.post(
        f"/rules/{shared_rule.pk}/share", {"kind": "user", "name": "nobody", "permission": "view"}
    )
    assert response.status_code == 400
    assert "No user is called “nobody”" in response.content.decode()


def test_a_viewer_sees_the_rule_read_only_and_no_sharing_card(client, people, shared_rule):
    client.force_login(people[VIEWER])
    page = client.get(f"/rules/{shared_rule.pk}/edit").content.decode()
    assert "<bdi>olivia</bdi>'s rule, shared with you at view" in page
    assert "Save the rule" not in page and 'id="sharing"' not in page
    assert 'name="name" value="Olivia&#x27;s essays"' in page and "disabled" in page


def test_the_rules_page_lists_the_rules_shared_with_you(client, people, shared_rule):
    client.force_login(people[VIEWER])
    page = client.get("/rules").content.decode()
    assert 'id="shared-rules"' in page
    assert "Olivia&#x27;s essays" in page and "olivia" in page


def test_no_page_names_a_batch_of_the_owners_that_you_may_not_see(client, people):
    olivia, vera = people[OWNER], people[VIEWER]
    secret = make_batch(olivia, jobs=0, name="Secret seminar")
    make_batch(olivia, jobs=0, name="Another private batch")
    made = rule(olivia, "Into the seminar", 1, target_batch=secret)
    share(made, vera, Level.CHANGE)
    client.force_login(vera)
    for url in ("/rules", f"/rules/{made.pk}/edit", "/inbox"):
        page = client.get(url).content.decode()
        assert "Secret seminar" not in page and "Another private batch" not in page, url
    assert "Skipped for your uploads" in client.get("/rules").content.decode()


def test_a_changer_saves_the_owners_rule_without_seeing_its_batch(client, people):
    olivia, chad = people[OWNER], people[CHANGER]
    secret = make_batch(olivia, jobs=0, name="Secret seminar")
    made = rule(olivia, "Into the seminar", 1, target_batch=secret)
    share(made, chad, Level.CHANGE)
    client.force_login(chad)
    body = {**edit_body("Into the seminar, renamed"), "template": "", "target_batch": str(secret.pk)}
    response = client.post(f"/rules/{made.pk}/edit", body)
    assert response.status_code == 302, response.content.decode()[:2000]
    made.refresh_from_db()
    assert made.name == "Into the seminar, renamed" and made.target_batch_id == secret.pk
    assert messages_of(response)


# --- the admin ------------------------------------------------------------------------------------


def test_a_staff_owner_shares_a_rule_on_the_admins_permission_pages(client, staff_admin, colleague):
    mine = rule(staff_admin, "Sam's", 1, template=prebuilt())
    client.force_login(staff_admin)
    base = f"/admin/batches/assignmentrule/{mine.pk}/permissions/"
    assert client.get(base).status_code == 200
    response = client.post(f"{base}user-manage/{colleague.pk}/", {"permission": "change"})
    assert response.status_code == 302
    assert level_held_by(mine, colleague) == Level.CHANGE


def test_staff_see_rules_shared_with_them_in_the_admin_but_may_not_share_them(client, owner, staff_admin):
    theirs = rule(owner, "Olivia's", 1, template=prebuilt())
    share(theirs, staff_admin, Level.CHANGE)
    client.force_login(staff_admin)
    listed = client.get("/admin/batches/assignmentrule/").context["cl"].result_list
    assert [item.pk for item in listed] == [theirs.pk]
    assert client.get(f"/admin/batches/assignmentrule/{theirs.pk}/change/").status_code == 200
    assert client.get(f"/admin/batches/assignmentrule/{theirs.pk}/permissions/").status_code == 403


def test_the_admin_lists_only_the_batches_a_rule_made_that_the_reader_may_see(
    client, settings, tmp_path, staff_admin, colleague
):
    from tests.api_support import client_for
    from tests.inbox_support import text_file

    settings.MEDIA_ROOT = tmp_path / "media"
    mine = rule(
        staff_admin, "Sam's essays", 1, extensions=[".txt"], template=prebuilt(), batch_name="Colins {date}"
    )
    share(mine, colleague, Level.VIEW)
    made = client_for(colleague).post("/api/inbox", {"files": [text_file("essay.txt")]}, format="multipart")
    colins = JobBatch.objects.get(pk=made.json()["documents"][0]["batch"]["id"])
    assert colins.owner == colleague

    # Staff who may read the made-batches table in the admin see there only the batches they may view.
    from django.contrib.auth.models import Permission

    staff_admin.user_permissions.add(Permission.objects.get(codename="view_rulebatch"))
    own = client_for(staff_admin).post("/api/inbox", {"files": [text_file("mine.txt")]}, format="multipart")
    sams = JobBatch.objects.get(pk=own.json()["documents"][0]["batch"]["id"])
    client.force_login(staff_admin)
    page = client.get(f"/admin/batches/assignmentrule/{mine.pk}/change/").content.decode()
    assert "batches made by the rule" in page.lower()
    assert f"/admin/batches/jobbatch/{sams.pk}/" in page
    assert f"/admin/batches/jobbatch/{colins.pk}/" not in page

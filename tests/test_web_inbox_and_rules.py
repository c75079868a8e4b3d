"""The /inbox and /rules pages, and the upload step saying that grading will start by itself."""

from pathlib import Path

import pytest

from batches.models import AssignmentRule, BatchStatus, InboxItem, JobBatch
from core.permissions import Level, share
from grading.models import Document
from tests.conftest import make_batch, prebuilt
from tests.inbox_support import ESSAY, rule, stored_files, text_file, zip_of
from tests.web_support import messages_of

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media(settings, tmp_path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def signed_in(client, owner):
    client.force_login(owner)
    return client


def test_the_inbox_page_runs_the_rules_and_shows_where_each_document_went(signed_in, owner):
    target = make_batch(owner, prebuilt("research-paper"), jobs=0, name="Papers")
    rule(owner, "Essays to papers", 1, name_pattern="*essay*", target_batch=target)
    archive = zip_of("set.zip", {"ada-essay.txt": ESSAY, "notes.txt": "Short notes."})
    response = signed_in.post("/inbox", {"files": [archive]})
    assert response.status_code == 200
    html = response.content.decode()
    assert "Where each document went" in html
    assert "Papers" in html and "Kept in the inbox" in html
    assert target.jobs.count() == 1
    assert "1 document assigned to batches; 1 kept in the inbox." in messages_of(response)
    # The one no rule took waits on the page.
    assert "notes.txt" in signed_in.get("/inbox").content.decode()


def test_trying_the_rules_on_the_page_stores_nothing(signed_in, owner, media):
    rule(owner, "Per class", 1, template=prebuilt("academic-essay"), group_by=r"^(\w+)_")
    response = signed_in.post("/inbox", {"files": [text_file("7a_ada.txt")], "dry_run": "on"})
    html = response.content.decode()
    assert "Where each document would go" in html and "Academic Essay Grading – 7a" in html
    assert not Document.objects.exists() and not JobBatch.objects.exists() and stored_files(media) == []


def test_a_refused_inbox_upload_lists_each_problem(signed_in):
    response = signed_in.post("/inbox", {"files": [text_file("virus.exe")]})
    assert response.status_code == 400
    assert "Unsupported file types: virus.exe" in response.content.decode()


def test_inbox_documents_are_assigned_and_discarded_on_the_page(signed_in, owner):
    signed_in.post("/inbox", {"files": [text_file("a.txt"), text_file("b.txt")]})
    first, second = InboxItem.objects.of(owner).order_by("pk")
    draft = make_batch(owner, prebuilt("research-paper"), jobs=0, name="Drafts")
    page = signed_in.get("/inbox").content.decode()
    assert f'<option value="{draft.pk}">Drafts</option>' in page
    response = signed_in.post("/inbox/assign", {"batch": draft.pk, "documents": [first.pk]})
    assert response.status_code == 302 and draft.jobs.count() == 1
    assert "Added 1 document to “Drafts”." in messages_of(response)
    signed_in.post(f"/inbox/{second.pk}/discard")
    assert not InboxItem.objects.of(owner).exists()


def test_someone_elses_inbox_is_not_reachable(client, owner, stranger):
    client.force_login(owner)
    client.post("/inbox", {"files": [text_file("a.txt")]})
    item = InboxItem.objects.get()
    client.force_login(stranger)
    assert "a.txt" not in client.get("/inbox").content.decode()
    client.post(f"/inbox/{item.pk}/discard")
    assert InboxItem.objects.filter(pk=item.pk).exists()


# --- rules ------------------------------------------------------------------------------------


def rule_form(**fields):
    return {"name": "Rule", "name_pattern_kind": "glob", "priority": 5, "auto_start": "", **fields}


def test_a_rule_is_added_on_the_page(signed_in, owner):
    response = signed_in.post(
        "/rules/new",
        rule_form(
            name="Per class",
            extensions=".TXT, md",
            template=prebuilt().pk,
            group_by=r"^(\w+)_",
            batch_name="{template} – {group}",
            min_size_kb=1,
            auto_start="no",
            is_active="on",
        ),
    )
    assert response.status_code == 302, response.content.decode()
    made = AssignmentRule.objects.get()
    assert made.extensions == [".txt", ".md"] and made.min_size == 1024 and made.auto_start is False
    assert "Per class" in signed_in.get("/rules").content.decode()


def test_a_rule_targeting_a_batch_the_owner_may_not_change_is_refused_on_its_field(signed_in, colleague):
    theirs = make_batch(colleague, jobs=0, name="Colin's")
    response = signed_in.post("/rules/new", rule_form(target_batch=theirs.pk))
    assert response.status_code == 400
    assert not AssignmentRule.objects.exists()
    assert "target_batch" in response.context["form"].errors


def test_rules_are_moved_edited_and_deleted(signed_in, owner):
    first = rule(owner, "First", 1, template=prebuilt())
    second = rule(owner, "Second", 2, template=prebuilt())
    signed_in.post(f"/rules/{second.pk}/move", {"direction": "up"})
    assert list(AssignmentRule.objects.filter(owner=owner).in_order().values_list("name", flat=True)) == [
        "Second",
        "First",
    ]
    page = signed_in.get(f"/rules/{first.pk}/edit").content.decode()
    assert 'value="First"' in page
    response = signed_in.post(
        f"/rules/{first.pk}/edit", rule_form(name="Renamed", template=prebuilt().pk, is_active="on")
    )
    assert response.status_code == 302
    assert AssignmentRule.objects.get(pk=first.pk).name == "Renamed"
    signed_in.post(f"/rules/{first.pk}/delete")
    assert list(AssignmentRule.objects.values_list("name", flat=True)) == ["Second"]


@pytest.mark.parametrize("direction", ["sideways", "", "UP"])
def test_a_move_in_no_known_direction_is_a_400_that_leaves_the_order(signed_in, owner, direction):
    rule(owner, "First", 1, template=prebuilt())
    second = rule(owner, "Second", 2, template=prebuilt())
    rule(owner, "Third", 3, template=prebuilt())

    response = signed_in.post(f"/rules/{second.pk}/move", {"direction": direction})

    assert response.status_code == 400
    assert "Move a rule “up” or “down”" in response.content.decode()
    names = AssignmentRule.objects.filter(owner=owner).in_order().values_list("name", flat=True)
    assert list(names) == ["First", "Second", "Third"]


def test_a_strangers_rules_are_a_404(client, owner, stranger):
    made = rule(owner, "Olivia's", 1, template=prebuilt())
    client.force_login(stranger)
    assert client.get(f"/rules/{made.pk}/edit").status_code == 404
    assert client.post(f"/rules/{made.pk}/delete").status_code == 404
    assert "Olivia's" not in client.get("/rules").content.decode()


# --- the upload step says what will happen ----------------------------------------------------


def test_the_upload_step_says_grading_will_start_by_itself(signed_in, owner):
    essays = make_batch(owner, prebuilt("academic-essay"), jobs=0)
    papers = make_batch(owner, prebuilt("research-paper"), jobs=0)
    assert "Grading starts by itself" in signed_in.get(f"/batches/{essays.pk}/documents").content.decode()
    assert "Grading starts by itself" not in signed_in.get(f"/batches/{papers.pk}/documents").content.decode()
    response = signed_in.post(f"/batches/{essays.pk}/upload", {"files": [text_file("a.txt")]})
    assert "Grading has started" in " ".join(messages_of(response))
    assert JobBatch.objects.get(pk=essays.pk).status == BatchStatus.PENDING


def test_the_navigation_leads_to_the_inbox_and_the_queue(signed_in):
    html = signed_in.get("/batches").content.decode()
    assert 'href="/inbox"' in html and 'href="/queue"' in html


def test_deleting_a_template_or_batch_a_rule_sends_to_names_the_rule_that_will_stop_working(
    signed_in, owner, stranger
):
    template = prebuilt().copy_for(owner, name="Lab reports")
    draft = make_batch(owner, jobs=0, name="Week 9 drafts")
    rule(owner, "Labs by class", 1, template=template)
    rule(owner, "Drafts in", 2, target_batch=draft)
    share(template, stranger, Level.VIEW)
    rule(stranger, "Stella's private rule", 1, template=template)

    template_page = signed_in.get(f"/templates/{template.pk}/delete").content.decode()
    batch_page = signed_in.get(f"/batches/{draft.pk}/delete").content.decode()

    assert "Your rule “Labs by class” makes its batches from this template" in template_page
    assert "and 1 rule of another user" in template_page
    assert "Stella" not in template_page  # another user's rule is counted, never named
    assert "Your rule “Drafts in” sends documents to this batch" in batch_page

"""Assignment rules: what they look at, how they are checked when saved, and /api/assignment-rules."""

import io
import zipfile

import pytest

from batches.rule_models import AssignmentRule
from batches.rules import (
    DOCX_TYPE,
    Candidate,
    PatternError,
    compile_pattern,
    detect_content_type,
    document_kind,
    group_of,
)
from core.permissions import Level, share
from templates_app.models import BatchTemplate
from tests.api_support import client_for
from tests.conftest import make_batch, prebuilt
from tests.inbox_support import ESSAY, PAPER, PDF_BYTES, REPORT, rule

pytestmark = pytest.mark.django_db

# --- what a rule sees ------------------------------------------------------------------------


def docx_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", "<w:document/>")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("name", "data", "expected"),
    [
        ("a.pdf", PDF_BYTES, "application/pdf"),
        ("renamed.txt", PDF_BYTES, "application/pdf"),  # the bytes decide, not the name
        ("a.docx", docx_bytes(), DOCX_TYPE),
        ("a.txt", "Une rédaction.".encode(), "text/plain"),
        ("a.md", b"# Title\n\nText.", "text/markdown"),
        ("a.txt", b"\x00\x01\x02binary", "application/octet-stream"),
    ],
)
def test_the_content_type_is_detected_from_the_bytes(name, data, expected):
    assert detect_content_type(name, data) == expected


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        (ESSAY, "essay"),
        (REPORT, "report"),
        (PAPER, "paper"),
        ("Too short to tell.", ""),
        ("# Notes\n\n" + "\n".join(f"Heading {i}\n\nA line of words here." for i in range(10)), ""),
    ],
)
def test_the_document_kind_comes_from_headings_and_length(text, kind):
    assert document_kind(text) == kind


def test_a_long_text_with_one_paper_heading_is_a_paper():
    long = "Abstract: " + "We studied many things at length. " * 600
    assert document_kind(long) == "paper"


def test_numbered_and_markdown_headings_count():
    text = "# 1. Executive Summary\n\n" + "Revenue rose in every region over the year. " * 30
    assert document_kind(text) == "report"


def candidate(name="7a_ada.txt", text=ESSAY, size=None):
    data = text.encode()
    return Candidate.of(name, data if size is None else data[:size], text)


def test_every_condition_set_must_hold(owner):
    conditions = {
        "extensions": [".txt"],
        "content_types": ["text/*"],
        "name_pattern": r"^\d+a_",
        "name_pattern_kind": "regex",
        "min_size": 100,
        "max_size": 100_000,
        "contains": "EVERY   district",  # case and spacing aside
        "document_kind": "essay",
    }
    made = AssignmentRule(owner=owner, name="r", **conditions)
    assert made.conditions_hold(candidate())
    for change in (
        {"extensions": [".md"]},
        {"content_types": ["application/pdf"]},
        {"name_pattern": r"^\d+b_"},
        {"min_size": 10**6},
        {"max_size": 10},
        {"contains": "no such phrase"},
        {"document_kind": "report"},
    ):
        changed = AssignmentRule(owner=owner, name="r", **{**conditions, **change})
        assert not changed.conditions_hold(candidate()), change


def test_contains_reads_only_the_opening_of_the_text(owner):
    text = "x " * 1500 + "hidden phrase"
    made = AssignmentRule(owner=owner, name="r", contains="hidden phrase")
    assert not made.conditions_hold(candidate(text=text))
    assert made.conditions_hold(candidate(text="hidden phrase " + text))


def test_globs_ignore_case_and_groups_come_from_the_name():
    made = AssignmentRule(name="r", name_pattern="*_ESSAY.*")
    assert made.conditions_hold(candidate("7a_essay.txt"))
    assert group_of(r"^(\w+)_", "history_ada.txt") == "history"
    assert group_of(r"^[a-z]+", "maths-bo.txt") == "maths"
    assert group_of(r"^(\w+)_", "nogroup.txt") == "ungrouped"


def test_patterns_that_could_run_away_are_refused():
    with pytest.raises(PatternError):
        compile_pattern(r"^(a+)+$")
    with pytest.raises(PatternError):
        compile_pattern(r"([a-z]*)*x")
    with pytest.raises(PatternError):
        compile_pattern("(unclosed")
    assert compile_pattern(r"^(\w+)_").search("7a_ada.txt")


# --- checks when saved ------------------------------------------------------------------------


def test_a_rule_needs_exactly_one_target(owner):
    assert "target_batch" in AssignmentRule(owner=owner, name="r").problems()
    both = AssignmentRule(owner=owner, name="r", template=prebuilt(), target_batch=make_batch(owner, jobs=0))
    assert "template" in both.problems()


def test_group_placeholder_needs_a_group_pattern(owner):
    made = AssignmentRule(owner=owner, name="r", template=prebuilt(), batch_name="{template} – {group}")
    assert "batch_name" in made.problems()
    made.group_by = r"^(\w+)_"
    assert made.problems() == {}
    made.batch_name = "{nonsense}"
    assert "batch_name" in made.problems()


def test_a_fallback_has_no_conditions_and_there_is_one(owner):
    rule(owner, "First fallback", 1, is_fallback=True, template=prebuilt())
    second = AssignmentRule(owner=owner, name="Second", is_fallback=True, template=prebuilt())
    assert "is_fallback" in second.problems()
    with_conditions = AssignmentRule(
        owner=owner, name="x", is_fallback=True, template=prebuilt(), contains="a"
    )
    assert "is_fallback" in with_conditions.problems()


# --- the API ----------------------------------------------------------------------------------


def test_rules_are_created_listed_in_order_and_changed(owner):
    client = client_for(owner)
    batch = make_batch(owner, jobs=0, name="Target")
    first = client.post(
        "/api/assignment-rules",
        {"name": "PDFs", "extensions": ["PDF", ".docx"], "target_batch": batch.pk},
        format="json",
    )
    assert first.status_code == 201, first.json()
    assert first.json()["extensions"] == [".pdf", ".docx"]
    assert first.json()["position"] == 1 and first.json()["target_batch_name"] == "Target"
    second = client.post(
        "/api/assignment-rules",
        {"name": "Per class", "template": "academic-essay", "group_by": r"^(\w+)_", "tags": ["a", "a"]},
        format="json",
    )
    assert second.status_code == 201, second.json()
    assert second.json()["position"] == 2 and second.json()["tags"] == ["a"]
    client.patch(f"/api/assignment-rules/{second.json()['id']}", {"position": 0}, format="json")
    listed = client.get("/api/assignment-rules").json()["results"]
    assert [item["name"] for item in listed] == ["Per class", "PDFs"]
    assert client.delete(f"/api/assignment-rules/{first.json()['id']}").status_code == 204


def test_a_rule_targeting_a_batch_its_owner_cannot_change_is_refused(owner, colleague):
    theirs = make_batch(colleague, jobs=0, name="Colin's")
    client = client_for(owner)
    body = {"name": "Into Colin's", "target_batch": theirs.pk}
    response = client.post("/api/assignment-rules", body, format="json")
    assert response.status_code == 400
    assert "target_batch" in response.json()  # not visible: not found, naming the field
    share(theirs, owner, Level.VIEW)
    response = client.post("/api/assignment-rules", body, format="json")
    assert response.status_code == 400
    assert "may not change" in response.json()["target_batch"][0]
    share(theirs, owner, Level.CHANGE)
    assert client.post("/api/assignment-rules", body, format="json").status_code == 201
    assert not AssignmentRule.objects.exclude(target_batch=theirs).exists()


def test_a_rule_may_use_only_templates_its_owner_may_view(owner, colleague):
    private = BatchTemplate.objects.create(
        name="Colin's rubric", slug="colins", default_settings=prebuilt().default_settings, owner=colleague
    )
    client = client_for(owner)
    response = client.post("/api/assignment-rules", {"name": "r", "template": private.pk}, format="json")
    assert response.status_code == 400 and "template" in response.json()
    share(private, owner, Level.VIEW)
    assert (
        client.post("/api/assignment-rules", {"name": "r", "template": "colins"}, format="json").status_code
        == 201
    )


def test_a_superuser_editing_someone_elses_rule_is_held_to_the_owners_access(owner, superuser, colleague):
    made = rule(owner, "Olivia's", 1, template=prebuilt())
    theirs = make_batch(colleague, jobs=0)
    response = client_for(superuser).patch(
        f"/api/assignment-rules/{made.pk}", {"template": None, "target_batch": theirs.pk}, format="json"
    )
    assert response.status_code == 400 and "target_batch" in response.json()
    assert made.pk in [r["id"] for r in client_for(superuser).get("/api/assignment-rules").json()["results"]]


def test_rules_are_their_owners_alone(owner, stranger):
    made = rule(owner, "Olivia's", 1, template=prebuilt())
    client = client_for(stranger)
    assert client.get("/api/assignment-rules").json()["results"] == []
    assert client.get(f"/api/assignment-rules/{made.pk}").status_code == 404
    assert client.delete(f"/api/assignment-rules/{made.pk}").status_code == 404


def test_invalid_patterns_and_sizes_are_refused_by_field(owner):
    client = client_for(owner)
    body = {
        "name": "r",
        "template": "academic-essay",
        "name_pattern": "(a+)+",
        "name_pattern_kind": "regex",
        "min_size": 10,
        "max_size": 5,
        "content_types": ["not a type"],
    }
    errors = client.post("/api/assignment-rules", body, format="json").json()
    assert {"name_pattern", "max_size", "content_types"} <= set(errors)
    assert client.post("/api/assignment-rules", {"name": "r", "bogus": 1}, format="json").status_code == 400


# --- the admin --------------------------------------------------------------------------------


def test_staff_see_and_add_only_their_own_rules_in_the_admin(client, owner, staff_admin, superuser):
    theirs = rule(owner, "Olivia's", 1, template=prebuilt())
    mine = rule(staff_admin, "Sam's", 1, template=prebuilt())
    client.force_login(staff_admin)
    listed = client.get("/admin/batches/assignmentrule/").context["cl"].result_list
    assert [item.pk for item in listed] == [mine.pk]
    assert client.get(f"/admin/batches/assignmentrule/{theirs.pk}/change/").status_code in (302, 403, 404)
    olivias_batch = make_batch(owner, jobs=0)
    response = client.post(
        "/admin/batches/assignmentrule/add/",
        {
            "name": "Into Olivia's",
            "position": 2,
            "is_active": "on",
            "extensions": "[]",
            "content_types": "[]",
            "name_pattern_kind": "glob",
            "target_batch": olivias_batch.pk,
            "priority": 5,
            "tags": "[]",
            "made_batches-TOTAL_FORMS": 0,
            "made_batches-INITIAL_FORMS": 0,
        },
    )
    assert response.status_code == 200  # the form again, with the batch refused
    assert not AssignmentRule.objects.filter(name="Into Olivia's").exists()
    client.force_login(superuser)
    assert client.get("/admin/batches/assignmentrule/").status_code == 200
    assert client.get("/admin/batches/inboxitem/").status_code == 200

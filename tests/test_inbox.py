"""The inbox: one upload, and the uploader's rules send each document to its batch; the rest wait."""

from pathlib import Path

import pytest
from django.utils import timezone

from batches.models import BatchStatus, InboxItem, JobBatch, RuleBatch
from core.permissions import Level, share, unshare
from grading.models import Document, GradingJob
from tests.api_support import client_for
from tests.conftest import make_batch, prebuilt
from tests.inbox_support import ESSAY, PAPER, PDF_BYTES, REPORT, rule, stored_files, text_file, zip_of

pytestmark = pytest.mark.django_db

SHOPPING = "Milk, bread, eggs.\n"


@pytest.fixture(autouse=True)
def media(settings, tmp_path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def reports(owner) -> JobBatch:
    return make_batch(owner, prebuilt("business-report"), jobs=0, name="Q3 reports")


@pytest.fixture
def scans(owner) -> JobBatch:
    return make_batch(owner, prebuilt("research-paper"), jobs=0, name="Scanned papers")


@pytest.fixture
def three_rules(owner, reports, scans):
    """Reports by their kind to one batch; essays by name, one new batch per class; PDFs to another batch."""
    return [
        rule(owner, "Reports", 1, document_kind="report", target_batch=reports),
        rule(
            owner,
            "Essays per class",
            2,
            extensions=[".txt"],
            name_pattern="*_*.txt",
            template=prebuilt("academic-essay"),
            group_by=r"^(\w+)_",
            batch_name="{template} – {group} – {date}",
            priority=7,
            tags=["essays"],
            deadline_days=7,
        ),
        rule(owner, "PDFs", 3, content_types=["application/pdf"], target_batch=scans),
    ]


def mixed_zip():
    return zip_of(
        "term.zip",
        {
            "7a_ada.txt": ESSAY,
            "7a_bo.txt": ESSAY.replace("Parks", "Gardens"),
            "7b_cy.txt": ESSAY.replace("Parks", "Rivers"),
            "north-region.md": REPORT,
            "scan.pdf": PDF_BYTES,
            "shopping.txt": SHOPPING,
            "soil.md": PAPER,
        },
    )


def post_inbox(user, *files, dry_run: bool = False):
    url = "/api/inbox?dry_run=true" if dry_run else "/api/inbox"
    return client_for(user).post(url, {"files": list(files)}, format="multipart")


def where(body) -> dict[str, str | None]:
    return {doc["name"]: (doc["batch"]["name"] if doc["batch"] else None) for doc in body["documents"]}


def test_a_mixed_zip_lands_each_document_in_its_batch_and_keeps_the_rest_in_the_inbox(
    owner, reports, scans, three_rules
):
    response = post_inbox(owner, mixed_zip())
    assert response.status_code == 201, response.content
    body = response.json()
    today = timezone.localdate().isoformat()
    class_7a, class_7b = (f"Academic Essay Grading – {group} – {today}" for group in ("7a", "7b"))
    assert where(body) == {
        "7a_ada.txt": class_7a,
        "7a_bo.txt": class_7a,
        "7b_cy.txt": class_7b,
        "north-region.md": "Q3 reports",
        "scan.pdf": "Scanned papers",
        "shopping.txt": None,
        "soil.md": None,
    }
    rules_by_name = {doc["name"]: doc["rule"] and doc["rule"]["name"] for doc in body["documents"]}
    assert rules_by_name["north-region.md"] == "Reports"
    assert rules_by_name["7b_cy.txt"] == "Essays per class"
    assert rules_by_name["scan.pdf"] == "PDFs"
    assert {doc["name"]: doc["kind"] for doc in body["documents"]}["soil.md"] == "paper"
    assert body["kept_in_inbox"] == 2

    # Every assigned document is a job of its batch (via JobBatch.add_documents).
    for name, batch_name in where(body).items():
        document = Document.objects.get(original_name=name)
        if batch_name is None:
            assert not document.jobs.exists()
            assert InboxItem.objects.filter(document=document, owner=owner).exists()
        else:
            assert list(document.jobs.values_list("batch__name", flat=True)) == [batch_name]

    # One new batch per class, made from the template with the rule's priority, tags and deadline.
    made = JobBatch.objects.filter(name__in=[class_7a, class_7b]).order_by("name")
    assert [batch.jobs.count() for batch in made] == [2, 1]
    for batch in made:
        assert batch.template.slug == "academic-essay"
        assert batch.owner == owner and batch.priority == 7 and batch.tags == ["essays"]
        assert batch.deadline is not None and 6 < (batch.deadline - timezone.now()).days + 1 <= 7
        assert RuleBatch.objects.get(batch=batch).rule == three_rules[1]
    assert {b["name"]: b["created"] for b in body["batches"]} == {
        class_7a: True,
        class_7b: True,
        "Q3 reports": False,
        "Scanned papers": False,
    }

    # The unmatched ones wait in the inbox, listed with the reason.
    listed = client_for(owner).get("/api/inbox").json()["results"]
    assert sorted(item["name"] for item in listed) == ["shopping.txt", "soil.md"]
    assert all(item["reason"].startswith("No rule matched") for item in listed)


def test_grading_starts_by_itself_where_the_batches_rules_say_so(owner, reports, scans, three_rules):
    body = post_inbox(owner, mixed_zip()).json()
    started = {b["name"]: b["started"] for b in body["batches"]}
    # Essays and reports start (their pre-built templates say auto_start); research papers wait.
    assert started["Q3 reports"] is True
    assert started["Scanned papers"] is False
    assert all(value for name, value in started.items() if name.startswith("Academic Essay"))
    assert JobBatch.objects.get(pk=reports.pk).status == BatchStatus.PENDING
    assert JobBatch.objects.get(pk=scans.pk).status == BatchStatus.DRAFT


def test_a_later_upload_the_same_day_joins_the_class_batch_while_it_is_a_draft(owner):
    template = prebuilt("research-paper")  # no auto_start: the batch stays a draft
    rule(owner, "Per class", 1, template=template, group_by=r"^(\w+)_")
    post_inbox(owner, text_file("7a_ada.txt"))
    post_inbox(owner, text_file("7a_bo.txt"))
    made = JobBatch.objects.get(made_by_rule__group="7a")
    assert made.jobs.count() == 2


def test_a_dry_run_stores_nothing_and_says_where_each_document_would_go(owner, three_rules, media):
    before = (Document.objects.count(), GradingJob.objects.count(), JobBatch.objects.count())
    response = post_inbox(owner, mixed_zip(), dry_run=True)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["dry_run"] is True
    assert where(body)["7b_cy.txt"].endswith("– 7b – " + timezone.localdate().isoformat())
    assert where(body)["shopping.txt"] is None
    assert all(doc["document"] is None and doc["jobs"] == [] for doc in body["documents"])
    new = [b for b in body["batches"] if b["created"]]
    assert len(new) == 2 and all(b["id"] is None for b in new)
    assert (Document.objects.count(), GradingJob.objects.count(), JobBatch.objects.count()) == before
    assert InboxItem.objects.count() == 0 and RuleBatch.objects.count() == 0
    assert stored_files(media) == []


def test_a_refused_upload_stores_nothing(owner, three_rules, media, settings):
    settings.MAX_DOCUMENT_MB = 1
    big = text_file("7a_huge.txt", "x" * (2 * 1024 * 1024))
    response = post_inbox(owner, big, text_file("7a_ok.txt"))
    assert response.status_code == 400
    assert "7a_huge.txt" in response.json()["files"][0]
    assert Document.objects.count() == 0 and stored_files(media) == []


def test_with_no_rules_everything_waits_in_the_inbox(owner):
    body = post_inbox(owner, text_file("a.txt"), text_file("b.txt")).json()
    assert [doc["outcome"] for doc in body["documents"]] == ["inbox", "inbox"]
    assert InboxItem.objects.of(owner).count() == 2


def test_the_fallback_takes_what_no_other_rule_took(owner, reports):
    rule(owner, "Everything else", 1, is_fallback=True, target_batch=reports)
    rule(owner, "Essays", 2, document_kind="essay", template=prebuilt("research-paper"))
    body = post_inbox(owner, text_file("essay.txt"), text_file("list.txt", SHOPPING)).json()
    assert {d["name"]: d["rule"]["name"] for d in body["documents"]} == {
        "essay.txt": "Essays",
        "list.txt": "Everything else",
    }


def test_a_rule_whose_owner_lost_access_is_skipped_at_run_time(owner, colleague):
    theirs = make_batch(colleague, prebuilt("research-paper"), jobs=0, name="Colin's batch")
    share(theirs, owner, Level.CHANGE)
    rule(owner, "Into Colin's", 1, target_batch=theirs)
    unshare(theirs, owner, Level.CHANGE)
    body = post_inbox(owner, text_file("essay.txt")).json()
    document = body["documents"][0]
    assert document["outcome"] == "inbox"
    assert "Skipped rule “Into Colin's”" in document["notes"][0]
    assert not GradingJob.objects.filter(batch=theirs).exists()
    assert "may no longer change" in InboxItem.objects.get().reason


def test_a_rule_whose_batch_is_running_is_skipped_and_the_next_one_tried(owner, reports):
    running = make_batch(owner, prebuilt("research-paper"), jobs=1, name="Running")
    running.start_batch()
    rule(owner, "Into the running one", 1, target_batch=running)
    rule(owner, "Then reports", 2, target_batch=reports)
    document = post_inbox(owner, text_file("essay.txt")).json()["documents"][0]
    assert document["batch"]["name"] == "Q3 reports"
    assert "takes no documents" in document["notes"][0]


def test_rules_of_other_users_never_run(owner, stranger, reports):
    rule(owner, "Olivia's", 1, target_batch=reports)
    body = post_inbox(stranger, text_file("essay.txt")).json()
    assert body["documents"][0]["outcome"] == "inbox"
    assert not reports.jobs.exists()


# --- by hand --------------------------------------------------------------------------------


def test_inbox_documents_are_assigned_by_hand_to_a_batch(owner, colleague):
    post_inbox(owner, text_file("a.txt"), text_file("b.txt"), text_file("c.txt"))
    target = make_batch(owner, prebuilt("research-paper"), jobs=0, name="By hand")
    first = InboxItem.objects.of(owner).order_by("created_at", "pk").first()
    response = client_for(owner).post(
        "/api/inbox/assign", {"batch": target.pk, "documents": [first.pk]}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["documents"] == [first.pk]
    assert target.jobs.count() == 1 and InboxItem.objects.of(owner).count() == 2

    response = client_for(owner).post("/api/inbox/assign", {"batch": target.pk}, format="json")
    assert response.status_code == 200
    assert target.jobs.count() == 3 and InboxItem.objects.of(owner).count() == 0

    response = client_for(owner).post("/api/inbox/assign", {"batch": target.pk}, format="json")
    assert response.status_code == 400
    assert "documents" in response.json()


def test_assigning_by_hand_follows_the_batchs_sharing_and_state(owner, colleague, stranger):
    post_inbox(owner, text_file("a.txt"))
    theirs = make_batch(colleague, prebuilt("research-paper"), jobs=0, name="Colin's")
    client = client_for(owner)
    assert client.post("/api/inbox/assign", {"batch": theirs.pk}, format="json").status_code == 404
    share(theirs, owner, Level.VIEW)
    assert client.post("/api/inbox/assign", {"batch": theirs.pk}, format="json").status_code == 403
    share(theirs, owner, Level.CHANGE)
    theirs.add_documents(
        [Document.objects.create(owner=colleague, original_name="x.txt", size=1, sha256="0")]
    )
    theirs.start_batch()
    assert client.post("/api/inbox/assign", {"batch": theirs.pk}, format="json").status_code == 409
    other = InboxItem.objects.of(owner).get()
    stranger_batch = make_batch(stranger, prebuilt("research-paper"), jobs=0)
    response = client_for(stranger).post(
        "/api/inbox/assign", {"batch": stranger_batch.pk, "documents": [other.pk]}, format="json"
    )
    assert response.status_code == 404  # not in the stranger's inbox


def test_assigning_into_an_auto_start_draft_starts_it(owner):
    post_inbox(owner, text_file("a.txt"))
    essays = make_batch(owner, prebuilt("academic-essay"), jobs=0, name="Essays")
    body = client_for(owner).post("/api/inbox/assign", {"batch": essays.pk}, format="json").json()
    assert body["started"] is True
    assert JobBatch.objects.get(pk=essays.pk).status == BatchStatus.PENDING


def test_a_document_is_discarded_from_the_inbox_with_its_file(
    owner, stranger, media, django_capture_on_commit_callbacks
):
    post_inbox(owner, text_file("a.txt"))
    item = InboxItem.objects.get()
    assert len(stored_files(media)) == 1
    assert client_for(stranger).delete(f"/api/inbox/{item.pk}").status_code == 404
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(owner).delete(f"/api/inbox/{item.pk}")
    assert response.status_code == 204
    assert not Document.objects.exists() and stored_files(media) == []


def test_a_document_attached_elsewhere_leaves_the_inbox_list(owner):
    post_inbox(owner, text_file("a.txt"))
    item = InboxItem.objects.get()
    batch = make_batch(owner, prebuilt("research-paper"), jobs=0)
    client_for(owner).post(f"/api/batches/{batch.pk}/jobs", {"documents": [item.pk]}, format="json")
    assert client_for(owner).get("/api/inbox").json()["results"] == []

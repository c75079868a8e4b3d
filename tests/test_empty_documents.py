"""Documents with nothing to grade are refused at upload, and retrying skips what cannot succeed.

An empty file, or one whose text is only whitespace once extracted, is
refused by name as an unsupported type is, and the whole upload stores
nothing. "Retry failed" re-queues only jobs whose document can be graded: a
document whose text could not be extracted, or that has none, is skipped and
said so, in the web's message and the API's `report`.
"""

import io
import zipfile
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from batches.models import BatchStatus, JobBatch
from grading.models import Document, GradingJob, JobStatus
from tests.api_support import client_for
from tests.conftest import make_batch, make_document, set_status
from tests.web_support import messages_of

pytestmark = pytest.mark.django_db

ESSAY = b"Parks make cities better because they give people room to breathe."


@pytest.fixture(autouse=True)
def media(settings, tmp_path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def draft(owner, essay_template) -> JobBatch:
    return make_batch(
        owner, essay_template, jobs=0, name="Term 1", settings={"processing": {"auto_start": False}}
    )


def text_file(name: str, data: bytes = ESSAY) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="text/plain")


def zip_of(entries: dict[str, bytes]) -> SimpleUploadedFile:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return SimpleUploadedFile("class.zip", buffer.getvalue(), content_type="application/zip")


def nothing_stored(batch: JobBatch, media: Path) -> bool:
    files = [path for path in media.rglob("*") if path.is_file()] if media.exists() else []
    return not Document.objects.exists() and not batch.jobs.exists() and not files


# --- upload -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "data", "problem"),
    [
        ("empty.txt", b"", "“empty.txt” is empty (0 bytes): it has no text to grade."),
        ("blank.txt", b"  \n\t\n   ", "“blank.txt” contains no text to grade."),
        ("blank.md", b"\n\n", "“blank.md” contains no text to grade."),
    ],
)
def test_the_api_refuses_an_empty_document_by_name_and_stores_nothing(
    owner, draft, media, name, data, problem
):
    response = client_for(owner).post(
        f"/api/batches/{draft.pk}/documents",
        {"files": [text_file("good.txt"), text_file(name, data)]},
        format="multipart",
    )
    assert response.status_code == 400
    assert response.json()["files"] == [problem]
    assert nothing_stored(draft, media)


def test_an_empty_entry_of_a_zip_is_named(owner, draft, media):
    response = client_for(owner).post(
        f"/api/batches/{draft.pk}/documents",
        {"files": [zip_of({"ok.txt": ESSAY, "blank.txt": b"   ", "zero.txt": b""})]},
        format="multipart",
    )
    assert response.status_code == 400
    problems = response.json()["files"]
    assert "“class.zip: zero.txt” is empty (0 bytes): it has no text to grade." in problems
    assert nothing_stored(draft, media)
    # The blank entry is named once the zero-byte one is gone (it needs its text extracted first).
    response = client_for(owner).post(
        f"/api/batches/{draft.pk}/documents",
        {"files": [zip_of({"ok.txt": ESSAY, "blank.txt": b"   "})]},
        format="multipart",
    )
    assert response.json()["files"] == ["“blank.txt” contains no text to grade."]
    assert nothing_stored(draft, media)


def test_the_upload_page_lists_the_empty_document(client, owner, draft, media):
    client.force_login(owner)
    response = client.post(
        f"/batches/{draft.pk}/upload", {"files": [text_file("good.txt"), text_file("blank.txt", b" \n")]}
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert "Nothing was uploaded" in html and "“blank.txt” contains no text to grade." in html
    assert nothing_stored(draft, media)


def test_an_unreadable_document_is_still_stored_to_fail_with_its_reason(owner, draft):
    # Unchanged: extraction errors are kept, so the job fails with the reason (and retry skips it).
    response = client_for(owner).post(
        f"/api/batches/{draft.pk}/documents",
        {"files": [text_file("broken.pdf", b"not a pdf")]},
        format="multipart",
    )
    assert response.status_code == 201
    assert Document.objects.get().extraction_error


# --- retry ------------------------------------------------------------------------------


@pytest.fixture
def failed(owner) -> JobBatch:
    """A failed batch: one readable document, one unreadable, one blank; every job failed."""
    batch = make_batch(owner, jobs=0, name="Essays")
    readable = make_document(owner, "good.txt")
    unreadable = make_document(owner, "locked.pdf", text="")
    Document.objects.filter(pk=unreadable.pk).update(
        extraction_error="“locked.pdf” is a password-protected PDF."
    )
    blank = make_document(owner, "blank.txt", text=" \n ")
    batch.add_documents([readable, unreadable, blank])
    set_status(batch, BatchStatus.FAILED, JobStatus.FAILED)
    JobBatch.objects.filter(pk=batch.pk).update(started_at=batch.created_at)
    batch.refresh_from_db()
    return batch


def job_status(batch, document_name: str) -> str:
    return GradingJob.objects.get(batch=batch, document__original_name=document_name).status


def test_retry_requeues_only_what_can_succeed_and_says_what_it_skipped(
    failed, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):
        failed.retry_failed_jobs()
    assert failed.status == BatchStatus.PENDING
    assert job_status(failed, "good.txt") == JobStatus.QUEUED
    assert job_status(failed, "locked.pdf") == JobStatus.FAILED
    assert job_status(failed, "blank.txt") == JobStatus.FAILED
    assert (failed.report["requeued"], failed.report["skipped_count"]) == (1, 2)
    assert [(item["document"], item["reason"]) for item in failed.report["skipped"]] == [
        ("locked.pdf", "its document could not be read (“locked.pdf” is a password-protected PDF)"),
        ("blank.txt", "its document has no text to grade"),
    ]
    assert failed.report["message"].startswith(
        "Re-queued 1 job of “Essays”; 2 skipped: “locked.pdf” cannot be graded"
    )


def test_the_web_message_says_what_was_skipped(client, owner, failed, django_capture_on_commit_callbacks):
    client.force_login(owner)
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(f"/batches/{failed.pk}/retry")
    [message] = messages_of(response)
    assert message.startswith("Re-queued 1 job of “Essays”; 2 skipped: ")
    assert "“blank.txt” cannot be graded: its document has no text to grade" in message


def test_the_api_answers_with_the_report(owner, failed, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        response = client_for(owner).post(f"/api/batches/{failed.pk}/retry")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == BatchStatus.PENDING
    assert body["report"]["requeued"] == 1
    assert {item["document"] for item in body["report"]["skipped"]} == {"locked.pdf", "blank.txt"}
    assert "2 skipped" in body["report"]["message"]


def test_a_retry_with_nothing_that_can_succeed_is_refused_and_changes_nothing(owner, failed):
    GradingJob.objects.filter(batch=failed, document__original_name="good.txt").delete()
    response = client_for(owner).post(f"/api/batches/{failed.pk}/retry")
    assert response.status_code == 409
    assert response.json()["detail"].startswith("Nothing to retry: “locked.pdf” cannot be graded")
    failed.refresh_from_db()
    assert failed.status == BatchStatus.FAILED


def test_a_plain_retry_reports_no_skips(owner, django_capture_on_commit_callbacks):
    batch = set_status(make_batch(owner), BatchStatus.FAILED, JobStatus.FAILED)
    with django_capture_on_commit_callbacks(execute=False):
        response = client_for(owner).post(f"/api/batches/{batch.pk}/retry")
    assert response.json()["report"] == {"requeued": 2, "skipped_count": 0, "skipped": []}

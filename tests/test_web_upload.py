import io
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from batches.models import BatchStatus
from batches.uploads import MIB
from grading.models import Document
from tests.conftest import make_batch, set_status
from tests.web_support import messages_of, share_for_viewing

pytestmark = pytest.mark.django_db

ESSAY = b"Parks make cities better because they give people room to breathe.\n\nA second paragraph."


def text_file(name: str, data: bytes = ESSAY) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="text/plain")


def zip_of(*names: str) -> SimpleUploadedFile:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in names:
            archive.writestr(name, ESSAY)
    return SimpleUploadedFile("essays.zip", buffer.getvalue(), content_type="application/zip")


@pytest.fixture
def draft(owner, essay_template):
    # A draft that waits for its start (the essay template itself starts on upload).
    return make_batch(
        owner, essay_template, jobs=0, name="Week 4", settings={"processing": {"auto_start": False}}
    )


def test_several_files_become_one_job_each(client, owner, draft):
    client.force_login(owner)
    files = [text_file("a.txt"), text_file("b.md"), text_file("c.txt")]
    response = client.post(
        f"/batches/{draft.pk}/upload", {"files": files, "next": f"/batches/{draft.pk}/documents"}
    )
    assert response.status_code == 302
    assert response["Location"] == f"/batches/{draft.pk}/documents"
    assert "Uploaded 3 documents: 3 jobs added." in messages_of(response)
    assert sorted(draft.jobs.values_list("document__original_name", flat=True)) == ["a.txt", "b.md", "c.txt"]
    page = client.get(response["Location"]).content.decode()
    assert "Start grading 3 jobs" in page


def test_a_zip_is_unpacked_into_its_documents(client, owner, draft):
    client.force_login(owner)
    client.post(f"/batches/{draft.pk}/upload", {"files": [zip_of("one.txt", "two.txt")]})
    assert sorted(draft.jobs.values_list("document__original_name", flat=True)) == ["one.txt", "two.txt"]


def test_a_refused_upload_lists_each_problem_and_stores_nothing(client, owner, draft):
    client.force_login(owner)
    files = [text_file("good.txt"), text_file("virus.exe"), text_file("empty.zip", b"not a zip")]
    response = client.post(f"/batches/{draft.pk}/upload", {"files": files})
    html = response.content.decode()
    assert response.status_code == 400
    assert "Nothing was uploaded." in html
    assert "virus.exe" in html
    assert "“empty.zip” is not a readable ZIP archive." in html
    assert not Document.objects.exists()
    assert draft.jobs.count() == 0


def test_posting_without_a_file_asks_for_one(client, owner, draft):
    client.force_login(owner)
    response = client.post(f"/batches/{draft.pk}/upload", {})
    assert response.status_code == 400
    assert "Choose one or more files to upload first." in response.content.decode()


def test_uploading_into_a_running_batch_is_refused_with_the_reason(client, owner, draft):
    set_status(draft, BatchStatus.PROCESSING)
    client.force_login(owner)
    response = client.post(f"/batches/{draft.pk}/upload", {"files": [text_file("a.txt")]}, follow=True)
    assert "Documents can be added only while the batch is a draft or paused." in response.content.decode()
    assert not Document.objects.exists()


def test_a_paused_batch_takes_more_documents(client, owner, batch):
    set_status(batch, BatchStatus.PAUSED)
    client.force_login(owner)
    client.post(f"/batches/{batch.pk}/upload", {"files": [text_file("late.txt")]})
    assert batch.jobs.count() == 3


def test_the_upload_form_is_offered_only_to_who_may_add_and_when(client, owner, colleague, draft):
    client.force_login(owner)
    page = client.get(f"/batches/{draft.pk}").content.decode()
    assert 'enctype="multipart/form-data"' in page and "data-dropzone" in page
    assert '<label class="dropzone" data-dropzone for="id_files">' in page
    set_status(draft, BatchStatus.COMPLETED)
    assert "data-dropzone" not in client.get(f"/batches/{draft.pk}").content.decode()
    set_status(draft, BatchStatus.DRAFT)
    share_for_viewing(draft, colleague)
    client.force_login(colleague)
    assert "data-dropzone" not in client.get(f"/batches/{draft.pk}").content.decode()


def test_a_viewer_gets_403_and_a_stranger_404(client, owner, colleague, stranger, draft):
    share_for_viewing(draft, colleague)
    client.force_login(colleague)
    assert client.post(f"/batches/{draft.pk}/upload", {"files": [text_file("a.txt")]}).status_code == 403
    assert client.get(f"/batches/{draft.pk}/documents").status_code == 403
    client.force_login(stranger)
    assert client.post(f"/batches/{draft.pk}/upload", {"files": [text_file("a.txt")]}).status_code == 404
    assert not Document.objects.exists()


def oversized() -> SimpleUploadedFile:
    """With MAX_UPLOAD_MB = 1: just over the limit and the megabyte allowed for the multipart framing."""
    return text_file("big.txt", b"x" * (2 * MIB + 1024))


def test_a_body_over_the_upload_limit_is_refused_with_a_sentence(client, owner, draft, settings):
    settings.MAX_UPLOAD_MB = 1
    client.force_login(owner)
    response = client.post(f"/batches/{draft.pk}/upload", {"files": [oversized()]})
    assert response.status_code == 400
    assert "The upload is 2 MB; the limit is 1 MB." in response.content.decode()
    assert not Document.objects.exists()


def signed_in_with_csrf(user) -> tuple[Client, str]:
    """A client that checks CSRF as a browser's requests are checked, and its token."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    client.get("/batches")
    return client, client.cookies["csrftoken"].value


@pytest.mark.parametrize("token_in", ["header", "form"])
def test_a_body_over_the_upload_limit_is_refused_before_it_is_parsed(
    owner, draft, settings, multipart_parses, token_in
):
    settings.MAX_UPLOAD_MB = 1
    client, token = signed_in_with_csrf(owner)
    # A browser's form carries its token in the body, which nothing may read now.
    form = {"files": [oversized()], "next": "/batches", "csrfmiddlewaretoken": token}
    headers = {"X-CSRFToken": token} if token_in == "header" else {}
    if token_in == "header":
        del form["csrfmiddlewaretoken"]
    response = client.post(f"/batches/{draft.pk}/upload", form, headers=headers)
    assert response.status_code == 400
    assert multipart_parses == []
    html = response.content.decode()
    assert "The upload is 2 MB; the limit is 1 MB." in html
    assert 'enctype="multipart/form-data"' in html  # the documents page, to try again
    assert not Document.objects.exists()


def test_a_body_within_the_upload_limit_is_still_checked_for_its_csrf_token(
    owner, draft, settings, multipart_parses
):
    settings.MAX_UPLOAD_MB = 1
    client, _ = signed_in_with_csrf(owner)
    response = client.post(f"/batches/{draft.pk}/upload", {"files": [text_file("a.txt")]})
    assert response.status_code == 403
    assert len(multipart_parses) == 1
    assert draft.jobs.count() == 0


def test_a_body_over_the_limit_to_a_batch_not_shared_is_a_404_and_to_a_viewer_a_403(
    owner, colleague, stranger, draft, settings, multipart_parses
):
    settings.MAX_UPLOAD_MB = 1
    share_for_viewing(draft, colleague)
    for user, status in ((stranger, 404), (colleague, 403)):
        client, token = signed_in_with_csrf(user)
        response = client.post(
            f"/batches/{draft.pk}/upload", {"files": [oversized()]}, headers={"X-CSRFToken": token}
        )
        assert response.status_code == status
    assert multipart_parses == []


def test_a_body_over_the_limit_from_someone_signed_out_goes_to_the_sign_in_page(
    draft, settings, multipart_parses
):
    settings.MAX_UPLOAD_MB = 1
    response = Client(enforce_csrf_checks=True).post(f"/batches/{draft.pk}/upload", {"files": [oversized()]})
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    assert multipart_parses == []


def test_an_inbox_upload_over_the_limit_is_refused_before_it_is_parsed(owner, settings, multipart_parses):
    settings.MAX_UPLOAD_MB = 1
    client, token = signed_in_with_csrf(owner)
    response = client.post("/inbox", {"files": [oversized()], "csrfmiddlewaretoken": token, "dry_run": "on"})
    assert response.status_code == 400
    assert multipart_parses == []
    assert "The upload is 2 MB; the limit is 1 MB." in response.content.decode()
    assert not Document.objects.exists()


def test_a_docx_bomb_is_refused_by_name_and_nothing_is_stored(client, owner, draft):
    from tests.support.documents import docx_bomb

    client.force_login(owner)
    bomb = SimpleUploadedFile("thesis.docx", docx_bomb(256 << 20))
    response = client.post(f"/batches/{draft.pk}/upload", {"files": [text_file("good.txt"), bomb]})
    html = response.content.decode()
    assert response.status_code == 400
    assert "“thesis.docx” looks like a zip bomb" in html
    assert not Document.objects.exists()
    assert draft.jobs.count() == 0

"""One stray file no longer has to refuse a whole class ZIP: "skip unsupported files".

Strict by default: an unsupported file refuses the upload. With
`skip_unsupported=true` (the API's form field) or the upload form's checkbox,
files of an unsupported type and empty documents are left out, the rest
stored, and what was skipped is listed.
"""

import io
import zipfile
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from batches.models import JobBatch
from grading.models import Document
from tests.api_support import client_for
from tests.conftest import make_batch
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
        owner, essay_template, jobs=0, name="Class 7B", settings={"processing": {"auto_start": False}}
    )


def class_zip(**extra: bytes) -> SimpleUploadedFile:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("ada.txt", ESSAY)
        archive.writestr("bo.md", ESSAY)
        for name, data in extra.items():
            archive.writestr(name.replace("_", "."), data)
    return SimpleUploadedFile("class.zip", buffer.getvalue(), content_type="application/zip")


def upload(user, batch, files, **fields):
    return client_for(user).post(
        f"/api/batches/{batch.pk}/documents", {"files": files, **fields}, format="multipart"
    )


def test_by_default_one_stray_file_refuses_the_zip(owner, draft):
    response = upload(owner, draft, [class_zip(virus_exe=b"MZ")])
    assert response.status_code == 400
    assert "Unsupported file types: class.zip: virus.exe." in response.json()["files"][0]
    assert not Document.objects.exists()


def test_skipping_stores_the_rest_and_lists_what_was_skipped(owner, draft):
    response = upload(owner, draft, [class_zip(virus_exe=b"MZ", blank_txt=b"  ")], skip_unsupported="true")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert [doc["name"] for doc in body["documents"]] == ["ada.txt", "bo.md"]
    assert len(body["jobs"]) == 2
    assert body["skipped"] == [
        {"file": "class.zip: virus.exe", "reason": "unsupported file type"},
        {"file": "blank.txt", "reason": "no text to grade"},
    ]
    assert sorted(Document.objects.values_list("original_name", flat=True)) == ["ada.txt", "bo.md"]
    assert draft.jobs.count() == 2


def test_without_anything_skipped_the_list_is_empty(owner, draft):
    response = upload(owner, draft, [class_zip()], skip_unsupported="true")
    assert response.status_code == 201
    assert response.json()["skipped"] == []


def test_skipping_everything_stores_nothing_and_says_so(owner, draft, media):
    exe = SimpleUploadedFile("virus.exe", b"MZ")
    response = upload(owner, draft, [exe], skip_unsupported="true")
    assert response.status_code == 400
    assert response.json()["files"] == [
        "Nothing to upload: every file was skipped (virus.exe (unsupported file type))."
    ]
    assert not Document.objects.exists()
    assert not media.exists() or not [path for path in media.rglob("*") if path.is_file()]


def test_other_problems_still_refuse_the_upload(owner, draft, settings):
    settings.MAX_DOCUMENT_MB = 1
    big = SimpleUploadedFile("long.txt", b"word " * 300_000)
    response = upload(owner, draft, [class_zip(virus_exe=b"MZ"), big], skip_unsupported="true")
    assert response.status_code == 400
    assert "“long.txt” is 1.4 MB; the limit is 1 MB per file." in response.json()["files"]
    assert not Document.objects.exists()


def test_a_value_that_is_no_boolean_is_a_400_on_the_field(owner, draft):
    response = upload(owner, draft, [class_zip()], skip_unsupported="perhaps")
    assert response.status_code == 400
    assert "skip_unsupported" in response.json()
    assert not Document.objects.exists()


def test_the_schema_documents_the_field_and_the_skipped_list(client):
    schema = client.get("/api/schema?format=json").json()
    upload_body = schema["components"]["schemas"]["DocumentUploadRequest"]["properties"]
    assert upload_body["skip_unsupported"]["type"] == "boolean"
    assert "skipped" in schema["components"]["schemas"]["DocumentUploadResult"]["properties"]


def test_the_upload_form_offers_the_checkbox_and_lists_the_skipped(client, owner, draft):
    client.force_login(owner)
    page = client.get(f"/batches/{draft.pk}/documents").content.decode()
    assert '<input type="checkbox" name="skip_unsupported"' in page

    response = client.post(
        f"/batches/{draft.pk}/upload", {"files": [class_zip(virus_exe=b"MZ")], "skip_unsupported": "on"}
    )
    assert response.status_code == 302
    assert messages_of(response) == [
        "Uploaded 2 documents: 2 jobs added. Skipped 1 file: class.zip: virus.exe (unsupported file type)."
    ]


def test_the_upload_form_stays_strict_unticked(client, owner, draft):
    client.force_login(owner)
    response = client.post(f"/batches/{draft.pk}/upload", {"files": [class_zip(virus_exe=b"MZ")]})
    assert response.status_code == 400
    html = response.content.decode()
    assert "class.zip: virus.exe" in html and "skip unsupported files" in html
    assert not Document.objects.exists()

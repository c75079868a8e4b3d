"""POST /api/batches/{id}/documents: many files or a ZIP in, one document and job each; bounded."""

import io
import random
import zipfile
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

import batches.uploads
from batches.exceptions import InvalidTransition
from batches.models import BatchStatus, JobBatch
from batches.uploads import MIB, add_upload
from grading.models import Document, GradingJob
from templates_app.models import BatchTemplate
from tests.api_support import client_for, share
from tests.conftest import make_batch, prebuilt

pytestmark = pytest.mark.django_db

ESSAY = "Parks make cities better because they give people space. " * 40


@pytest.fixture(autouse=True)
def media(settings, tmp_path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def draft(owner, essay_template) -> JobBatch:
    # A draft that waits for its start (the essay template itself starts on upload).
    return make_batch(
        owner, essay_template, jobs=0, name="Term 1", settings={"processing": {"auto_start": False}}
    )


def text_file(name: str, text: str = ESSAY) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, text.encode(), content_type="text/plain")


def zip_file(name: str, entries: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> SimpleUploadedFile:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for entry, data in entries.items():
            archive.writestr(entry, data)
    return SimpleUploadedFile(name, buffer.getvalue(), content_type="application/zip")


def upload(user, batch, *files):
    return client_for(user).post(
        f"/api/batches/{batch.pk}/documents", {"files": list(files)}, format="multipart"
    )


def stored_files(media: Path) -> list[Path]:
    return [path for path in media.rglob("*") if path.is_file()] if media.exists() else []


def assert_nothing_created(batch: JobBatch, media: Path) -> None:
    assert Document.objects.count() == 0
    assert GradingJob.objects.filter(batch=batch).count() == 0
    assert stored_files(media) == []


def test_uploading_several_files_makes_a_document_and_a_job_each(owner, draft, media):
    response = upload(owner, draft, text_file("ada.txt"), text_file("bo.md"), text_file("cy.txt"))
    assert response.status_code == 201, response.json()
    body = response.json()
    assert [doc["name"] for doc in body["documents"]] == ["ada.txt", "bo.md", "cy.txt"]
    assert [job["name"] for job in body["jobs"]] == ["Term 1 – ada.txt", "Term 1 – bo.md", "Term 1 – cy.txt"]
    assert body["started"] is False
    assert body["batch"]["progress"]["total"] == 3
    assert all(doc["extraction_error"] == "" for doc in body["documents"])
    assert Document.objects.get(original_name="ada.txt").text.startswith("Parks make cities")
    assert len(stored_files(media)) == 3


def test_a_zip_is_expanded_into_its_documents(owner, draft):
    archive = zip_file(
        "essays.zip",
        {
            "class/ada.txt": ESSAY.encode(),
            "class/bo.txt": ESSAY.encode(),
            "class/": b"",
            "__MACOSX/class/._ada.txt": b"junk",
            "class/.DS_Store": b"junk",
        },
    )
    response = upload(owner, draft, archive)
    assert response.status_code == 201, response.json()
    assert [doc["name"] for doc in response.json()["documents"]] == ["ada.txt", "bo.txt"]
    assert draft.jobs.count() == 2


def test_a_model_comparison_makes_a_job_per_file_and_model(owner, essay_template):
    batch = make_batch(owner, essay_template, jobs=0, settings={"models": ["builtin-v1", "builtin-v2"]})
    response = upload(owner, batch, text_file("ada.txt"), text_file("bo.txt"))
    assert response.status_code == 201
    assert len(response.json()["jobs"]) == 4


def test_the_templates_auto_start_rule_starts_the_batch(owner):
    template = BatchTemplate.objects.create(
        name="Auto",
        slug="auto",
        default_settings=prebuilt().default_settings,
        processing_rules={"auto_start": True},
        owner=owner,
    )
    batch = make_batch(owner, template, jobs=0)
    response = upload(owner, batch, text_file("ada.txt"))
    assert response.status_code == 201
    assert response.json()["started"] is True
    assert response.json()["batch"]["status"] == "pending"


def test_an_unreadable_document_is_kept_with_its_reason(owner, draft):
    response = upload(owner, draft, text_file("broken.pdf", "not a PDF at all"))
    assert response.status_code == 201
    assert "broken.pdf" in response.json()["documents"][0]["extraction_error"]


def test_a_document_with_no_text_is_refused_by_name(owner, draft, media):
    # Whitespace only: nothing to grade. Refused like an unsupported type (tests/test_empty_documents.py).
    response = upload(owner, draft, text_file("empty.txt", "   "))
    assert response.status_code == 400
    assert response.json()["files"] == ["“empty.txt” contains no text to grade."]
    assert_nothing_created(draft, media)


def test_an_oversize_file_is_refused_and_nothing_is_created(owner, draft, media, settings):
    settings.MAX_DOCUMENT_MB = 1
    big = text_file("big.txt", "x" * (1024 * 1024 + 1))
    response = upload(owner, draft, text_file("fine.txt"), big)
    assert response.status_code == 400
    assert response.json() == {"files": ["“big.txt” is 1.0 MB; the limit is 1 MB per file."]}
    assert_nothing_created(draft, media)


def test_unsupported_types_are_listed_and_nothing_is_created(owner, draft, media):
    response = upload(
        owner,
        draft,
        text_file("fine.txt"),
        SimpleUploadedFile("virus.exe", b"MZ\x90\x00"),
        SimpleUploadedFile("photo.png", b"\x89PNG"),
        zip_file("inner.zip", {"nested.zip": b"PK", "notes.txt": ESSAY.encode()}),
    )
    assert response.status_code == 400
    [message] = response.json()["files"]
    assert "Unsupported file types: virus.exe, photo.png, inner.zip: nested.zip." in message
    assert ".txt" in message and ".docx" in message
    assert_nothing_created(draft, media)


def test_a_zip_bomb_is_refused_without_inflating_it(owner, draft, media):
    # 15 MB of zeros deflates to about 15 kB: a ratio near 1000, under the per-file size limit.
    bomb = zip_file("bomb.zip", {"bomb.txt": bytes(15 * 1024 * 1024)})
    assert len(bomb) < 100_000
    response = upload(owner, draft, bomb)
    assert response.status_code == 400
    assert "zip bomb" in response.json()["files"][0]
    assert_nothing_created(draft, media)


def test_a_zip_whose_entries_add_up_past_the_total_limit_is_refused(owner, draft, media, settings):
    settings.MAX_UPLOAD_MB = 2
    # Hex of random bytes compresses about 2:1, well within the ratio limit.
    archive = zip_file(
        "many.zip", {f"e{i}.txt": random.Random(i).randbytes(25_000).hex().encode() for i in range(50)}
    )
    response = upload(owner, draft, archive)
    assert response.status_code == 400
    assert "the limit is 2 MB" in response.json()["files"][0]
    assert_nothing_created(draft, media)


def test_a_zip_lying_about_its_sizes_is_judged_by_its_directory_not_inflated(owner, draft, media):
    archive = zip_file("liar.zip", {"essay.txt": ESSAY.encode()})
    data = bytearray(archive.read())
    # Claim 50 GB uncompressed in the central directory; inflating would fail
    # the size and CRC checks, so a bomb refusal proves nothing was inflated.
    central = data.rindex(b"PK\x01\x02")
    data[central + 24 : central + 28] = (0xFFFFFFF0).to_bytes(4, "little")
    response = upload(owner, draft, SimpleUploadedFile("liar.zip", bytes(data)))
    assert response.status_code == 400
    assert "zip bomb" in response.json()["files"][0] or "limit" in response.json()["files"][0]
    assert_nothing_created(draft, media)


def test_a_zip_with_too_many_entries_is_refused(owner, draft, media, settings):
    settings.MAX_FILES_PER_UPLOAD = 5
    archive = zip_file("lots.zip", {f"e{i}.txt": b"text" for i in range(6)})
    response = upload(owner, draft, archive)
    assert response.status_code == 400
    assert "holds 6 entries; the limit is 5" in response.json()["files"][0]
    assert_nothing_created(draft, media)


def test_a_zip_entry_climbing_out_with_dotdot_is_refused(owner, draft, media):
    archive = zip_file("slip.zip", {"ok.txt": ESSAY.encode(), "../../etc/evil.txt": ESSAY.encode()})
    response = upload(owner, draft, archive)
    assert response.status_code == 400
    assert "unsafe path: '../../etc/evil.txt'" in response.json()["files"][0]
    assert_nothing_created(draft, media)


def test_a_dotdot_upload_name_is_reduced_to_its_last_component(owner, draft, media):
    response = upload(owner, draft, text_file("../../etc/evil.txt"), text_file("..\\..\\win.txt"))
    assert response.status_code == 201
    assert [doc["name"] for doc in response.json()["documents"]] == ["evil.txt", "win.txt"]
    for path in stored_files(media):
        assert path.resolve().is_relative_to(media.resolve())


def test_a_corrupt_zip_is_refused(owner, draft, media):
    response = upload(owner, draft, SimpleUploadedFile("broken.zip", b"PK\x03\x04 not really"))
    assert response.status_code == 400
    assert "not a readable ZIP" in response.json()["files"][0]
    assert_nothing_created(draft, media)


def test_an_encrypted_zip_entry_is_refused(owner, draft, media):
    archive = bytearray(zip_file("locked.zip", {"essay.txt": ESSAY.encode()}).read())
    # Set the "encrypted" flag bit in both headers, as a password-protected archive has.
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = archive.index(signature) + offset
        archive[at] |= 0x1
    response = upload(owner, draft, SimpleUploadedFile("locked.zip", bytes(archive)))
    assert response.status_code == 400
    assert "encrypted" in response.json()["files"][0]
    assert_nothing_created(draft, media)


def test_an_upload_without_files_is_a_400(owner, draft):
    response = client_for(owner).post(f"/api/batches/{draft.pk}/documents", {}, format="multipart")
    assert response.status_code == 400
    assert "files" in response.json()
    json = client_for(owner).post(f"/api/batches/{draft.pk}/documents", {"files": []}, format="json")
    assert json.status_code == 415


def test_too_many_files_in_one_request_is_a_400(owner, draft, media, settings):
    settings.MAX_FILES_PER_UPLOAD = 3
    settings.DATA_UPLOAD_MAX_NUMBER_FILES = 3
    response = upload(owner, draft, *[text_file(f"e{i}.txt") for i in range(4)])
    assert response.status_code == 400
    assert_nothing_created(draft, media)


def test_uploading_into_a_running_batch_is_refused(owner, batch, media):
    batch.start_batch()
    response = upload(owner, batch, text_file("late.txt"))
    assert response.status_code == 409
    assert response.json()["action"] == "add_jobs"
    assert Document.objects.filter(original_name="late.txt").count() == 0


def test_a_viewer_cannot_upload(owner, colleague, draft, media):
    share(draft, colleague, "view")
    assert upload(colleague, draft, text_file("ada.txt")).status_code == 403
    assert_nothing_created(draft, media)


def test_a_400_lists_at_most_twenty_problems(owner, draft, media):
    archive = zip_file("bombs.zip", {f"bomb-{i}.txt": bytes(1024 * 1024) for i in range(30)})
    problems = upload(owner, draft, archive).json()["files"]
    assert len(problems) == 21
    assert problems[-1] == "… and 10 more problems like these."
    assert_nothing_created(draft, media)


def test_a_batch_started_while_an_upload_is_stored_keeps_none_of_its_files(owner, draft, media):
    def files_while_a_colleague_starts_the_batch():
        # The status was checked before the body was read; the batch moves on meanwhile.
        JobBatch.objects.filter(pk=draft.pk).update(status=BatchStatus.PROCESSING)
        return [text_file("ada.txt"), text_file("bo.txt")]

    with pytest.raises(InvalidTransition):
        add_upload(draft, owner, files_while_a_colleague_starts_the_batch)
    # Both files were written before the batch refused their jobs; the rows rolled back, the files went too.
    assert_nothing_created(draft, media)


def test_a_store_failing_midway_removes_the_files_already_written(owner, draft, media, monkeypatch):
    store = batches.uploads.store_document
    written_before_the_failure = []

    def disk_full_on_the_second(owner, name, data, **extracted):
        if name == "bo.txt":
            written_before_the_failure.extend(stored_files(media))
            raise OSError(28, "No space left on device")
        return store(owner, name, data, **extracted)

    monkeypatch.setattr(batches.uploads, "store_document", disk_full_on_the_second)
    with pytest.raises(OSError, match="No space left"):
        upload(owner, draft, text_file("ada.txt"), text_file("bo.txt"), text_file("cy.txt"))
    assert [path.name for path in written_before_the_failure] == ["ada.txt"]
    assert_nothing_created(draft, media)


def test_a_body_over_the_upload_limit_is_refused_before_it_is_parsed(
    owner, draft, media, settings, multipart_parses
):
    settings.MAX_UPLOAD_MB = 1
    # Signed in by token, as scripts are: a session's CSRF check would read the body first.
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=owner).key}")
    # Just over the limit and the megabyte allowed for the multipart framing.
    big = text_file("big.txt", "x" * (2 * MIB + 1024))
    response = client.post(f"/api/batches/{draft.pk}/documents", {"files": [big]}, format="multipart")
    assert response.status_code == 400
    assert multipart_parses == []
    assert response.json() == {"files": ["The upload is 2 MB; the limit is 1 MB."]}
    assert_nothing_created(draft, media)


def signed_in_with_csrf(user) -> tuple[APIClient, str]:
    """A session, as the pages' scripts use, checked for CSRF as a browser's is, and its token."""
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(user)
    client.get("/batches")
    return client, client.cookies["csrftoken"].value


@pytest.mark.parametrize("url", ["/api/batches/{pk}/documents", "/api/inbox"])
def test_a_body_over_the_upload_limit_sent_with_a_session_is_refused_before_it_is_parsed(
    owner, draft, media, settings, multipart_parses, url
):
    settings.MAX_UPLOAD_MB = 1
    client, token = signed_in_with_csrf(owner)
    big = text_file("big.txt", "x" * (2 * MIB + 1024))
    response = client.post(
        url.format(pk=draft.pk), {"files": [big]}, format="multipart", headers={"X-CSRFToken": token}
    )
    assert response.status_code == 400
    assert multipart_parses == []
    assert response.json() == {"files": ["The upload is 2 MB; the limit is 1 MB."]}
    assert_nothing_created(draft, media)


def test_a_session_s_body_over_the_limit_still_needs_its_csrf_token(owner, draft, media, settings):
    settings.MAX_UPLOAD_MB = 1
    client, token = signed_in_with_csrf(owner)
    big = text_file("big.txt", "x" * (2 * MIB + 1024))
    # In the body the token is not read: the body is not.
    response = client.post(
        f"/api/batches/{draft.pk}/documents",
        {"files": [big], "csrfmiddlewaretoken": token},
        format="multipart",
    )
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]
    assert_nothing_created(draft, media)


def test_a_body_within_the_upload_limit_is_parsed_and_stored(owner, draft, media, settings, multipart_parses):
    settings.MAX_UPLOAD_MB = 1
    settings.MAX_DOCUMENT_CHARS = 2 * MIB  # the body's size is the point here, not the text's
    response = upload(owner, draft, text_file("ada.txt", "x" * (MIB - 1024)))
    assert response.status_code == 201
    assert len(multipart_parses) == 1


# --- bounded extraction: documents that are bombs, or simply too much text ---------------


@pytest.fixture(scope="module")
def docx_bomb_1gib() -> bytes:
    from tests.support.documents import docx_bomb

    return docx_bomb(1 << 30)


def test_a_docx_bomb_is_refused_with_a_400_naming_it(owner, draft, media, docx_bomb_1gib):
    bomb = SimpleUploadedFile("bomb.docx", docx_bomb_1gib)
    response = upload(owner, draft, text_file("fine.txt"), bomb)
    assert response.status_code == 400
    [problem] = response.json()["files"]
    assert problem.startswith("“bomb.docx” looks like a zip bomb: its part word/document.xml inflates")
    assert_nothing_created(draft, media)


def test_a_docx_bomb_inside_a_zip_is_refused_naming_the_archive_and_entry(
    owner, draft, media, docx_bomb_1gib
):
    # Stored, as a .docx (already deflated) in a ZIP usually is: the outer archive's checks pass.
    entries = {"ada.txt": ESSAY.encode(), "class/bomb.docx": docx_bomb_1gib}
    archive = zip_file("essays.zip", entries, compression=zipfile.ZIP_STORED)
    response = upload(owner, draft, archive)
    assert response.status_code == 400
    [problem] = response.json()["files"]
    assert problem.startswith("“essays.zip: bomb.docx” looks like a zip bomb")
    assert_nothing_created(draft, media)


def test_a_document_with_more_text_than_the_limit_is_refused_and_nothing_stored(
    owner, draft, media, settings
):
    settings.MAX_DOCUMENT_CHARS = 1000
    response = upload(owner, draft, text_file("short.txt", "x" * 1000), text_file("long.txt", "x" * 1001))
    assert response.status_code == 400
    assert response.json() == {
        "files": [
            "“long.txt” holds more than 1,000 characters of text, the limit per document "
            "(MAX_DOCUMENT_CHARS); split it into smaller documents."
        ]
    }
    assert_nothing_created(draft, media)


MEMORY_PROBE = """
import json, django
django.setup()
import psutil
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings
from batches.uploads import UploadRefused, read_upload
from tests.support.documents import docx_bomb, make_docx

def refused(name, data):
    try:
        read_upload([SimpleUploadedFile(name, data)])
    except UploadRefused as refusal:
        return refusal.problems
    return []

bomb = docx_bomb(1 << 30)
# Declares 10 MB, holds 1 GiB: passes the directory checks, so the XML is streamed.
liar = docx_bomb(1 << 30, declared_bytes=10 << 20)
read_upload([SimpleUploadedFile("warm-up.docx", make_docx(["Every parser imported and used once."]))])
process = psutil.Process()
before = process.memory_info().rss
problems = refused("bomb.docx", bomb)
with override_settings(MAX_ZIP_RATIO=10**9):
    problems += refused("liar.docx", liar)
print(json.dumps({"growth": process.memory_info().rss - before, "problems": problems}))
"""


def test_refusing_a_docx_bomb_grows_memory_by_less_than_50_mb():
    """In a fresh interpreter measuring its own RSS: python-docx grew by 2.1 GB on this bomb."""
    from tests.support.probes import run_probe

    result = run_probe(MEMORY_PROBE)
    assert result["problems"][0].startswith("“bomb.docx” looks like a zip bomb")
    assert result["problems"][1].startswith("“liar.docx” holds more than 500,000 characters")
    assert result["growth"] < 50 * 1024 * 1024, result


def test_a_long_zip_entry_name_is_shortened_keeping_its_extension(owner, draft, media):
    long_name = "essay-" + "x" * 250 + ".txt"
    response = upload(owner, draft, zip_file("long.zip", {f"class/{long_name}": ESSAY.encode()}))
    assert response.status_code == 201, response.json()
    [document] = response.json()["documents"]
    assert document["name"].endswith("x.txt")
    assert len(document["name"]) == 200
    assert Document.objects.get().text.startswith("Parks make cities")


@pytest.mark.parametrize("character", ["漢", "😀"])
def test_a_long_name_in_a_script_of_many_bytes_is_kept_whole_and_stored_within_the_disks_limit(
    owner, draft, media, character
):
    # 150 characters of Chinese are 450 bytes, of emoji 600: more than the 255 a
    # file system allows in a name, which made the upload a 500.
    name = character * 150 + ".txt"
    response = upload(owner, draft, text_file(name), zip_file("class.zip", {f"b/{name}": b"Another essay."}))

    assert response.status_code == 201, response.content[:300]
    assert [document["name"] for document in response.json()["documents"]] == [name, name]
    for path in stored_files(media):
        assert path.suffix == ".txt" and not path.name.startswith(".")
        assert len(path.name.encode()) <= 255
    assert sorted(Document.objects.values_list("text", flat=True)) == sorted(
        [ESSAY.strip(), "Another essay."]
    )


def test_a_long_file_name_is_shortened_keeping_its_extension(owner, draft, media):
    response = upload(owner, draft, text_file("y" * 300 + ".md"))
    assert response.status_code == 201, response.json()
    assert response.json()["documents"][0]["name"] == "y" * 197 + ".md"

"""Feedback sheets students can read: a PDF per student, from the job page, the API and the export ZIP.

Each PDF's text is read back with pypdf; one page is rendered to
test-artifacts/feedback-sheet.png with poppler's pdftoppm when it is installed.
"""

import io
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
from django.conf import settings
from pypdf import PdfReader

from batches import feedback
from batches.export import stream_zip
from batches.feedback import CriterionFeedback, DocumentFeedback, FeedbackSheet, render_pdf
from batches.students import RosterRow, replace_roster
from grading.models import GradingResult, JobStatus
from tests.analytics_support import MODEL_A, NOW, add_job
from tests.api_support import client_for, share
from tests.conftest import make_batch, make_document

pytestmark = pytest.mark.django_db

ARTIFACTS = Path(settings.BASE_DIR) / "test-artifacts"
RUBRIC = {
    "criteria": [
        {
            "key": "thesis",
            "name": "Thesis and argument",
            "points": 6,
            "levels": [
                {"points": 6, "label": "Excellent"},
                {"points": 4, "label": "Good"},
                {"points": 2, "label": "Developing"},
            ],
        },
        {"key": "style", "name": "Style and clarity", "points": 4},
    ]
}


def rubric_batch(owner, **fields):
    """A batch whose rubric has levels for one criterion and none for the other."""
    return make_batch(owner, jobs=0, settings={"rubric": RUBRIC}, **fields)


def pdf_text(data: bytes) -> str:
    assert data.startswith(b"%PDF-")
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def flat(text: str) -> str:
    """Text with its line breaks as spaces: a long sentence wraps in the PDF."""
    return " ".join(text.split())


def graded_job(owner, batch, file_name: str, reviewed: bool = True):
    job = add_job(batch, make_document(owner, file_name), MODEL_A, JobStatus.COMPLETED, 100)
    result = GradingResult.objects.create(
        job=job,
        provider="openai",
        model=MODEL_A,
        score=7,
        max_score=10,
        criteria=[
            {
                "key": "thesis",
                "name": "Thesis and argument",
                "score": 4,
                "max_score": 6,
                "feedback": "The thesis is clear but arrives late.",
                "evidence": [
                    {"quote": "Parks make cities livable", "found": True},
                    {"quote": "a quote the essay never had", "found": False},
                ],
            },
            {
                "key": "style",
                "name": "Style and clarity",
                "score": 3,
                "max_score": 4,
                "feedback": "Mostly fluent — a few long sentences.",
                "evidence": [],
            },
        ],
        feedback="A solid essay; move the thesis into the first paragraph.",
    )
    if reviewed:
        result.record_review(
            owner,
            9,
            [{"key": "thesis", "score": 6, "comment": "Stronger than the AI says."}],
            "Très bien, Zoë!",
        )
    return job


@pytest.fixture
def sheet_batch(owner):
    batch = rubric_batch(owner, name="Essay 1", student_pattern="{student_id}_*")
    job = graded_job(owner, batch, "1001_essay.txt")
    replace_roster(batch, [RosterRow("1001", "Zoë Núñez", "zoe@uni.example")])
    job.refresh_from_db()
    return batch, job


def test_the_feedback_sheet_holds_the_score_each_criterion_its_evidence_and_the_comment(owner, sheet_batch):
    batch, job = sheet_batch
    response = client_for(owner).get(f"/api/jobs/{job.pk}/feedback.pdf")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == 'attachment; filename="feedback-Zoe_Nunez_1001.pdf"'
    text = flat(pdf_text(response.content))
    assert "Zoë Núñez (1001)" in text
    assert "Score: 9 / 10 (90 %)" in text  # the reviewer's score is final
    assert "Thesis and argument: 6 / 6 · Excellent" in text  # the reviewer's criterion score, its level
    assert "Style and clarity: 3 / 4" in text
    assert "The thesis is clear but arrives late." in text
    assert "Mostly fluent — a few long sentences." in text
    assert "“Parks make cities livable”" in text
    assert "“a quote the essay never had” (not found in your text)" in text
    assert "Teacher: Stronger than the AI says." in text
    assert "Très bien, Zoë!" in text
    assert "A solid essay; move the thesis into the first paragraph." in text
    _save_png(response.content)


def _save_png(data: bytes) -> None:
    """Page one as test-artifacts/feedback-sheet.png, for a person to look at (needs pdftoppm)."""
    if shutil.which("pdftoppm") is None:
        return
    ARTIFACTS.mkdir(exist_ok=True)
    pdf = ARTIFACTS / "feedback-sheet.pdf"
    pdf.write_bytes(data)
    subprocess.run(
        [
            "pdftoppm",
            "-png",
            "-r",
            "80",
            "-f",
            "1",
            "-l",
            "1",
            "-singlefile",
            str(pdf),
            str(ARTIFACTS / "feedback-sheet"),
        ],
        check=True,
        timeout=60,
    )
    assert (ARTIFACTS / "feedback-sheet.png").stat().st_size > 1000


def test_names_beyond_western_european_letters_render_in_the_embedded_font(owner):
    batch = rubric_batch(owner, name="Esej", student_pattern="{student_id}_*")
    job = graded_job(owner, batch, "7_esej.txt", reviewed=False)
    replace_roster(batch, [RosterRow("7", "Łukasz Żółć-Петров", "")])
    data = client_for(owner).get(f"/api/jobs/{job.pk}/feedback.pdf").content
    assert b"/FontFile2" in data  # DejaVu Sans, embedded
    text = flat(pdf_text(data))
    assert "Łukasz Żółć-Петров (7)" in text
    assert "Score: 7 / 10" in text
    assert "Thesis and argument: 4 / 6 · Good" in text


def test_a_sheet_covers_every_document_of_the_student(owner, sheet_batch):
    batch, job = sheet_batch
    second = graded_job(owner, batch, "1001_appendix.txt", reviewed=False)
    from batches.students import identify_students

    identify_students(batch)
    second.refresh_from_db()
    assert second.student_id == job.student_id
    text = flat(pdf_text(client_for(owner).get(f"/api/jobs/{second.pk}/feedback.pdf").content))
    assert "1001_essay.txt" in text and "1001_appendix.txt" in text
    assert "Score: 9 / 10" in text and "Score: 7 / 10" in text


def test_the_export_zip_holds_a_sheet_per_student(owner, sheet_batch):
    batch, _ = sheet_batch
    graded_job(owner, batch, "stray.txt", reviewed=False)  # no student for this one
    archive = zipfile.ZipFile(io.BytesIO(b"".join(stream_zip(batch, now=NOW))))
    sheets = sorted(name for name in archive.namelist() if name.startswith("feedback/"))
    stray = batch.jobs.get(document__original_name="stray.txt").document_id
    assert sheets == ["feedback/Zoe_Nunez_1001.pdf", f"feedback/unmatched/stray.txt-{stray}.pdf"]
    assert "Zoë Núñez (1001)" in pdf_text(archive.read("feedback/Zoe_Nunez_1001.pdf"))
    assert "stray.txt" in pdf_text(archive.read(sheets[1]))


def test_who_may_download_a_sheet(owner, colleague, stranger, client, sheet_batch):
    batch, job = sheet_batch
    share(batch, colleague, "view")
    assert client_for(colleague).get(f"/api/jobs/{job.pk}/feedback.pdf").status_code == 200
    assert client_for(stranger).get(f"/api/jobs/{job.pk}/feedback.pdf").status_code == 404
    assert client_for(None).get(f"/api/jobs/{job.pk}/feedback.pdf").status_code == 401
    url = f"/batches/{batch.pk}/jobs/{job.pk}/feedback.pdf"
    client.force_login(colleague)
    page = client.get(f"/batches/{batch.pk}/jobs/{job.pk}").content.decode()
    assert url in page and "Zoë Núñez (1001)" in page
    response = client.get(url)
    assert response.status_code == 200
    assert "Score: 9 / 10" in flat(pdf_text(response.content))
    client.force_login(stranger)
    assert client.get(url).status_code == 404


def test_nothing_graded_means_no_sheet(owner, client):
    batch = rubric_batch(owner)
    job = add_job(batch, make_document(owner, "waiting.txt"), MODEL_A, JobStatus.QUEUED)
    response = client_for(owner).get(f"/api/jobs/{job.pk}/feedback.pdf")
    assert response.status_code == 409
    client.force_login(owner)
    response = client.get(f"/batches/{batch.pk}/jobs/{job.pk}/feedback.pdf", follow=True)
    assert "No feedback sheet yet" in response.content.decode()


def _without_dates(data: bytes) -> bytes:
    """The PDF without its creation date and the file id fpdf2 derives from it."""
    return re.sub(rb"/CreationDate \(D:[^)]*\)|/ID \[<[0-9A-F]+><[0-9A-F]+>\]", b"", data)


def _unicode_sheet(name: str, quote: str) -> FeedbackSheet:
    criterion = CriterionFeedback("Teza", 4, 6, "Dobrze", "Jasne stanowisko.", [(quote, True)], "Świetnie")
    document = DocumentFeedback("esej.txt", 8, 10, True, [criterion], ["Ogólnie dobrze."], ["Sprawdzone."])
    return FeedbackSheet(name, "Zestaw 3", "", [document])


def test_sheets_set_in_the_font_parsed_once_are_the_sheets_fpdf2_makes_from_the_file(monkeypatch):
    # Several alphabets one after another: each sheet's subset must come from the whole
    # font, never from what the sheet before it left of a shared copy.
    sheets = [
        _unicode_sheet("Łukasz Żółć", "Zażółć gęślą jaźń"),
        _unicode_sheet("Νίκος Καζαντζάκης", "Ζορμπάς ο Έλληνας"),
        _unicode_sheet("Фёдор Достоевский", "Преступление и наказание"),
        _unicode_sheet("Łukasz Żółć", "Zażółć gęślą jaźń"),
    ]
    reused = [render_pdf(sheet) for sheet in sheets]
    monkeypatch.setattr(
        feedback, "_add_parsed_font", lambda pdf, family, style, path: pdf.add_font(family, style, str(path))
    )
    from_the_file = [render_pdf(sheet) for sheet in sheets]
    assert [_without_dates(data) for data in reused] == [_without_dates(data) for data in from_the_file]
    text = flat(pdf_text(reused[2]))
    assert "Фёдор Достоевский" in text and "“Преступление и наказание”" in text
    assert "Νίκος Καζαντζάκης" in flat(pdf_text(reused[1]))


def test_the_export_leaves_the_sheets_out_when_asked(owner, sheet_batch):
    batch, _ = sheet_batch
    client = client_for(owner)
    with_sheets = zipfile.ZipFile(
        io.BytesIO(b"".join(client.get(f"/api/batches/{batch.pk}/export").streaming_content))
    )
    assert "feedback/Zoe_Nunez_1001.pdf" in with_sheets.namelist()
    response = client.get(f"/api/batches/{batch.pk}/export?feedback=0")
    assert response.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    assert not [name for name in archive.namelist() if name.startswith("feedback/")]
    assert {"README.txt", "batch.json", "gradebook.csv"} <= set(archive.namelist())
    assert "left out of this export" in archive.read("README.txt").decode()
    assert "left out" not in with_sheets.read("README.txt").decode()


def test_an_unknown_feedback_choice_is_refused(owner, sheet_batch):
    batch, _ = sheet_batch
    response = client_for(owner).get(f"/api/batches/{batch.pk}/export?feedback=maybe")
    assert response.status_code == 400
    assert response.json() == {"feedback": ["Choose one of: 1, 0, true, false, yes, no."]}


def test_the_batch_page_offers_the_export_without_sheets(owner, client, sheet_batch):
    batch, _ = sheet_batch
    client.force_login(owner)
    page = client.get(f"/batches/{batch.pk}").content.decode()
    assert f'action="/api/batches/{batch.pk}/export"' in page
    assert 'name="feedback" value="0"' in page
    assert "Leave out the feedback sheets" in page

"""The export ZIP's layout and contents, and the gradebook CSV."""

import csv
import io
import json
import re
import zipfile

import pytest

from batches.export import (
    FORMULA_PREFIXES,
    export_filename,
    neutralise,
    safe_name,
    stream_gradebook_csv,
    stream_zip,
    write_zip,
)
from grading.models import GradingJob, JobStatus
from tests.analytics_support import MODEL_A, NOW, add_job, add_result, result_of, rubric_batch, worked_batch
from tests.conftest import make_document
from tests.support.instances import watching

SAFE_ENTRY = re.compile(
    r"^(README\.txt|batch\.json|gradebook\.csv|jobs/[A-Za-z0-9._-]+/(summary|result)\.json"
    r"|feedback/(unmatched/)?[A-Za-z0-9._-]+\.pdf)$"
)


def unzip(batch) -> zipfile.ZipFile:
    archive = zipfile.ZipFile(io.BytesIO(b"".join(stream_zip(batch, now=NOW))))
    assert archive.testzip() is None  # every entry's CRC checks out
    return archive


def gradebook(archive: zipfile.ZipFile) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(archive.read("gradebook.csv").decode("utf-8-sig"))))


@pytest.fixture
def worked(owner):
    batch = worked_batch(owner)
    result_of(batch, "d2.txt", MODEL_A).record_review(owner, 5, [{"key": "content", "score": 3}], "Fair.")
    return batch


def test_the_zip_holds_readme_batch_gradebook_and_two_files_per_job(worked):
    archive = unzip(worked)
    names = archive.namelist()
    assert names[:3] == ["README.txt", "batch.json", "gradebook.csv"]
    jobs = GradingJob.objects.filter(batch=worked)
    sheets = [name for name in names if name.startswith("feedback/")]
    assert len(names) == 3 + 2 * jobs.count() + len(sheets)
    # A feedback sheet per graded document; these documents have no student.
    graded = GradingJob.objects.filter(batch=worked, status=JobStatus.COMPLETED)
    assert sorted(sheets) == sorted(
        {f"feedback/unmatched/{job.document.original_name}-{job.document_id}.pdf" for job in graded}
    )
    for job in jobs:
        folder = f"jobs/{safe_name(job.name)}-{job.pk}"
        summary = json.loads(archive.read(f"{folder}/summary.json"))
        assert (summary["id"], summary["status"], summary["document"]["file_name"]) == (
            job.pk,
            job.status,
            job.document.original_name,
        )
        result = json.loads(archive.read(f"{folder}/result.json"))
        assert (result is None) == (job.status != JobStatus.COMPLETED)
    assert "gradebook.csv" in archive.read("README.txt").decode()


def test_batch_json_carries_metadata_settings_template_and_analytics(worked):
    document = json.loads(unzip(worked).read("batch.json"))
    assert document["batch"]["name"] == "Worked example"
    assert document["batch"]["status"] == "processing"
    assert document["template"]["slug"] == "academic-essay"
    assert document["settings"]["rubric"]["criteria"][0]["key"] == "content"
    assert document["effective_settings"]["provider"] == "builtin"
    assert document["analytics"]["jobs"]["total"] == 8
    assert document["analytics"]["scores"]["reviewed"] == 1


def test_result_json_keeps_the_ai_grade_beside_the_review(worked):
    archive = unzip(worked)
    job = GradingJob.objects.get(batch=worked, document__original_name="d2.txt", model=MODEL_A)
    result = json.loads(archive.read(f"jobs/{safe_name(job.name)}-{job.pk}/result.json"))
    assert result["score"] == 4
    assert result["review"]["score"] == 5
    assert result["review"]["reviewer"] == "olivia"
    assert result["review"]["criteria"] == [{"key": "content", "score": 3}]


def test_the_gradebook_has_one_row_per_document_with_the_final_score(worked):
    rows = {row["file_name"]: row for row in gradebook(unzip(worked))}
    assert list(rows) == ["d1.txt", "d2.txt", "d3.txt", "d4.txt"]
    # d1: two models, no review -> mean of the AI scores 8 and 7.
    assert (rows["d1.txt"]["final_score"], rows["d1.txt"]["percent"]) == ("7.5", "75")
    assert (rows["d1.txt"]["Content (6)"], rows["d1.txt"]["Style (4)"]) == ("4.5", "3")
    assert rows["d1.txt"]["reviewed"] == "no"
    assert rows["d1.txt"]["graded_by"] == "openai:gpt-a; openai:gpt-b"  # connection:model
    # d2: model A's job was reviewed to 5, so the review alone is final.
    assert (rows["d2.txt"]["final_score"], rows["d2.txt"]["max_score"]) == ("5", "10")
    assert (rows["d2.txt"]["Content (6)"], rows["d2.txt"]["Style (4)"]) == ("3", "2")
    assert (rows["d2.txt"]["reviewed"], rows["d2.txt"]["review_comment"]) == ("yes", "Fair.")
    # d3 failed on both models, d4 failed on one and waits on the other.
    assert (rows["d3.txt"]["final_score"], rows["d3.txt"]["status"]) == ("", "failed")
    assert rows["d4.txt"]["status"] == "failed, queued"


def test_the_csv_format_is_the_zips_gradebook_alone(worked):
    alone = b"".join(stream_gradebook_csv(worked))
    assert alone == unzip(worked).read("gradebook.csv")


def test_every_formula_like_cell_is_neutralised(owner):
    batch = rubric_batch(owner, name="=cmd|' /C calc'!A0")
    hostile = ["=HYPERLINK(evil).txt", "+1+1.txt", "-2.txt", "@SUM(A1).txt", "\tTab.txt", "\rCR.txt"]
    for name in hostile:
        job = add_job(batch, make_document(owner, name), MODEL_A, JobStatus.COMPLETED, 100)
        add_result(job, 3, 2).record_review(owner, 4, comment="=1+2")
    rows = list(csv.reader(io.StringIO(b"".join(stream_gradebook_csv(batch)).decode(), newline="")))
    assert len(rows) == 1 + len(hostile)
    for row in rows:
        for cell in row:
            assert not cell.startswith(FORMULA_PREFIXES), cell
    names = sorted(row[1] for row in rows[1:])
    assert names == sorted(f"'{name}" for name in hostile)
    assert {row[-1] for row in rows[1:]} == {"'=1+2"}


@pytest.mark.parametrize(
    "text",
    [
        "＝HYPERLINK(evil)",  # fullwidth equals sign
        "＋1+1",
        "－2",
        "＠SUM(A1)",
        "﹦1+1",  # small equals sign
        "\u200b=1+1",  # zero-width space
        "\u200c=1+1",
        "\u200d+1",
        "\u2060-1",  # word joiner
        "\ufeff=1+1",  # byte order mark
        "\u200e@SUM(A1)",  # left-to-right mark
        " =1+1",
        "\u00a0=1+1",  # no-break space
        "\u3000＝1",  # ideographic space, then fullwidth equals
        "\n=1+1",
        "\x0b=1+1",
        "\x1f+1",
        "\u200b\u200b \ufeff=1",
        "\u3164=1+1",  # Hangul filler
        "\uffa0=1+1",  # halfwidth Hangul filler
        "\u115f+1",
        "\u034f=1",  # combining grapheme joiner
        "\ufe0f@SUM(A1)",  # variation selector
        "\u2800=1",  # blank braille pattern
    ],
)
def test_formulas_behind_look_alikes_or_invisible_prefixes_are_neutralised(text):
    assert neutralise(text) == f"'{text}"


@pytest.mark.parametrize(
    "text", ["Ada Lovelace", "3.5", "a=b", "café – “quoted”", "", "\u200b", "１２", "\u3164Ada"]
)
def test_ordinary_cells_are_left_alone(text):
    assert neutralise(text) == text


def test_a_fullwidth_formula_in_a_file_name_reaches_the_csv_neutralised(owner):
    batch = rubric_batch(owner)
    for name in ["＝HYPERLINK(evil).txt", "\u200b=1+1.txt", "\ufeff@SUM(A1).txt"]:
        job = add_job(batch, make_document(owner, name), MODEL_A, JobStatus.COMPLETED, 100)
        add_result(job, 3, 2)
    rows = list(csv.reader(io.StringIO(b"".join(stream_gradebook_csv(batch)).decode(), newline="")))
    assert all(row[1].startswith("'") for row in rows[1:])


def test_unsafe_job_names_become_safe_unique_folders(owner):
    batch = rubric_batch(owner)
    document = make_document(owner)
    names = ["../../etc/passwd", "a/b\\c", "..", "Ünïcödé – essay 名前", "same", "same", "/abs", ""]
    for name in names:
        job = add_job(batch, document, MODEL_A, JobStatus.COMPLETED, 100)
        GradingJob.objects.filter(pk=job.pk).update(name=name)
    entries = unzip(batch).namelist()
    folders = {entry.rsplit("/", 1)[0] for entry in entries if entry.startswith("jobs/")}
    assert len(folders) == len(names)
    for entry in entries:
        assert SAFE_ENTRY.match(entry), entry
        assert ".." not in entry.split("/")
    assert any(folder.startswith("jobs/Unicode_essay-") for folder in folders)
    assert any(folder.startswith("jobs/etc_passwd-") for folder in folders)


def test_the_file_name_is_the_batch_slug_and_a_utc_timestamp(worked):
    assert export_filename(worked, "zip", now=NOW) == "worked-example-20250301T103000Z.zip"
    worked.name = "???"
    assert export_filename(worked, "csv", now=NOW) == f"batch-{worked.pk}-20250301T103000Z.csv"


def test_a_batch_without_results_exports_an_empty_gradebook_row_per_document(owner):
    batch = rubric_batch(owner)
    batch.add_documents([make_document(owner, "x.txt"), make_document(owner, "y.txt")])
    rows = gradebook(unzip(batch))
    assert [(row["file_name"], row["final_score"], row["status"]) for row in rows] == [
        ("x.txt", "", "pending"),
        ("y.txt", "", "pending"),
    ]


def test_the_zip_is_sent_in_chunks_as_it_is_written(owner, monkeypatch):
    monkeypatch.setattr("batches.export.CHUNK_BYTES", 1024)
    batch = rubric_batch(owner)
    document = make_document(owner)
    for _ in range(60):
        add_result(add_job(batch, document, MODEL_A, JobStatus.COMPLETED, 100), 3, 2)
    chunks = list(stream_zip(batch, now=NOW))
    assert len(chunks) > 10
    assert max(len(chunk) for chunk in chunks) < 64 * 1024


@pytest.mark.parametrize("stream", [stream_zip, stream_gradebook_csv], ids=["zip", "csv"])
def test_jobs_are_read_a_chunk_at_a_time_never_all_at_once(owner, monkeypatch, stream):
    monkeypatch.setattr("batches.export.ROWS_PER_QUERY", 5)
    batch = rubric_batch(owner)
    for number in range(23):
        job = add_job(batch, make_document(owner, f"essay-{number}.txt"), MODEL_A, JobStatus.COMPLETED, 100)
        add_result(job, 3, 2)
    with watching(GradingJob) as jobs:
        for _ in stream(batch):
            pass
    # Every job was read: once for the gradebook, and in the ZIP once more for its files
    # and once for the feedback sheets.
    assert jobs.built == (3 if stream is stream_zip else 1) * 23
    # A queryset iterated without .iterator() builds all 23 before the first row is written.
    assert jobs.most_alive <= 5


def test_writing_the_zip_to_a_file_leaves_the_whole_archive_and_no_partial_file(worked, tmp_path):
    target = tmp_path / "grades.zip"
    size = write_zip(worked, target)
    assert target.stat().st_size == size
    assert zipfile.ZipFile(target).testzip() is None
    assert [path.name for path in tmp_path.iterdir()] == ["grades.zip"]


def test_a_failed_write_leaves_no_file_behind(worked, tmp_path, monkeypatch):
    def broken(batch):
        yield b"PK"
        raise RuntimeError("the database went away")

    monkeypatch.setattr("batches.export.stream_zip", broken)
    with pytest.raises(RuntimeError):
        write_zip(worked, tmp_path / "grades.zip")
    assert list(tmp_path.iterdir()) == []

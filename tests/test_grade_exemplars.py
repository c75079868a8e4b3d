"""manage.py grade DIR --exemplars FILE.csv: the teacher's grades of a few documents calibrate the rest."""

from pathlib import Path

import pytest

from batches.models import JobBatch
from grading.models import Exemplar, GradingResult
from templates_app.models import BatchTemplate
from tests.conftest import prebuilt
from tests.test_grade_command import grade

pytestmark = pytest.mark.django_db

SENTENCE = (
    "The river town changed when the new bridge opened, because traders arrived from the hills "
    "and the market grew busier every week. "
)


@pytest.fixture
def folder(tmp_path) -> Path:
    """Twelve essays, each longer and more developed than the one before."""
    prebuilt("academic-essay")
    for i in range(12):
        paragraphs = "\n\n".join(SENTENCE * (i + 1) for _ in range(1 + i // 3))
        (tmp_path / f"essay-{i:02}.txt").write_text(f"My essay number {i}.\n\n{paragraphs}")
    return tmp_path


def exemplar_csv(folder: Path, rows: list[str]) -> Path:
    path = folder.parent / "exemplars.csv"
    path.write_text("\n".join(["file,score", *rows]) + "\n")
    return path


def test_exemplars_become_reviewed_exemplars_and_the_rest_is_calibrated(superuser, folder):
    teacher = {f"essay-{i:02}.txt": 20 + 7 * i for i in (0, 2, 4, 6, 8, 10)}
    csv_path = exemplar_csv(folder, [f"{name},{score}" for name, score in teacher.items()])

    status, output = grade(
        str(folder), "--template", "academic-essay", "--inline", "--exemplars", str(csv_path)
    )

    assert status == 0, output
    batch = JobBatch.objects.get()
    assert Exemplar.objects.filter(batch=batch).count() == 6
    reviewed = GradingResult.objects.filter(job__batch=batch, is_exemplar=True).select_related(
        "job__document"
    )
    assert {r.job.document.original_name: r.reviewed_score for r in reviewed} == teacher
    assert "Calibrated (builtin" in output and "leave-one-out" in output
    assert batch.calibration["models"][0]["method"] is not None
    others = GradingResult.objects.filter(job__batch=batch, is_exemplar=False).select_related("job__document")
    assert others.count() == 6
    for result in others:
        assert result.is_calibrated
        assert f"{result.job.document.original_name}  {result.score:g} / {result.max_score:g}" in output
    exemplar_lines = output.split("Exemplars (the teacher's grade):")[1]
    assert all(f"{name}  {score:g}" in exemplar_lines for name, score in teacher.items())


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (["missing.txt,50"], "“missing.txt” is not a document of the folder"),
        (["essay-01.txt,500"], "the score must be between 0 and 100"),
        (["essay-01.txt,lots"], "the score “lots” is not a number"),
        (["essay-01.txt,"], "the score is missing (give it, or every criterion's)"),
        (["essay-01.txt,50,7"], "has more values than the header has columns"),
        (["essay-01.txt,50", "essay-01.txt,60"], "line 3: “essay-01.txt” is graded on line 2 already"),
    ],
)
def test_a_bad_exemplar_row_exits_2_naming_the_line_and_creates_nothing(superuser, folder, rows, message):
    status, output = grade(
        str(folder),
        "--template",
        "academic-essay",
        "--inline",
        "--exemplars",
        str(exemplar_csv(folder, rows)),
    )

    assert status == 2
    assert "line " in output and message in output
    assert not JobBatch.objects.exists()


def test_exemplars_need_the_batch_to_be_followed_to_its_end(superuser, folder):
    status, output = grade(
        str(folder),
        "--template",
        "academic-essay",
        "--exemplars",
        str(exemplar_csv(folder, ["essay-01.txt,50"])),
    )

    assert status == 2 and "add --wait or --inline" in output
    assert not JobBatch.objects.exists()


def test_an_unknown_criterion_column_is_refused_naming_the_rubrics_keys(superuser, folder):
    path = folder.parent / "exemplars.csv"
    path.write_text("file,score,flair\nessay-01.txt,50,3\n")

    status, output = grade(str(folder), "--template", "academic-essay", "--inline", "--exemplars", str(path))

    assert status == 2 and "unknown columns flair" in output


def test_a_file_without_the_file_and_score_columns_is_refused_naming_what_it_has(superuser, folder):
    path = folder.parent / "exemplars.csv"
    path.write_text("name,total\nessay-01.txt,50\n")

    status, output = grade(str(folder), "--template", "academic-essay", "--inline", "--exemplars", str(path))

    assert status == 2
    assert f"--exemplars {path} needs the columns file and score (found: name, total)." in output
    assert not JobBatch.objects.exists()


def test_a_row_with_every_criterion_and_no_total_is_graded_at_their_sum(superuser, folder):
    keys = ("thesis", "evidence", "organisation", "analysis", "style")
    path = folder.parent / "exemplars.csv"
    lines = [f"file, score, {', '.join(keys)}"]  # spaces after the commas, as a spreadsheet may write
    lines += [f"./essay-{i:02}.txt,,{i},{i},{i},{i},{i}" for i in (1, 3, 5, 7, 9)]
    path.write_text("\n".join(lines) + "\n")

    status, output = grade(str(folder), "--template", "academic-essay", "--inline", "--exemplars", str(path))

    assert status == 0, output
    scores = dict(Exemplar.objects.values_list("document__original_name", "score"))
    assert scores == {f"essay-{i:02}.txt": 5 * i for i in (1, 3, 5, 7, 9)}


def test_a_batch_whose_every_job_failed_is_not_calibrated_and_says_why(superuser, tmp_path):
    prebuilt("academic-essay")
    for i in range(3):
        (tmp_path / f"sums-{i}.txt").write_text(f"{i} + {i} = {2 * i}")
    path = exemplar_csv(tmp_path, ["sums-0.txt,10"])

    status, output = grade(
        str(tmp_path), "--template", "academic-essay", "--inline", "--exemplars", str(path)
    )

    assert status == 1
    assert "Not calibrated: The batch has no completed grades to calibrate yet: grade it first." in output
    assert "Traceback" not in output


def test_a_holistic_band_from_1_to_6_is_learnt_calibrated_and_printed_on_the_band(superuser, folder):
    settings = {
        **prebuilt("academic-essay").default_settings,
        "rubric": {
            "criteria": [
                {
                    "key": "overall",
                    "name": "Overall",
                    "points": 6,
                    "levels": [{"points": p, "label": f"Band {p}", "descriptor": ""} for p in range(1, 7)],
                }
            ]
        },
    }
    BatchTemplate.objects.create(name="Holistic", slug="holistic", default_settings=settings, owner=superuser)
    teacher = {f"essay-{i:02}.txt": 1 + i // 2 for i in (0, 2, 4, 6, 8, 10)}
    csv_path = exemplar_csv(folder, [f"{name},{score}" for name, score in teacher.items()])

    status, output = grade(str(folder), "--template", "holistic", "--inline", "--exemplars", str(csv_path))

    assert status == 0, output
    assert "Calibrated (builtin" in output
    others = GradingResult.objects.filter(job__batch__isnull=False, is_exemplar=False)
    assert others.count() == 6
    for result in others.select_related("job__document"):
        assert result.score in {1, 2, 3, 4, 5, 6}
        assert result.criteria[0]["score"] == result.score
        assert f"{result.job.document.original_name}  {result.score:g} / 6" in output
    by_name = {r.job.document.original_name: r.score for r in others.select_related("job__document")}
    assert by_name["essay-01.txt"] <= by_name["essay-11.txt"]

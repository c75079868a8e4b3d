"""Gradebooks the LMSs import (Canvas, Moodle, Google Classroom) and the gradebook CSV with students.

Each layout is checked against what the LMS documents or its own code reads;
every file is read back with Python's csv module, with student names holding
accents, commas, quotes and formula characters.
"""

import csv
import io

import pytest

from batches.export import (
    FORMULA_PREFIXES,
    SCORE_BASES,
    gradebook_rows,
    stream_gradebook_csv,
    stream_lms_csv,
)
from batches.students import RosterRow, replace_roster
from grading.models import GradingJob, GradingResult, JobStatus
from tests.analytics_support import MODEL_A, MODEL_B, add_job, add_result, rubric_batch
from tests.api_support import client_for
from tests.conftest import make_document

pytestmark = pytest.mark.django_db

# (student id, name, e-mail): accents, a comma, quotes, and a name a spreadsheet would run.
ROSTER = [
    RosterRow("1001", "Zoë Núñez", "zoe@uni.example"),
    RosterRow("1002", "O'Brien, Seán", "sean@uni.example"),
    RosterRow("s-1003", 'Ada "The Countess" Lovelace', "ada@uni.example"),
    RosterRow("1004", '=HYPERLINK("http://x.example","click")', ""),
]


@pytest.fixture
def graded(owner):
    """Essay 1: five documents by four students, one unmatched; 10-point rubric (content 6 + style 4).

    1001_a.txt  Zoë      A: 8 (5, 3)                    1001_b.txt  Zoë  A: 6 (4, 2)
    1002_x.txt  O'Brien  A: 5 (3, 2), reviewed to 9 "Well argued, ""mostly""."
    s-1003_x.txt Ada      A: 7 (4, 3) and B: 9 (5, 4)     1004_x.txt  =HYPERLINK  A: 4 (2, 2)
    nobody.txt  (no student)  A: 3 (2, 1)
    """
    batch = rubric_batch(owner, name="Essay 1", student_pattern="{student_id}_*")
    scores = {
        "1001_a.txt": [(MODEL_A, 5, 3)],
        "1001_b.txt": [(MODEL_A, 4, 2)],
        "1002_x.txt": [(MODEL_A, 3, 2)],
        "s-1003_x.txt": [(MODEL_A, 4, 3), (MODEL_B, 5, 4)],
        "1004_x.txt": [(MODEL_A, 2, 2)],
        "nobody.txt": [(MODEL_A, 2, 1)],
    }
    for name, grades in scores.items():
        document = make_document(owner, name)
        for model, content, style in grades:
            add_result(add_job(batch, document, model, JobStatus.COMPLETED, 100), content, style)
    GradingResult.objects.get(job__batch=batch, job__document__original_name="1002_x.txt").record_review(
        owner, 9, comment='Well argued, "mostly".'
    )
    replace_roster(batch, ROSTER)
    return batch


def read(stream) -> list[list[str]]:
    return list(csv.reader(io.StringIO(b"".join(stream).decode("utf-8"), newline="")))


def assert_neutralised(rows: list[list[str]]) -> None:
    for row in rows:
        for cell in row:
            assert not cell.startswith(FORMULA_PREFIXES), cell


def test_canvas_gradebook_has_canvas_columns_the_points_possible_row_and_a_row_per_student(graded):
    rows = read(stream_lms_csv(graded, "canvas"))
    # Canvas's gradebook import, as its guide "How do I import grades in the Gradebook?"
    # (community.canvaslms.com, Instructor Guide) and its importer (canvas-lms,
    # lib/gradebook_importer.rb: "Student"/"ID" first, "SIS User ID" and "SIS Login ID"
    # after, "Section" last of the student columns, assignments as "Name (id)") read it;
    # the second row is the one its exporter writes and its importer looks for.
    assert rows[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "Essay 1"]
    assert rows[1] == ["    Points Possible", "", "", "", "", "10"]
    students = {row[0]: row[1:] for row in rows[2:]}
    assert students == {
        "Zoë Núñez": ["1001", "", "zoe@uni.example", "", "7"],  # mean of 8 and 6
        "O'Brien, Seán": ["1002", "", "sean@uni.example", "", "9"],  # the review
        'Ada "The Countess" Lovelace': ["", "s-1003", "ada@uni.example", "", "8"],  # mean of two models
        '\'=HYPERLINK("http://x.example","click")': ["1004", "", "", "", "4"],
    }
    assert_neutralised(rows)


def test_canvas_titles_carry_the_assignment_id_and_never_a_false_one(owner, graded):
    rows = read(stream_lms_csv(graded, "canvas", assignment="Essay one", assignment_id="5512"))
    assert rows[0][-1] == "Essay one (5512)"
    graded.name = "Essays (2024)"  # Canvas would read 2024 as an assignment's id
    assert read(stream_lms_csv(graded, "canvas"))[0][-1] == "Essays [2024]"


def test_moodle_gradebook_identifies_users_by_email_or_id_number_with_feedback(graded):
    rows = read(stream_lms_csv(graded, "moodle"))
    # Moodle's "Import CSV" (docs.moodle.org/en/Grade_import): "Map from" a column to a user
    # field (email address, ID number, username, user id), then each column to a grade item
    # or to "Feedback for <item>"; its own fixture grade/tests/fixtures/
    # grade_import_multiple_mappings.csv starts "First name,Last name,Email address,…".
    assert rows[0] == [
        "First name",
        "Last name",
        "ID number",
        "Email address",
        "Essay 1",
        "Feedback for Essay 1",
    ]
    students = {(row[0], row[1]): row[2:] for row in rows[1:]}
    assert students[("Zoë", "Núñez")][:3] == ["1001", "zoe@uni.example", "7"]
    assert students[("Seán", "O'Brien")] == [
        "1002",
        "sean@uni.example",
        "9",
        'Well argued, "mostly".\n\nOverall fine.',
    ]
    assert students[('Ada "The Countess"', "Lovelace")][:3] == ["s-1003", "ada@uni.example", "8"]
    assert len(rows) == 1 + 4  # the student without an e-mail has an ID number
    assert_neutralised(rows)


def test_classroom_gradebook_is_keyed_by_email(graded):
    rows = read(stream_lms_csv(graded, "classroom"))
    # Google Classroom knows students by their e-mail address. The layout follows the grades
    # Classroom itself downloads as CSV (Classroom Help, support.google.com/edu/classroom,
    # "Export grades": last name, first name, e-mail address, a column per assignment); no
    # published import specification could be consulted from here (README says so).
    assert rows[0] == ["Last Name", "First Name", "Email Address", "Essay 1"]
    assert sorted(rows[1:]) == sorted(
        [
            ["Núñez", "Zoë", "zoe@uni.example", "7"],
            ["O'Brien", "Seán", "sean@uni.example", "9"],
            ["Lovelace", 'Ada "The Countess"', "ada@uni.example", "8"],
        ]
    )  # the student without an e-mail cannot be placed, so is left out
    assert_neutralised(rows)


@pytest.mark.parametrize("kind", ["canvas", "moodle", "classroom"])
def test_unmatched_documents_never_reach_an_lms_gradebook(graded, kind):
    text = b"".join(stream_lms_csv(graded, kind)).decode()
    assert "nobody" not in text


def test_the_score_column_can_be_the_reviewed_or_calibrated_score_alone(graded):
    result = GradingResult.objects.get(job__batch=graded, job__document__original_name="1004_x.txt")
    result.raw_score, result.score = result.score, 5  # as a calibration re-scores it
    result.save(update_fields=["raw_score", "score"])
    scores = {}
    for basis in SCORE_BASES:
        rows = read(stream_lms_csv(graded, "canvas", basis))
        scores[basis] = {row[1] or row[2]: row[-1] for row in rows[2:]}
    assert scores["final"] == {"1001": "7", "1002": "9", "s-1003": "8", "1004": "5"}
    assert scores["reviewed"] == {"1001": "", "1002": "9", "s-1003": "", "1004": ""}
    assert scores["calibrated"] == {"1001": "", "1002": "", "s-1003": "", "1004": "5"}
    header = read(stream_gradebook_csv(graded, "reviewed"))[0]
    assert "reviewed_score" in header and "final_score" not in header


def test_the_gradebook_csv_has_a_bom_the_student_and_the_feedback(graded):
    body = b"".join(stream_gradebook_csv(graded))
    assert body.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"), newline="")))
    by_file = {row["file_name"]: row for row in rows}
    assert list(rows[0])[:6] == [
        "document_id",
        "file_name",
        "student_id",
        "student_name",
        "final_score",
        "max_score",
    ]
    assert (by_file["1002_x.txt"]["student_id"], by_file["1002_x.txt"]["student_name"]) == (
        "1002",
        "O'Brien, Seán",
    )
    assert by_file["1002_x.txt"]["feedback"] == "Overall fine."
    assert by_file["1002_x.txt"]["review_comment"] == 'Well argued, "mostly".'
    assert by_file["1004_x.txt"]["student_name"] == '\'=HYPERLINK("http://x.example","click")'
    assert (by_file["nobody.txt"]["student_id"], by_file["nobody.txt"]["final_score"]) == ("", "3")
    assert_neutralised(list(gradebook_rows(graded)))


def test_the_api_serves_each_format_with_its_name(owner, graded):
    client = client_for(owner)
    for kind in ("canvas", "moodle", "classroom"):
        response = client.get(f"/api/batches/{graded.pk}/export", {"format": kind, "assignment": "Essay one"})
        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/csv")
        assert response["Content-Disposition"].endswith(f'.{kind}.csv"')
        body = b"".join(response.streaming_content).decode()
        assert "Essay one" in body.splitlines()[0]
    response = client.get(f"/api/batches/{graded.pk}/export", {"format": "csv", "score": "reviewed"})
    assert "reviewed_score" in b"".join(response.streaming_content).decode("utf-8-sig").splitlines()[0]


@pytest.mark.parametrize(
    "params, field",
    [({"score": "best"}, "score"), ({"format": "canvas", "assignment_id": "12a"}, "assignment_id")],
)
def test_bad_export_parameters_are_a_400_naming_them(owner, graded, params, field):
    response = client_for(owner).get(f"/api/batches/{graded.pk}/export", params)
    assert response.status_code == 400
    assert field in response.json()


def test_lms_gradebooks_read_the_jobs_a_chunk_at_a_time(owner, monkeypatch):
    from tests.support.instances import watching

    monkeypatch.setattr("batches.export.ROWS_PER_QUERY", 5)
    batch = rubric_batch(owner, student_pattern="{student_id}-*")
    for number in range(23):
        job = add_job(batch, make_document(owner, f"{number}-essay.txt"), MODEL_A, JobStatus.COMPLETED, 100)
        add_result(job, 3, 2)
    from batches.students import identify_students

    identify_students(batch)
    with watching(GradingJob) as jobs:
        rows = read(stream_lms_csv(batch, "canvas"))
    assert len(rows) == 2 + 23
    assert jobs.built == 23
    assert jobs.most_alive <= 5

"""manage.py grade --exemplars reads the CSV files spreadsheets write, and refuses the rest in one sentence."""

from pathlib import Path

import pytest

from batches.models import JobBatch
from grading.models import Exemplar
from tests.conftest import prebuilt
from tests.test_grade_command import grade

pytestmark = pytest.mark.django_db

NAMES = ["essay one.txt", "essay, two.txt", "essay-3.txt", "essay-4.txt", "essay-5.txt", "café.txt"]


@pytest.fixture
def folder(tmp_path) -> Path:
    prebuilt("academic-essay")
    essays = tmp_path / "essays"
    essays.mkdir()
    for i, name in enumerate(NAMES):
        (essays / name).write_text(
            f"Essay {i}. " + "The bridge opened and the market grew busier. " * (i + 2)
        )
    return essays


def run(folder: Path, sheet: Path) -> tuple[int, str]:
    return grade(str(folder), "--template", "academic-essay", "--inline", "--exemplars", str(sheet))


def write(folder: Path, data: bytes) -> Path:
    path = folder.parent / "grades.csv"
    path.write_bytes(data)
    return path


def test_a_semicolon_separated_export_with_a_bom_crlf_and_decimal_commas_is_read(superuser, folder):
    # European Excel: UTF-8 with a BOM, CRLF, ";" between fields, "," in numbers, capitalised
    # and padded headers, and the blank lines (or lines of bare separators) left between blocks.
    text = 'File; Score \r\n"essay one.txt";7,5\r\n\r\n"essay, two.txt";12\r\n;\r\ncafé.txt;30,25\r\n'
    status, output = run(folder, write(folder, b"\xef\xbb\xbf" + text.encode()))

    assert status == 0, output
    scores = dict(Exemplar.objects.values_list("document__original_name", "score"))
    assert scores == {"essay one.txt": 7.5, "essay, two.txt": 12, "café.txt": 30.25}


def test_a_comma_separated_export_with_quoted_names_and_a_quoted_decimal_comma_is_read(superuser, folder):
    text = 'FILE,SCORE\n"essay, two.txt","7,5"\n"essay one.txt",40\n,\n'

    status, output = run(folder, write(folder, text.encode()))

    assert status == 0, output
    scores = dict(Exemplar.objects.values_list("document__original_name", "score"))
    assert scores == {"essay, two.txt": 7.5, "essay one.txt": 40}


def test_a_latin_1_file_is_read_with_its_accents(superuser, folder):
    status, output = run(folder, write(folder, "file;score\ncafé.txt;55\r\n".encode("latin-1")))

    assert status == 0, output
    assert Exemplar.objects.get().document.original_name == "café.txt"


def test_criterion_columns_are_matched_whatever_their_case(superuser, folder):
    text = "File,Score,Thesis,EVIDENCE,Organisation,Analysis,Style\nessay-3.txt,,4,5,6,7,8\n"

    status, output = run(folder, write(folder, text.encode()))

    assert status == 0, output
    exemplar = Exemplar.objects.get()
    assert exemplar.score == 30 and exemplar.criteria["evidence"] == 5


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"file;score\nessay-3.txt;150\n", "line 2: the score must be between 0 and 100."),
        (b"file;score\nessay-3.txt;7,5,1\n", "line 2: the score “7,5,1” is not a number."),
        (b"file;score\nlost.txt;50\n", "line 2: “lost.txt” is not a document of the folder"),
        (b"", "is empty: it needs a header line with the columns file and score."),
        (b"PK\x03\x04\x14\x00\x06\x00" + bytes(range(256)), "is a spreadsheet workbook, not CSV"),
    ],
)
def test_a_bad_sheet_exits_2_with_one_sentence_and_creates_nothing(superuser, folder, data, message):
    status, output = run(folder, write(folder, data))

    assert status == 2
    assert message in output and "Traceback" not in output
    assert len(output.strip().splitlines()) == 1
    assert not JobBatch.objects.exists()


def test_a_folder_given_as_the_sheet_exits_2_saying_so(superuser, folder):
    status, output = run(folder, folder.parent)

    assert status == 2
    assert output == f"--exemplars {folder.parent} is a folder; give the CSV file of the teacher's grades."


def test_a_sheet_that_does_not_exist_exits_2_saying_so(superuser, folder):
    status, output = run(folder, folder.parent / "nowhere.csv")

    assert status == 2
    assert output == f"--exemplars {folder.parent / 'nowhere.csv'}: there is no such file."


def test_a_sheet_of_ten_thousand_rows_is_refused_at_its_first_bad_line(superuser, folder):
    rows = "".join(f"pupil-{i:05}.txt;{i % 100}\n" for i in range(10_000))

    status, output = run(folder, write(folder, f"file;score\nessay-3.txt;50\n{rows}".encode()))

    assert status == 2
    assert output == "--exemplars line 3: “pupil-00000.txt” is not a document of the folder."

"""manage.py grade --export FILE writes the results ZIP when the batch ends."""

import csv
import io
import zipfile

import pytest
from django.core.management import CommandError, call_command

from batches.models import JobBatch

pytestmark = pytest.mark.django_db

ESSAY = (
    "This essay argues that cities should turn parking into parks, because the evidence from "
    "several studies shows that green space improves health. "
) * 30


@pytest.fixture
def folder(tmp_path):
    documents = tmp_path / "essays"
    documents.mkdir()
    (documents / "ada.txt").write_text(ESSAY)
    (documents / "=formula.txt").write_text(ESSAY[:400])
    return documents


def grade(*args: str) -> str:
    out = io.StringIO()
    call_command("grade", *args, stdout=out)
    return out.getvalue()


def test_the_export_is_written_when_the_batch_ends(superuser, essay_template, folder, tmp_path):
    target = tmp_path / "out" / "grades.zip"
    target.parent.mkdir()
    output = grade(str(folder), "--template", "academic-essay", "--inline", "--export", str(target))
    assert f"Wrote the results to {target}" in output
    archive = zipfile.ZipFile(target)
    assert archive.testzip() is None
    names = archive.namelist()
    assert names[:3] == ["README.txt", "batch.json", "gradebook.csv"]
    assert len([name for name in names if name.endswith("/result.json")]) == 2
    rows = list(csv.DictReader(io.StringIO(archive.read("gradebook.csv").decode())))
    assert sorted(row["file_name"] for row in rows) == ["'=formula.txt", "ada.txt"]
    assert all(row["final_score"] for row in rows)
    assert list(target.parent.iterdir()) == [target]


def test_an_export_into_a_missing_folder_is_refused_before_anything_is_created(
    superuser, essay_template, folder, tmp_path
):
    with pytest.raises(CommandError, match="no folder") as refused:
        grade(
            str(folder),
            "--template",
            "academic-essay",
            "--inline",
            "--export",
            str(tmp_path / "nope" / "g.zip"),
        )
    assert refused.value.returncode == 2
    assert not JobBatch.objects.exists()


def test_an_export_needs_the_command_to_follow_the_batch_to_its_end(
    superuser, essay_template, folder, tmp_path
):
    with pytest.raises(CommandError, match="--wait or --inline") as refused:
        grade(str(folder), "--template", "academic-essay", "--export", str(tmp_path / "g.zip"))
    assert refused.value.returncode == 2
    assert not JobBatch.objects.exists()


def test_an_export_onto_a_folder_is_refused(superuser, essay_template, folder, tmp_path):
    with pytest.raises(CommandError, match="is a folder"):
        grade(str(folder), "--template", "academic-essay", "--inline", "--export", str(tmp_path))

"""Students: read from file names by a pattern, matched against a roster, unmatched documents listed."""

import io
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from batches.models import BatchStatus, JobBatch
from batches.students import (
    RosterRefused,
    RosterRow,
    Student,
    identify_students,
    parse_roster,
    replace_roster,
)
from grading.models import GradingJob
from grading.naming import Identity, parse_name, pattern_problem
from tests.api_support import client_for, share
from tests.conftest import make_batch, make_document, prebuilt, set_status

pytestmark = pytest.mark.django_db


# --- the pattern ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, identity",
    [
        # Canvas: <sortable name, lower-cased, only word characters>_[LATE_]<user id>_<attachment id>_<file>
        ("lovelaceada_12345_67890_essay.docx", Identity("12345", "lovelaceada")),
        ("lovelaceada_LATE_12345_67890_my_essay_v2.docx", Identity("12345", "lovelaceada")),
        ("núñezzoë_555_1_essay.pdf", Identity("555", "núñezzoë")),
        ("lovelaceada_12345_text.html", Identity("12345", "lovelaceada")),
        ("anon_Xy7Zq_67890_essay.docx", Identity("anon_Xy7Zq", "")),
        ("essay.docx", None),
    ],
)
def test_canvas_download_names(name, identity):
    assert parse_name("canvas", name) == identity


@pytest.mark.parametrize(
    "name, identity",
    [
        # Moodle: <full name>_<participant number>_assignsubmission_<plugin>_<file>, folders by default.
        ("Ada Lovelace_1234567_assignsubmission_file_/essay.docx", Identity("", "Ada Lovelace")),
        ("Ada Lovelace_1234567_assignsubmission_file_essay.docx", Identity("", "Ada Lovelace")),
        ("export/Zoë Núñez_7_assignsubmission_onlinetext_/onlinetext.html", Identity("", "Zoë Núñez")),
        ("Participant_1234567_assignsubmission_file_/essay.docx", None),  # blind marking: no name
        ("essay.docx", None),
    ],
)
def test_moodle_download_names(name, identity):
    assert parse_name("moodle", name) == identity


def test_a_custom_pattern_reads_id_names_and_email():
    assert parse_name("{student_id}_{last}_{first}.*", "s123_Lovelace_Ada.docx") == Identity(
        "s123", "Ada Lovelace"
    )
    assert parse_name("{email}-*", "Ada@Uni.example-essay.pdf") == Identity("", "", "ada@uni.example")
    assert parse_name("{name} - essay.*", "Zoë Núñez - Essay.DOCX") == Identity("", "Zoë Núñez")
    assert parse_name("{student_id}_{last}_{first}.*", "essay.docx") is None


@pytest.mark.parametrize(
    "pattern, says",
    [
        ("{student}_{last}.*", "unknown placeholder {student}"),
        ("{student_id", "unbalanced"),
        ("*.docx", "names no student"),
        ("{name}_{name}.*", "{name} appears twice"),
        ("{student_id}*", "put some text between {student_id} and *"),
        ("{first}{last}.txt", "put some text between {first} and {last}"),
    ],
)
def test_unusable_patterns_say_why(pattern, says):
    assert says in pattern_problem(pattern)


def test_an_unknown_placeholder_in_a_template_is_a_400_naming_the_field(owner):
    body = {
        "name": "Named",
        "default_settings": prebuilt().default_settings,
        "job_structure": {"student_pattern": "{student}_{last}.*"},
    }
    response = client_for(owner).post("/api/batch-templates", body, format="json")
    assert response.status_code == 400
    assert "unknown placeholder {student}" in response.json()["job_structure"]["student_pattern"][0]


def test_an_unknown_placeholder_for_a_batch_is_a_400_naming_the_field(owner):
    batch = make_batch(owner, jobs=0)
    response = client_for(owner).patch(
        f"/api/batches/{batch.pk}", {"student_pattern": "{who}.*"}, format="json"
    )
    assert response.status_code == 400
    assert "unknown placeholder {who}" in response.json()["student_pattern"][0].lower()


def test_an_unknown_placeholder_with_an_upload_is_a_400_and_stores_nothing(owner):
    batch = make_batch(owner, jobs=0)
    response = client_for(owner).post(
        f"/api/batches/{batch.pk}/documents",
        {"files": [SimpleUploadedFile("a.txt", b"An essay.")], "student_pattern": "{who}.*"},
        format="multipart",
    )
    assert response.status_code == 400
    assert "unknown placeholder {who}" in response.json()["student_pattern"][0].lower()
    assert not batch.jobs.exists()


# --- students from file names ---------------------------------------------------------------


def _names(batch) -> dict[str, str | None]:
    jobs = GradingJob.objects.filter(batch=batch).select_related("document", "student")
    return {job.document.original_name: job.student.label if job.student else None for job in jobs}


def test_an_upload_with_a_pattern_reads_each_student_from_the_file_names(owner):
    batch = make_batch(owner, jobs=0)
    files = [
        SimpleUploadedFile("lovelaceada_12345_1_essay.txt", b"One."),
        SimpleUploadedFile("lovelaceada_12345_2_appendix.txt", b"Two."),
        SimpleUploadedFile("turingalan_777_3_essay.txt", b"Three."),
        SimpleUploadedFile("notes.txt", b"Four."),
    ]
    response = client_for(owner).post(
        f"/api/batches/{batch.pk}/documents",
        {"files": files, "student_pattern": "canvas"},
        format="multipart",
    )
    assert response.status_code == 201
    batch.refresh_from_db()
    assert batch.student_pattern == "canvas"
    assert _names(batch) == {
        "lovelaceada_12345_1_essay.txt": "lovelaceada (12345)",
        "lovelaceada_12345_2_appendix.txt": "lovelaceada (12345)",
        "turingalan_777_3_essay.txt": "turingalan (777)",
        "notes.txt": None,
    }
    assert Student.objects.filter(batch=batch).count() == 2
    jobs = {job["document"]["name"]: job["student"] for job in response.json()["jobs"]}
    assert jobs["turingalan_777_3_essay.txt"]["student_id"] == "777"
    assert jobs["notes.txt"] is None


def test_moodle_folders_inside_a_zip_name_the_student(owner):
    batch = make_batch(owner, jobs=0, student_pattern="moodle")
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("Ada Lovelace_101_assignsubmission_file_/essay.txt", "An essay.")
        zipped.writestr("Zoë Núñez_102_assignsubmission_file_/essay.txt", "Another essay.")
    upload = SimpleUploadedFile("submissions.zip", archive.getvalue())
    response = client_for(owner).post(
        f"/api/batches/{batch.pk}/documents", {"files": [upload]}, format="multipart"
    )
    assert response.status_code == 201
    labels = sorted(
        job.student.label for job in GradingJob.objects.filter(batch=batch).select_related("student")
    )
    assert labels == ["Ada Lovelace", "Zoë Núñez"]
    paths = sorted(job.document.source_path for job in GradingJob.objects.filter(batch=batch))
    assert paths[0] == "Ada Lovelace_101_assignsubmission_file_/essay.txt"


def test_the_templates_pattern_applies_when_the_batch_sets_none(owner):
    template = prebuilt()
    template.job_structure = {**template.job_structure, "student_pattern": "{student_id}-*"}
    template.save()
    batch = make_batch(owner, template, jobs=0)
    batch.add_documents([make_document(owner, "s42-essay.txt")])
    assert _names(batch) == {"s42-essay.txt": "s42"}


def test_changing_the_pattern_reads_every_document_again(owner):
    batch = make_batch(owner, jobs=0)
    batch.add_documents([make_document(owner, "s42-essay.txt")])
    assert _names(batch) == {"s42-essay.txt": None}
    response = client_for(owner).patch(
        f"/api/batches/{batch.pk}", {"student_pattern": "{student_id}-*"}, format="json"
    )
    assert response.status_code == 200
    assert _names(batch) == {"s42-essay.txt": "s42"}


# --- the roster -------------------------------------------------------------------------------

ROSTER = (
    "id,name,email\n"
    "12345,Ada Lovelace,ada@uni.example\n"
    '777,"Turing, Alan",alan@uni.example\n'
    "s9,Zoë Núñez,zoe@uni.example\n"
).encode()


def test_the_roster_is_read_by_its_header_in_any_order_and_encoding():
    rows = parse_roster(
        "\ufeffE-mail;Last name;First name;Student ID\nada@x.example;Lovelace;Ada;1\n".encode()
    )
    assert [(row.student_id, row.name, row.email) for row in rows] == [("1", "Ada Lovelace", "ada@x.example")]
    windows = parse_roster("id,name\n1,Zoë Núñez\n".encode("cp1252"))
    assert windows[0].name == "Zoë Núñez"


def test_a_gradebook_exported_from_canvas_is_a_roster():
    exported = (
        b"Student,ID,SIS User ID,SIS Login ID,Section,Essay 1 (5512)\n"
        b",,,,,Manual Posting\n"
        b"    Points Possible,,,,,10\n"
        b'"Lovelace, Ada",12345,S-1,ada.l,Section A,7\n'
    )
    assert parse_roster(exported) == [RosterRow("12345", "Lovelace, Ada", "", "Section A")]


def test_a_roster_with_problems_is_refused_whole_listing_each():
    with pytest.raises(RosterRefused) as refused:
        parse_roster(b"id,name,email\n1,Ada,ada@x.example\n1,Bob,bob@x.example\n,Cy,\n2,Di,not-an-email\n")
    problems = refused.value.problems
    assert any("repeats the id" in problem for problem in problems)
    assert any("neither an id nor an e-mail" in problem for problem in problems)
    assert any("not an e-mail address" in problem for problem in problems)
    with pytest.raises(RosterRefused, match="no id or e-mail column"):
        parse_roster(b"who,what\nAda,essay\n")


def test_the_roster_matches_by_id_email_and_name_and_lists_the_rest(owner):
    batch = make_batch(owner, jobs=0, student_pattern="canvas")
    names = [
        "lovelaceada_12345_1_essay.txt",  # id on the roster
        "turingalan_999_2_essay.txt",  # id unknown, but "turingalan" is "Turing, Alan"
        "núñezzoë_31_3_essay.txt",  # id unknown; the name folds to Zoë Núñez
        "hopper_grace_4_5_essay.txt",  # on no roster
        "essay.txt",  # does not fit the pattern
    ]
    batch.add_documents([make_document(owner, name) for name in names])
    counts = replace_roster(batch, parse_roster(ROSTER))
    assert counts == {"students": 3, "matched": 3, "unmatched": 2}
    assert _names(batch) == {
        "lovelaceada_12345_1_essay.txt": "Ada Lovelace (12345)",
        "turingalan_999_2_essay.txt": "Turing, Alan (777)",
        "núñezzoë_31_3_essay.txt": "Zoë Núñez (s9)",
        "hopper_grace_4_5_essay.txt": None,
        "essay.txt": None,
    }
    # The students read from the file names before the roster are gone.
    assert set(Student.objects.filter(batch=batch).values_list("on_roster", flat=True)) == {True}

    body = client_for(owner).get(f"/api/batches/{batch.pk}/roster").json()
    assert body["has_roster"] is True
    assert body["unmatched_count"] == 2
    reasons = {item["file_name"]: item["reason"] for item in body["unmatched"]}
    assert "not on the roster" in reasons["hopper_grace_4_5_essay.txt"]
    assert "does not fit the student pattern" in reasons["essay.txt"]
    documents = {student["student_id"]: student["documents"] for student in body["students"]}
    assert documents == {"12345": 1, "777": 1, "s9": 1}


def test_without_a_pattern_a_roster_id_or_email_in_the_name_matches(owner):
    batch = make_batch(owner, jobs=0)
    batch.add_documents(
        [
            make_document(owner, "essay 12345 final.txt"),
            make_document(owner, "alan@uni.example.txt"),
            make_document(owner, "12345 and 777.txt"),
            make_document(owner, "essay-123456.txt"),
        ]
    )
    replace_roster(batch, parse_roster(ROSTER))
    assert _names(batch) == {
        "essay 12345 final.txt": "Ada Lovelace (12345)",
        "alan@uni.example.txt": "Turing, Alan (777)",
        "12345 and 777.txt": None,  # two roster rows: ambiguous
        "essay-123456.txt": None,  # 12345 only as part of a longer number
    }


def test_documents_added_after_the_roster_are_matched_to_it(owner):
    batch = make_batch(owner, jobs=0, student_pattern="canvas")
    replace_roster(batch, parse_roster(ROSTER))
    batch.add_documents([make_document(owner, "x_777_1_essay.txt"), make_document(owner, "y_5_1_essay.txt")])
    assert _names(batch) == {"x_777_1_essay.txt": "Turing, Alan (777)", "y_5_1_essay.txt": None}
    assert Student.objects.filter(batch=batch).count() == 3  # no student made from a file name


def test_the_roster_upload_needs_change_and_answers_the_matching(owner, colleague):
    batch = make_batch(owner, jobs=0, student_pattern="canvas")
    batch.add_documents([make_document(owner, "lovelaceada_12345_1_essay.txt")])
    share(batch, colleague, "view")
    roster = SimpleUploadedFile("roster.csv", ROSTER, content_type="text/csv")
    refused = client_for(colleague).post(
        f"/api/batches/{batch.pk}/roster", {"file": roster}, format="multipart"
    )
    assert refused.status_code == 403
    roster.seek(0)
    response = client_for(owner).post(f"/api/batches/{batch.pk}/roster", {"file": roster}, format="multipart")
    assert response.status_code == 201
    assert (response.json()["matched"], response.json()["unmatched_count"]) == (1, 0)
    bad = SimpleUploadedFile("roster.csv", b"id,name\n,Nobody\n")
    response = client_for(owner).post(f"/api/batches/{batch.pk}/roster", {"file": bad}, format="multipart")
    assert response.status_code == 400
    assert "neither an id nor an e-mail" in response.json()["file"][0]
    assert Student.objects.filter(batch=batch).count() == 3  # the refused roster changed nothing


def test_an_archived_batchs_roster_cannot_change(owner):
    batch = set_status(make_batch(owner, jobs=0), BatchStatus.ARCHIVED)
    roster = SimpleUploadedFile("roster.csv", ROSTER)
    response = client_for(owner).post(f"/api/batches/{batch.pk}/roster", {"file": roster}, format="multipart")
    assert response.status_code == 409


def test_a_duplicate_keeps_the_students(owner):
    batch = make_batch(owner, jobs=0, student_pattern="canvas")
    batch.add_documents([make_document(owner, "lovelaceada_12345_1_essay.txt")])
    replace_roster(batch, parse_roster(ROSTER))
    copy = batch.duplicate()
    assert copy.student_pattern == "canvas"
    assert _names(copy) == {"lovelaceada_12345_1_essay.txt": "Ada Lovelace (12345)"}
    assert Student.objects.filter(batch=copy).count() == 3


# --- the pages ----------------------------------------------------------------------------------


def test_the_batch_page_lists_unmatched_documents_and_offers_the_roster_form(client, owner):
    batch = make_batch(owner, jobs=0, student_pattern="canvas")
    batch.add_documents(
        [make_document(owner, "lovelaceada_12345_1_essay.txt"), make_document(owner, "stray.txt")]
    )
    client.force_login(owner)
    page = client.get(f"/batches/{batch.pk}").content.decode()
    assert 'id="students"' in page
    assert "1 document without a student" in page
    assert "stray.txt" in page and "does not fit the student pattern" in page
    assert 'name="roster"' in page
    assert "lovelaceada (12345)" in page  # the jobs table's student column


def test_the_roster_form_replaces_the_students(client, owner, colleague):
    batch = make_batch(owner, jobs=0, student_pattern="canvas")
    batch.add_documents([make_document(owner, "lovelaceada_12345_1_essay.txt")])
    share(batch, colleague, "view")
    client.force_login(colleague)
    roster = SimpleUploadedFile("roster.csv", ROSTER)
    assert client.post(f"/batches/{batch.pk}/roster", {"roster": roster}).status_code == 403
    client.force_login(owner)
    roster.seek(0)
    response = client.post(f"/batches/{batch.pk}/roster", {"roster": roster}, follow=True)
    assert "Roster of 3 students saved: 1 document matched, 0 not." in response.content.decode()
    assert _names(batch) == {"lovelaceada_12345_1_essay.txt": "Ada Lovelace (12345)"}


def test_identify_students_is_idempotent(owner):
    batch = make_batch(owner, jobs=0, student_pattern="canvas")
    batch.add_documents([make_document(owner, "lovelaceada_12345_1_essay.txt")])
    first = _names(batch)
    assert identify_students(JobBatch.objects.get(pk=batch.pk)) == {"matched": 1, "unmatched": 0}
    assert _names(batch) == first
    assert Student.objects.filter(batch=batch).count() == 1


def test_the_upload_form_takes_a_student_pattern(client, owner):
    batch = make_batch(owner, jobs=0)
    client.force_login(owner)
    refused = client.post(
        f"/batches/{batch.pk}/upload",
        {"files": [SimpleUploadedFile("a.txt", b"An essay.")], "student_pattern": "{who}_*"},
    )
    assert refused.status_code == 400
    assert "Unknown placeholder {who}" in refused.content.decode()
    assert not batch.jobs.exists()
    response = client.post(
        f"/batches/{batch.pk}/upload",
        {"files": [SimpleUploadedFile("s7_essay.txt", b"An essay.")], "student_pattern": "{student_id}_*"},
    )
    assert response.status_code == 302
    assert _names(batch) == {"s7_essay.txt": "s7"}
    page = client.get(f"/batches/{batch.pk}/documents").content.decode()
    assert 'value="{student_id}_*"' in page

"""Students of a batch: who wrote each document, from its file name or the batch's roster.

A batch's students are `Student` rows. Each job points at the student who wrote
its document (`GradingJob.student`), so pages, exports and feedback sheets read
it with the job. Who that is comes from two sources:

- the file name, read by the batch's student pattern (grading/naming.py): the
  batch's own `student_pattern`, else its template's `job_structure.student_pattern`;
- the roster, a CSV of the class (id, name, e-mail; `POST /api/batches/{id}/roster`
  or the form on the batch page), which replaces the batch's students.

Without a roster, each identity a file name gives becomes a student (one per id,
else per e-mail, else per name). With a roster, a document is matched to a
roster row — by id, then e-mail, then name ("Ada Lovelace", "Lovelace, Ada" and
Canvas's "lovelaceada" are one name) — and a document that matches no row, or
several, stays without a student and is listed as unmatched, with the reason.
With a roster and no pattern, a file name holding exactly one roster row's id or
e-mail (as a whole word) is matched to it.

This module defines the model (loaded through batches.models, which imports it)
and names the batch model only by string, so it imports nothing of batches.models.
"""

import csv
import io
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone
from rest_framework.exceptions import ValidationError

from grading.models import Document, GradingJob
from grading.naming import Identity, parse_name

MAX_ROSTER_BYTES = 2 * 1024 * 1024
MAX_ROSTER_ROWS = 5000
MAX_LISTED_PROBLEMS = 20
UNMATCHED_LISTED = 200

# Roster headers, compared lower-cased with spaces, "_" and "-" removed.
ROSTER_COLUMNS = {
    "student_id": {"id", "studentid", "studentnumber", "idnumber", "sisuserid", "userid", "matriculation"},
    "name": {"name", "fullname", "student", "studentname"},
    "first": {"first", "firstname", "givenname"},
    "last": {"last", "lastname", "surname", "familyname"},
    "email": {"email", "emailaddress", "mail"},
    "section": {"section", "group", "class"},
}


class Student(models.Model):
    """One student of a batch: a roster row, or an identity read from a file name."""

    batch = models.ForeignKey("batches.JobBatch", on_delete=models.CASCADE, related_name="students")
    student_id = models.CharField(max_length=100, blank=True)
    name = models.CharField(max_length=200, blank=True)
    email = models.CharField(max_length=254, blank=True)
    section = models.CharField(max_length=100, blank=True)
    # True for a row of the uploaded roster; False for one read from a file name.
    on_roster = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name", "student_id", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["batch", "student_id"],
                condition=~Q(student_id=""),
                name="student_id_once_per_batch",
            ),
        ]

    def __str__(self) -> str:
        return self.label

    @property
    def display_name(self) -> str:
        return self.name or self.email or self.student_id or f"Student {self.pk}"

    @property
    def label(self) -> str:
        """The name with the id beside it when there is one: "Ada Lovelace (12345)"."""
        if self.student_id and self.display_name != self.student_id:
            return f"{self.display_name} ({self.student_id})"
        return self.display_name

    @property
    def first_last(self) -> tuple[str, str]:
        """(first, last) from the name: "Lovelace, Ada" or "Ada Lovelace"; the last word is the surname."""
        return split_name(self.name)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.pk,
            "student_id": self.student_id,
            "name": self.name,
            "email": self.email,
            "section": self.section,
            "on_roster": self.on_roster,
        }


def split_name(name: str) -> tuple[str, str]:
    if "," in name:
        last, first = (part.strip() for part in name.split(",", 1))
        return first, last
    words = name.split()
    if len(words) < 2:
        return "", name.strip()
    return " ".join(words[:-1]), words[-1]


def _fold(text: str) -> str:
    """Case, accents and everything but letters and digits dropped: "Núñez, Zoë" -> "nunezzoe"."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if ch.isalnum() and not unicodedata.combining(ch))


def name_keys(name: str) -> set[str]:
    """The forms a name takes in LMS file names: given names first, or the surname first."""
    if not name.strip():
        return set()
    first, last = split_name(name)
    return {key for key in (_fold(name), _fold(first + last), _fold(last + first)) if key}


# --- matching ----------------------------------------------------------------------


class _Roster:
    """The roster's rows indexed by id, e-mail and name keys."""

    def __init__(self, students: Iterable[Student]):
        self.by_id: dict[str, list[Student]] = {}
        self.by_email: dict[str, list[Student]] = {}
        self.by_name: dict[str, list[Student]] = {}
        for student in students:
            if student.student_id:
                self.by_id.setdefault(student.student_id.casefold(), []).append(student)
            if student.email:
                self.by_email.setdefault(student.email.casefold(), []).append(student)
            for key in name_keys(student.name):
                self.by_name.setdefault(key, []).append(student)

    def __bool__(self) -> bool:
        return bool(self.by_id or self.by_email or self.by_name)

    def match(self, identity: Identity) -> tuple[Student | None, str]:
        """The roster row the identity names, or None and why."""
        tries = [
            (self.by_id, identity.student_id.casefold()),
            (self.by_email, identity.email.casefold()),
        ]
        for index, key in tries:
            if key and key in index:
                found = index[key]
                if len(found) == 1:
                    return found[0], ""
                return None, f"{identity.describe()}: {len(found)} roster rows fit."
        candidates = {
            student.pk: student for key in name_keys(identity.name) for student in self.by_name.get(key, [])
        }
        if len(candidates) == 1:
            return next(iter(candidates.values())), ""
        if candidates:
            return None, f"{identity.describe()}: {len(candidates)} roster rows fit."
        return None, f"{identity.describe()}: not on the roster."

    def search(self, file_name: str) -> tuple[Student | None, str]:
        """With no pattern: the one roster row whose id or e-mail is a word of the file name."""
        text = file_name.casefold()
        stem = re.sub(r"\.[a-z0-9]{1,5}$", "", text)  # "ada@uni.example.txt" holds "ada@uni.example"
        words = set(re.findall(r"[^\W_]+", text)) | set(re.split(r"[\s_/]+", stem))
        emails = {
            email for part in (text, stem) for email in re.findall(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", part)
        }
        found = {student.pk: student for word in words for student in self.by_id.get(word, [])}
        found |= {student.pk: student for email in emails for student in self.by_email.get(email, [])}
        if len(found) == 1:
            return next(iter(found.values())), ""
        if found:
            return None, f"The name holds the ids or e-mails of {len(found)} roster rows."
        return None, "No roster id or e-mail is in the name (set a student pattern to read it)."


class _Matcher:
    """Finds (or, without a roster, makes) the student of each document of a batch."""

    def __init__(self, batch):
        self.batch = batch
        self.pattern = batch.effective_student_pattern()
        students = list(Student.objects.filter(batch=batch))
        self.roster = _Roster(student for student in students if student.on_roster)
        # Students read from file names, one per id, else per e-mail, else per name.
        self.found: dict[tuple[str, str], Student] = {}
        for student in students:
            if not student.on_roster:
                self.found.setdefault(_found_key(student.student_id, student.email, student.name), student)

    def student_for(self, document: Document, create: bool = True) -> tuple[Student | None, str]:
        name = document.name_as_uploaded
        identity = parse_name(self.pattern, name) if self.pattern else None
        if self.roster:
            if identity is not None:
                return self.roster.match(identity)
            if self.pattern:
                return None, f"The name does not fit the student pattern “{self.pattern}”."
            return self.roster.search(name)
        if not self.pattern:
            return None, "No student pattern and no roster: set a pattern or upload a roster."
        if identity is None:
            return None, f"The name does not fit the student pattern “{self.pattern}”."
        return self._found_student(identity, create), ""

    def _found_student(self, identity: Identity, create: bool) -> Student | None:
        key = _found_key(identity.student_id, identity.email, identity.name)
        if key in self.found or not create:
            return self.found.get(key)
        student = Student.objects.create(
            batch=self.batch,
            student_id=identity.student_id[:100],
            name=identity.name[:200],
            email=identity.email[:254],
        )
        self.found[key] = student
        return student


def _found_key(student_id: str, email: str, name: str) -> tuple[str, str]:
    if student_id:
        return ("id", student_id.casefold())
    if email:
        return ("email", email.casefold())
    return ("name", _fold(name))


def identify_students(batch, documents: Iterable[Document] | None = None) -> dict[str, int]:
    """Point the jobs of each document at its student (or at none); the counts matched and not.

    All the batch's documents when none are given. Students read from file names
    that no job points at any more are removed.
    """
    matcher = _Matcher(batch)
    if documents is None:
        documents = (
            Document.objects.filter(pk__in=GradingJob.objects.in_batch(batch).values("document_id"))
            .only("pk", "original_name", "source_path")
            .iterator(chunk_size=1000)
        )
    chosen: dict[int, int | None] = {}
    with transaction.atomic():
        for document in documents:
            student, _ = matcher.student_for(document)
            chosen[document.pk] = student.pk if student else None
        jobs = list(
            GradingJob.objects.in_batch(batch)
            .filter(document_id__in=list(chosen))
            .only("pk", "document_id", "student_id")
        )
        changed = []
        for job in jobs:
            if job.student_id != chosen[job.document_id]:
                job.student_id = chosen[job.document_id]
                changed.append(job)
        GradingJob.objects.bulk_update(changed, ["student"], batch_size=500)
        Student.objects.filter(batch=batch, on_roster=False).exclude(
            pk__in=GradingJob.objects.in_batch(batch).filter(student__isnull=False).values("student_id")
        ).delete()
    matched = sum(1 for student in chosen.values() if student is not None)
    return {"matched": matched, "unmatched": len(chosen) - matched}


@dataclass(frozen=True)
class Unmatched:
    document_id: int
    file_name: str
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"document_id": self.document_id, "file_name": self.file_name, "reason": self.reason}


def unmatched_documents(batch, limit: int = UNMATCHED_LISTED) -> tuple[list[Unmatched], int]:
    """The first `limit` documents of the batch with no student, each with why; and how many in all."""
    documents = Document.objects.filter(
        pk__in=GradingJob.objects.in_batch(batch).filter(student__isnull=True).values("document_id")
    ).order_by("original_name", "pk")
    total = documents.count()
    matcher = _Matcher(batch)
    listed = []
    for document in documents.only("pk", "original_name", "source_path")[:limit]:
        _, reason = matcher.student_for(document, create=False)
        listed.append(Unmatched(document.pk, document.original_name, reason or "No student yet."))
    return listed, total


def roster_summary(batch, limit: int = UNMATCHED_LISTED) -> dict[str, Any]:
    """What GET /api/batches/{id}/roster answers: the pattern, the students and the unmatched documents."""
    students = Student.objects.filter(batch=batch).annotate(
        documents=models.Count("jobs__document", distinct=True)
    )
    unmatched, total = unmatched_documents(batch, limit)
    return {
        "student_pattern": batch.effective_student_pattern(),
        "has_roster": any(student.on_roster for student in students),
        "students": [{**student.as_dict(), "documents": student.documents} for student in students],
        "unmatched_count": total,
        "unmatched": [item.as_dict() for item in unmatched],
    }


# --- the roster CSV -------------------------------------------------------------------


@dataclass(frozen=True)
class RosterRow:
    student_id: str
    name: str
    email: str
    section: str = ""


class RosterRefused(ValidationError):
    """A roster refused as a whole, one sentence per problem; the API answers 400 {"file": [...]}."""

    def __init__(self, problems: list[str]):
        shown = problems[:MAX_LISTED_PROBLEMS]
        if len(problems) > MAX_LISTED_PROBLEMS:
            shown.append(f"… and {len(problems) - MAX_LISTED_PROBLEMS} more problems like these.")
        self.problems = shown
        super().__init__({"file": shown})


def _header_key(text: str) -> str:
    return re.sub(r"[\s_\-]+", "", text.strip().lstrip("\ufeff").casefold())


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Spreadsheet programs on Windows still save "CSV" in Windows-1252.
        return data.decode("cp1252", errors="replace")


def parse_roster(data: bytes) -> list[RosterRow]:
    """The rows of a roster CSV (comma, semicolon or tab separated); raises RosterRefused listing every problem.

    Columns are found by their header, in any order: an id ("id", "student id",
    "ID number", "SIS User ID"), a name ("name", or "first name" and "last name"),
    an e-mail ("email", "e-mail", "Email address") and optionally a section. Each
    row needs an id or an e-mail; ids and e-mails may not repeat.
    """
    if len(data) > MAX_ROSTER_BYTES:
        raise RosterRefused([f"The roster is larger than {MAX_ROSTER_BYTES // (1024 * 1024)} MB."])
    text = _decode(data).replace("\x00", "")
    if not text.strip():
        raise RosterRefused(["The roster is empty: give a CSV with a header row (id, name, email)."])
    first_line = text.splitlines()[0]
    delimiter = max(",;\t", key=first_line.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
    except csv.Error as exc:
        raise RosterRefused([f"The roster is not readable CSV: {exc}."]) from None
    columns: dict[str, int] = {}
    for index, title in enumerate(header):
        key = _header_key(title)
        for field, aliases in ROSTER_COLUMNS.items():
            if key in aliases and field not in columns:
                columns[field] = index
    if "student_id" not in columns and "email" not in columns:
        raise RosterRefused(
            [
                "The roster has no id or e-mail column: name the columns in a header row, "
                f"e.g. “id,name,email” (found: {', '.join(header[:10]) or 'nothing'})."
            ]
        )
    rows, problems = [], []
    ids: dict[str, int] = {}
    emails: dict[str, int] = {}
    try:
        for line, cells in enumerate(reader, start=2):
            if not any(cell.strip() for cell in cells) or "Points Possible" in (cells[0] if cells else ""):
                continue  # blank, or the second row of a gradebook exported from Canvas
            if len(rows) >= MAX_ROSTER_ROWS:
                problems.append(f"The roster has more than {MAX_ROSTER_ROWS} students.")
                break
            row = _roster_row(cells, columns)
            if not (row.student_id or row.email or row.name):
                continue  # no student on it (Canvas's "Manual Posting" row, a totals row)
            problem = _row_problem(row, line, ids, emails)
            if problem:
                problems.append(problem)
            else:
                rows.append(row)
    except csv.Error as exc:
        problems.append(f"The roster is not readable CSV: {exc}.")
    if problems:
        raise RosterRefused(problems)
    if not rows:
        raise RosterRefused(["The roster has a header but no students."])
    return rows


def _roster_row(cells: list[str], columns: dict[str, int]) -> RosterRow:
    def cell(field: str) -> str:
        index = columns.get(field)
        return cells[index].strip() if index is not None and index < len(cells) else ""

    name = cell("name") or " ".join(part for part in (cell("first"), cell("last")) if part)
    return RosterRow(cell("student_id")[:100], name[:200], cell("email")[:254], cell("section")[:100])


def _row_problem(row: RosterRow, line: int, ids: dict[str, int], emails: dict[str, int]) -> str | None:
    if not row.student_id and not row.email:
        return f"Row {line} has neither an id nor an e-mail."
    if row.email and not re.fullmatch(r"[^@\s]+@[^@\s]+", row.email):
        return f"Row {line}: “{row.email}” is not an e-mail address."
    for value, seen, what in ((row.student_id, ids, "id"), (row.email.casefold(), emails, "e-mail")):
        if value and value.casefold() in seen:
            return f"Row {line} repeats the {what} “{value}” of row {seen[value.casefold()]}."
        if value:
            seen[value.casefold()] = line
    return None


def replace_roster(batch, rows: list[RosterRow]) -> dict[str, int]:
    """The roster becomes the batch's students (those read from file names go); every document is matched again."""
    with transaction.atomic():
        Student.objects.filter(batch=batch).delete()
        Student.objects.bulk_create(
            [
                Student(
                    batch=batch,
                    student_id=row.student_id,
                    name=row.name,
                    email=row.email,
                    section=row.section,
                    on_roster=True,
                )
                for row in rows
            ],
            batch_size=500,
        )
        counts = identify_students(batch)
    return {"students": len(rows), **counts}


def copy_students(source, target) -> None:
    """Give a duplicated batch the source's students, and each copied job its document's student."""
    copies = {}
    for student in Student.objects.filter(batch=source):
        original = student.pk
        student.pk, student.batch = None, target
        student.save()
        copies[original] = student.pk
    by_document = dict(
        GradingJob.objects.in_batch(source)
        .filter(student__isnull=False)
        .values_list("document_id", "student_id")
    )
    jobs = list(GradingJob.objects.in_batch(target).only("pk", "document_id"))
    for job in jobs:
        job.student_id = copies.get(by_document.get(job.document_id))
    GradingJob.objects.bulk_update(jobs, ["student"], batch_size=500)


def student_overview(batch, limit: int = 50) -> dict[str, Any]:
    """What the batch page shows: the pattern, how many students, and the first unmatched documents."""
    counts = Student.objects.filter(batch=batch).aggregate(
        total=models.Count("pk"), on_roster=models.Count("pk", filter=Q(on_roster=True))
    )
    unmatched, total = unmatched_documents(batch, limit)
    return {
        "pattern": batch.effective_student_pattern(),
        "students": counts["total"],
        "on_roster": counts["on_roster"],
        "unmatched": unmatched,
        "unmatched_count": total,
    }

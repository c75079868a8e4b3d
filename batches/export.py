"""A batch's results as a ZIP, a gradebook CSV, or a gradebook an LMS imports, written as sent.

Memory stays flat however large the batch: jobs are read with a database
iterator in chunks, and the ZIP is written into a small buffer that the
generator empties into the response every time it passes CHUNK_BYTES; feedback
sheets are made one student at a time. Nothing ever holds the whole archive or
all the rows.

Gradebooks for learning management systems (each laid out as the LMS reads it,
see README "Results: analytics, review, export"): one row per student, the
student's score being the mean of their documents' scores:

canvas     Canvas's gradebook import: Student, ID, SIS User ID, SIS Login ID, Section,
           the assignment, and the "Points Possible" row under the header.
moodle     Moodle's grade import (CSV): First name, Last name, ID number, Email address,
           the grade item, and "Feedback for <item>".
classroom  Google Classroom: Last Name, First Name, Email Address, the assignment.
"""

import csv
import io
import itertools
import json
import re
import unicodedata
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from statistics import fmean
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.utils import timezone
from django.utils.text import slugify

from batches.analytics import batch_analytics
from batches.feedback import CriterionFeedback, DocumentFeedback, FeedbackSheet, render_pdf
from grading.models import GradingJob, GradingResult, JobStatus
from grading.providers import kind_of

CHUNK_BYTES = 64 * 1024
ROWS_PER_QUERY = 500
# Cells a spreadsheet would read as a formula (or that hide one behind a control character).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
FORMULA_SIGNS = ("=", "+", "-", "@")
# What may stand unseen before a formula sign: whitespace, control and format
# characters (zero-width spaces and joiners U+200B..U+200D, U+2060, the BOM U+FEFF,
# bidirectional marks). Spreadsheets skip some of these when they look for a formula.
INVISIBLE_CATEGORIES = {"Cc", "Cf", "Zs", "Zl", "Zp"}
# Characters that show nothing though their category says a letter or a mark:
# Unicode's default-ignorable ones outside Cf (the Hangul fillers, the combining
# grapheme joiner, Khmer's inherent vowels, variation selectors) and the blank
# braille pattern, all used to hide a prefix from the eye.
INVISIBLE_CHARACTERS = frozenset(
    "\u034f\u115f\u1160\u17b4\u17b5\u180b\u180c\u180d\u180f\u2800\u3164\uffa0"
    + "".join(map(chr, range(0xFE00, 0xFE10)))
    + "".join(map(chr, range(0xE0100, 0xE01F0)))
)
# Which score a gradebook carries (?score=): the final one (FINAL_SCORE_RULE), the
# reviewer's alone, or the AI's as calibrated to the teacher's scale alone.
SCORE_BASES = ("final", "reviewed", "calibrated")
LMS_FORMATS = ("canvas", "moodle", "classroom")
BOM = "\ufeff".encode()
# Canvas reads a title ending in "(digits)" as the id of an existing assignment.
CANVAS_ID_SUFFIX = re.compile(r"\s*\((\d+)\)\s*$")
FINAL_SCORE_RULE = (
    "When a document was graded by several models (or several times), its final score is the "
    "mean of the reviewed scores of its reviewed jobs if a reviewer scored any of them; "
    "otherwise the mean of the AI scores of its completed jobs. Per-criterion columns follow "
    "the same rule, taking a reviewer's criterion score where one was given and the AI's "
    "otherwise."
)


# --- names ---------------------------------------------------------------------


def export_filename(batch, extension: str, now: datetime | None = None) -> str:
    """<batch-slug>-<UTC timestamp>.<extension>, e.g. essays-20250301T100000Z.zip."""
    stamp = (now or timezone.now()).astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{slugify(batch.name)[:60] or f'batch-{batch.pk}'}-{stamp}.{extension}"


def safe_name(name: str, limit: int = 80) -> str:
    """A name that is one harmless ASCII path component inside a ZIP.

    Accents are folded ("é" -> "e"), anything other than letters, digits, dot,
    dash and underscore becomes "_", so "/" and "\\" cannot make folders, and
    leading dots are dropped, so ".." cannot climb out of one.
    """
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", folded).strip("._-")
    return cleaned[:limit].rstrip("._-") or "job"


def job_folder(job: GradingJob) -> str:
    # The job's id keeps two jobs with the same (or same-looking) name apart.
    return f"jobs/{safe_name(job.name)}-{job.pk}"


# --- the gradebook ----------------------------------------------------------------


def neutralise(cell: Any) -> str:
    """The cell as text, with a leading apostrophe where a spreadsheet might see a formula.

    Judged on the text as a spreadsheet may read it: NFKC-normalised, so the
    fullwidth ＝ ＋ － ＠ (and ﹦ ﹢ ﹣ ﹫) count as = + - @, and with any invisible
    prefix (whitespace, control and format characters, a BOM) skipped. The
    text itself is kept as it was, behind the apostrophe.
    """
    text = "" if cell is None else str(cell)
    return f"'{text}" if looks_like_formula(text) else text


def looks_like_formula(text: str) -> bool:
    if text.startswith(FORMULA_PREFIXES):
        return True
    for character in unicodedata.normalize("NFKC", text):
        if not (
            character.isspace()
            or character in INVISIBLE_CHARACTERS
            or unicodedata.category(character) in INVISIBLE_CATEGORIES
        ):
            return character in FORMULA_SIGNS  # the first visible character
    return False


def _number(value: float | None) -> str:
    return "" if value is None else f"{round(value, 2):g}"


@dataclass
class DocumentGrade:
    score: float | None
    max_score: float | None
    criteria: dict[str, float]
    reviewed: bool
    graded_by: list[str]
    comments: list[str]
    # The AI's overall feedback of the results counted.
    feedback: list[str] = field(default_factory=list)
    # "yes" when the score counts only calibrated AI scores, "partly" when it also counts a
    # provider's own (a model the calibration had no map for), else "no".
    calibrated: str = "no"


def document_grade(results: list[GradingResult], basis: str = "final") -> DocumentGrade:
    """A document's grade from its results: by FINAL_SCORE_RULE, or the reviewed or calibrated score alone.

    "reviewed" counts only reviewed results (their reviewer's scores), "calibrated"
    only results a calibration re-scored (the AI's calibrated scores); a document
    with none has no score on that basis.
    """
    if not results:
        return DocumentGrade(None, None, {}, False, [], [])
    reviewed = [result for result in results if result.is_reviewed]
    if basis == "reviewed":
        counted, score_of, criteria_of = reviewed, _reviewed_score, _reviewed_criterion_scores
    elif basis == "calibrated":
        counted = [result for result in results if result.is_calibrated]
        score_of, criteria_of = _ai_score, _ai_criterion_scores
    else:
        counted, score_of, criteria_of = reviewed or results, _final_score, _criterion_scores
    criteria: dict[str, list[float]] = {}
    for result in counted:
        for key, score in criteria_of(result).items():
            criteria.setdefault(key, []).append(score)
    return DocumentGrade(
        score=fmean(score_of(result) for result in counted) if counted else None,
        max_score=max(result.max_score for result in counted or results),
        criteria={key: fmean(scores) for key, scores in criteria.items()},
        reviewed=bool(reviewed),
        graded_by=sorted({f"{result.provider}:{result.model}" for result in results}),
        comments=[result.review_comment for result in reviewed if result.review_comment],
        feedback=list(dict.fromkeys(result.feedback for result in counted or results if result.feedback)),
        calibrated=_calibrated(counted, score_of),
    )


def combined_grade(grades: list[DocumentGrade]) -> DocumentGrade:
    """A student's grade over their documents: the mean of the documents' scores (per criterion alike)."""
    scored = [grade for grade in grades if grade.score is not None]
    criteria: dict[str, list[float]] = {}
    for grade in scored:
        for key, score in grade.criteria.items():
            criteria.setdefault(key, []).append(score)
    maxima = [grade.max_score for grade in grades if grade.max_score is not None]
    return DocumentGrade(
        score=fmean(grade.score for grade in scored) if scored else None,
        max_score=max(maxima) if maxima else None,
        criteria={key: fmean(scores) for key, scores in criteria.items()},
        reviewed=any(grade.reviewed for grade in grades),
        graded_by=sorted({model for grade in grades for model in grade.graded_by}),
        comments=[comment for grade in grades for comment in grade.comments],
        feedback=[text for grade in grades for text in grade.feedback],
    )


def _final_score(result: GradingResult) -> float:
    return result.final_score


def _reviewed_score(result: GradingResult) -> float:
    return result.reviewed_score


def _ai_score(result: GradingResult) -> float:
    return result.score


def _scores(items) -> dict[str, float]:
    return {
        str(item["key"]): float(item["score"])
        for item in items or []
        if isinstance(item, dict) and isinstance(item.get("score"), int | float) and "key" in item
    }


def _ai_criterion_scores(result: GradingResult) -> dict[str, float]:
    return _scores(result.criteria)


def _reviewed_criterion_scores(result: GradingResult) -> dict[str, float]:
    return _scores(result.reviewed_criteria)


def _criterion_scores(result: GradingResult) -> dict[str, float]:
    """The reviewer's criterion score where one was given, the AI's otherwise."""
    return {**_ai_criterion_scores(result), **_reviewed_criterion_scores(result)}


def rubric_columns(batch) -> list[tuple[str, str]]:
    """(key, header) per rubric criterion, e.g. ("thesis", "Thesis and argument (20)")."""
    rubric = batch.effective_settings().get("rubric") or {}
    columns = []
    for item in rubric.get("criteria") or []:
        if isinstance(item, dict) and item.get("key"):
            columns.append(
                (str(item["key"]), f"{item.get('name') or item['key']} ({item.get('points', 0):g})")
            )
    return columns


def rubric_total(batch) -> float | None:
    """The rubric's points in all: what a gradebook calls points possible."""
    rubric = batch.effective_settings().get("rubric") or {}
    points = [
        float(item.get("points") or 0) for item in rubric.get("criteria") or [] if isinstance(item, dict)
    ]
    return sum(points) if points else None


def rubric_levels(batch) -> dict[str, list[tuple[float, str]]]:
    """Each criterion's levels as (points, label), lowest first."""
    if batch is None:
        return {}
    rubric = batch.effective_settings().get("rubric") or {}
    levels = {}
    for item in rubric.get("criteria") or []:
        if isinstance(item, dict) and item.get("key"):
            found = [
                (float(level["points"]), str(level.get("label") or ""))
                for level in item.get("levels") or []
                if isinstance(level, dict) and isinstance(level.get("points"), int | float)
            ]
            levels[str(item["key"])] = sorted(found)
    return levels


def _graded_jobs(queryset):
    """Jobs with what grades and names need (not the document's text nor the raw reply)."""
    return queryset.select_related("document", "result", "student").defer(
        "settings", "overrides", "document__text", "result__raw_response"
    )


def _calibrated(counted: list[GradingResult], score_of) -> str:
    if score_of is _reviewed_score or (score_of is _final_score and any(r.is_reviewed for r in counted)):
        return "no"  # the reviewer's scores
    calibrated = [result.is_calibrated for result in counted]
    return "yes" if calibrated and all(calibrated) else "partly" if any(calibrated) else "no"


def gradebook_rows(batch, basis: str = "final") -> Iterator[list[str]]:
    """The header, then one row per document in the batch, every cell neutralised."""
    columns = rubric_columns(batch)
    header = ["document_id", "file_name", "student_id", "student_name", f"{basis}_score", "max_score"]
    header += ["percent", *(title for _, title in columns)]
    header += ["reviewed", "calibrated", "graded_by", "status", "feedback", "review_comment"]
    yield [neutralise(cell) for cell in header]
    jobs = (
        _graded_jobs(GradingJob.objects.in_batch(batch))
        .order_by("document_id", "pk")
        .iterator(chunk_size=ROWS_PER_QUERY)
    )
    for _, document_jobs in itertools.groupby(jobs, key=lambda job: job.document_id):
        yield _gradebook_row(list(document_jobs), columns, basis)


def _gradebook_row(jobs: list[GradingJob], columns: list[tuple[str, str]], basis: str) -> list[str]:
    document, student = jobs[0].document, jobs[0].student
    results = _results(jobs)
    grade = document_grade(results, basis)
    percent = 100 * grade.score / grade.max_score if grade.score is not None and grade.max_score else None
    status = "graded" if results else ", ".join(sorted({job.status for job in jobs}))
    row = [document.pk, document.original_name]
    row += [student.student_id, student.name] if student else ["", ""]
    row += [_number(grade.score), _number(grade.max_score), _number(percent)]
    row += [_number(grade.criteria.get(key)) for key, _ in columns]
    row += ["yes" if grade.reviewed else "no", grade.calibrated, "; ".join(grade.graded_by), status]
    row += [" | ".join(grade.feedback), " | ".join(grade.comments)]
    return [neutralise(cell) for cell in row]


def _results(jobs: list[GradingJob]) -> list[GradingResult]:
    return [job.result for job in jobs if job.status == JobStatus.COMPLETED and _has_result(job)]


# --- students: LMS gradebooks and feedback sheets -------------------------------------


@dataclass
class StudentGrade:
    student: Any  # batches.students.Student
    grade: DocumentGrade


def student_grades(batch, basis: str = "final") -> Iterator[StudentGrade]:
    """One grade per student of the batch who has a document, read a chunk of jobs at a time."""
    jobs = (
        _graded_jobs(GradingJob.objects.in_batch(batch).filter(student__isnull=False))
        .order_by("student__name", "student_id", "document_id", "pk")
        .iterator(chunk_size=ROWS_PER_QUERY)
    )
    for _, student_jobs in itertools.groupby(jobs, key=lambda job: job.student_id):
        student_jobs = list(student_jobs)
        grades = [
            document_grade(_results(list(document_jobs)), basis)
            for _, document_jobs in itertools.groupby(student_jobs, key=lambda job: job.document_id)
        ]
        yield StudentGrade(student_jobs[0].student, combined_grade(grades))


def assignment_title(batch, assignment: str | None = None) -> str:
    return (assignment or "").strip()[:200] or batch.name


def canvas_rows(batch, basis: str = "final", assignment: str | None = None, assignment_id: str | None = None):
    """Canvas's gradebook import (lib/gradebook_importer.rb): header, "Points Possible", a row per student.

    A student is matched by ID (Canvas's user id, what its download names carry),
    then SIS User ID, SIS Login ID, then the name: a numeric student id is written
    as the ID, any other as the SIS User ID, the e-mail as the SIS Login ID.
    """
    title = assignment_title(batch, assignment)
    if assignment_id:
        title = f"{title} ({assignment_id})"
    else:
        # "Essays (2024)" would be read as the assignment with id 2024.
        title = CANVAS_ID_SUFFIX.sub(lambda match: f" [{match.group(1)}]", title)
    yield [neutralise(cell) for cell in ("Student", "ID", "SIS User ID", "SIS Login ID", "Section", title)]
    # Canvas's own export writes the label indented; its importer looks for "Points Possible".
    yield [neutralise(cell) for cell in ("    Points Possible", "", "", "", "", _number(rubric_total(batch)))]
    for item in student_grades(batch, basis):
        student = item.student
        numeric = student.student_id.isdigit()
        row = [
            student.name or student.display_name,
            student.student_id if numeric else "",
            "" if numeric else student.student_id,
            student.email,
            student.section,
            _number(item.grade.score),
        ]
        yield [neutralise(cell) for cell in row]


def feedback_text(grade: DocumentGrade) -> str:
    """What a student reads beside the grade: the reviewer's comments, then the AI's overall feedback."""
    return "\n\n".join([*grade.comments, *grade.feedback])


def moodle_rows(batch, basis: str = "final", assignment: str | None = None):
    """Moodle's CSV grade import: identify users by "Email address" or "ID number"; a grade item and its feedback.

    Rows without an e-mail or an id are left out: Moodle cannot place them.
    """
    item = assignment_title(batch, assignment)
    header = ("First name", "Last name", "ID number", "Email address", item, f"Feedback for {item}")
    yield [neutralise(cell) for cell in header]
    for graded in student_grades(batch, basis):
        student = graded.student
        if not (student.email or student.student_id):
            continue
        first, last = student.first_last
        row = [first, last, student.student_id, student.email, _number(graded.grade.score)]
        yield [neutralise(cell) for cell in [*row, feedback_text(graded.grade)]]


def classroom_rows(batch, basis: str = "final", assignment: str | None = None):
    """Google Classroom: students are known by their e-mail; rows without one are left out."""
    yield [
        neutralise(cell)
        for cell in ("Last Name", "First Name", "Email Address", assignment_title(batch, assignment))
    ]
    for graded in student_grades(batch, basis):
        student = graded.student
        if not student.email:
            continue
        first, last = student.first_last
        yield [neutralise(cell) for cell in (last, first, student.email, _number(graded.grade.score))]


def stream_lms_csv(
    batch, kind: str, basis: str = "final", assignment: str | None = None, assignment_id: str | None = None
) -> Iterator[bytes]:
    """A gradebook for an LMS (LMS_FORMATS) in chunks of about CHUNK_BYTES."""
    if kind == "canvas":
        rows = canvas_rows(batch, basis, assignment, assignment_id)
    elif kind == "moodle":
        rows = moodle_rows(batch, basis, assignment)
    else:
        rows = classroom_rows(batch, basis, assignment)
    yield from _chunked(_csv_lines(rows))


def level_label(levels: list[tuple[float, str]], score: float | None) -> str:
    """The rubric level a score reaches: the highest whose points it meets."""
    if score is None:
        return ""
    reached = [label for points, label in levels if points <= score + 1e-9]
    return reached[-1] if reached else ""


def feedback_sheet(title: str, batch, jobs: list[GradingJob], email: str = "") -> FeedbackSheet:
    """A student's sheet from their jobs (each with its result), a section per document."""
    levels = rubric_levels(batch)
    sheet = FeedbackSheet(
        title=title, batch_name=batch.name if batch is not None else "", student_email=email
    )
    ordered = sorted(jobs, key=lambda job: (job.document_id, job.pk))
    for _, document_jobs in itertools.groupby(ordered, key=lambda job: job.document_id):
        document_jobs = list(document_jobs)
        results = _results(document_jobs)
        if results:
            sheet.documents.append(
                _document_feedback(document_jobs[0].document.original_name, results, levels)
            )
    return sheet


def _document_feedback(file_name: str, results: list[GradingResult], levels) -> DocumentFeedback:
    grade = document_grade(results)
    primary = next((result for result in results if result.is_reviewed), results[0])
    reviewer_notes = {
        str(item.get("key")): str(item.get("comment") or "")
        for item in primary.reviewed_criteria or []
        if isinstance(item, dict)
    }
    criteria = []
    for item in primary.criteria or []:
        if not isinstance(item, dict):
            continue
        key = str(item.get("key", ""))
        score = grade.criteria.get(
            key, item.get("score") if isinstance(item.get("score"), int | float) else None
        )
        evidence = [
            (str(quote.get("quote") or ""), bool(quote.get("found", True)))
            for quote in item.get("evidence") or []
            if isinstance(quote, dict) and quote.get("quote")
        ]
        criteria.append(
            CriterionFeedback(
                name=str(item.get("name") or key),
                score=score,
                max_score=item.get("max_score"),
                level=level_label(levels.get(key, []), score),
                feedback=str(item.get("feedback") or ""),
                evidence=evidence,
                reviewer_comment=reviewer_notes.get(key, ""),
            )
        )
    return DocumentFeedback(
        file_name=file_name,
        score=grade.score,
        max_score=grade.max_score,
        reviewed=grade.reviewed,
        criteria=criteria,
        overall=grade.feedback,
        reviewer_comments=grade.comments,
    )


def job_feedback_sheet(job: GradingJob) -> FeedbackSheet | None:
    """The sheet a job's page offers: its student's (all their documents in the batch), else its document's."""
    batch = job.batch if job.batch_id else None
    if batch is None:
        jobs, title, email = [job], job.document.original_name, ""
    elif job.student_id:
        jobs = list(_graded_jobs(GradingJob.objects.in_batch(batch).filter(student_id=job.student_id)))
        title, email = job.student.label, job.student.email
    else:
        jobs = list(_graded_jobs(GradingJob.objects.in_batch(batch).filter(document_id=job.document_id)))
        title, email = job.document.original_name, ""
    sheet = feedback_sheet(title, batch, jobs, email)
    return sheet if sheet.documents else None


def feedback_filename(job: GradingJob) -> str:
    """feedback-<student or document>.pdf, safe in a header."""
    subject = job.student.label if job.student_id else job.document.original_name.rsplit(".", 1)[0]
    return f"feedback-{safe_name(subject, 60)}.pdf"


def feedback_sheets(batch) -> Iterator[tuple[str, FeedbackSheet]]:
    """(path in the ZIP, sheet) per student with a graded document, then per graded document with no student."""
    jobs = (
        _graded_jobs(
            GradingJob.objects.in_batch(batch).filter(status=JobStatus.COMPLETED, result__isnull=False)
        )
        .order_by("student__name", "student_id", "document_id", "pk")
        .iterator(chunk_size=ROWS_PER_QUERY)
    )
    used: set[str] = set()

    def owner(job: GradingJob):
        return ("student", job.student_id) if job.student_id else ("document", job.document_id)

    for (kind, _), group in itertools.groupby(jobs, key=owner):
        group = list(group)
        first = group[0]
        if kind == "student":
            student = first.student
            stem = safe_name(student.name or student.display_name, 60)
            if student.student_id:
                stem = f"{stem}_{safe_name(student.student_id, 40)}"
            path = f"feedback/{stem}"
            sheet = feedback_sheet(student.label, batch, group, student.email)
        else:
            path = f"feedback/unmatched/{safe_name(first.document.original_name, 60)}-{first.document_id}"
            sheet = feedback_sheet(first.document.original_name, batch, group)
        unique, n = path, 2
        while unique in used:
            unique, n = f"{path}-{n}", n + 1
        used.add(unique)
        yield f"{unique}.pdf", sheet


def _has_result(job: GradingJob) -> bool:
    try:
        return job.result is not None
    except GradingResult.DoesNotExist:
        return False


def stream_gradebook_csv(batch, basis: str = "final") -> Iterator[bytes]:
    """gradebook.csv alone, with a UTF-8 BOM for spreadsheet programs, in chunks of about CHUNK_BYTES."""
    yield from _chunked(itertools.chain([BOM], _csv_lines(gradebook_rows(batch, basis))))


def _csv_lines(rows: Iterable[list[str]]) -> Iterator[bytes]:
    line = io.StringIO()
    writer = csv.writer(line, lineterminator="\r\n")
    for row in rows:
        writer.writerow(row)
        yield line.getvalue().encode()
        line.seek(0)
        line.truncate()


def _chunked(pieces: Iterable[bytes]) -> Iterator[bytes]:
    buffer = bytearray()
    for piece in pieces:
        buffer += piece
        if len(buffer) >= CHUNK_BYTES:
            yield bytes(buffer)
            buffer.clear()
    if buffer:
        yield bytes(buffer)


# --- the ZIP ------------------------------------------------------------------------


class _WriteThrough(io.RawIOBase):
    """A write-only stream that zipfile writes into and the generator drains.

    It can tell its position but not seek, so zipfile writes each entry's
    sizes in a data descriptor after the entry instead of going back to patch
    its header: exactly what streaming needs.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._position = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self._buffer += data
        self._position += len(data)
        return len(data)

    def tell(self) -> int:
        return self._position

    @property
    def pending(self) -> int:
        """Bytes written and not yet drained (not __len__: zipfile tests the stream's truth)."""
        return len(self._buffer)

    def drain(self) -> bytes:
        data = bytes(self._buffer)
        self._buffer.clear()
        return data


def stream_zip(
    batch, now: datetime | None = None, basis: str = "final", feedback: bool = True
) -> Iterator[bytes]:
    """The export ZIP: README.txt, batch.json, gradebook.csv, jobs/<name>/ for every job, then feedback/.

    Without `feedback` the sheets are left out: the rest of the archive is the
    same, and its README.txt says so.
    """
    now = now or timezone.now()
    sink = _WriteThrough()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        writer = _EntryWriter(archive, now)
        writer.write("README.txt", readme(batch, now, feedback).encode())
        yield sink.drain()
        writer.write("batch.json", _json(batch_document(batch, now), indent=2))
        yield sink.drain()
        with writer.open("gradebook.csv") as entry:
            entry.write(BOM)
            for line in _csv_lines(gradebook_rows(batch, basis)):
                entry.write(line)
                if sink.pending >= CHUNK_BYTES:
                    yield sink.drain()
        for job in _jobs_for_export(batch):
            folder = job_folder(job)
            writer.write(f"{folder}/summary.json", _json(job_summary(job)))
            writer.write(f"{folder}/result.json", _json(result_document(job)))
            if sink.pending >= CHUNK_BYTES:
                yield sink.drain()
        # One sheet made, written and let go at a time; a PDF is already compressed.
        for path, sheet in feedback_sheets(batch) if feedback else ():
            writer.write(path, render_pdf(sheet), compress=False)
            if sink.pending >= CHUNK_BYTES:
                yield sink.drain()
    yield sink.drain()  # the central directory, written when the archive closes


class _EntryWriter:
    """Entries stamped with the export's time and ordinary file permissions."""

    def __init__(self, archive: zipfile.ZipFile, now: datetime):
        self.archive = archive
        self.stamp = now.astimezone(UTC).timetuple()[:6]

    def info(self, name: str, compress: bool = True) -> zipfile.ZipInfo:
        info = zipfile.ZipInfo(name, date_time=self.stamp)
        info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
        info.external_attr = 0o644 << 16
        return info

    def open(self, name: str):
        return self.archive.open(self.info(name), "w")

    def write(self, name: str, data: bytes, compress: bool = True) -> None:
        self.archive.writestr(self.info(name, compress), data)


def _jobs_for_export(batch) -> Iterator[GradingJob]:
    return (
        GradingJob.objects.in_batch(batch)
        .select_related("document", "result", "result__reviewer")
        .defer("settings", "document__text")
        .order_by("pk")
        .iterator(chunk_size=ROWS_PER_QUERY)
    )


def _json(data: Any, indent: int | None = None) -> bytes:
    # Without indent json uses its C encoder, much faster than the Python one
    # indenting needs (README, the export benchmark, has the figure): the
    # per-job files stay compact, batch.json (written once) is indented for reading.
    return json.dumps(data, cls=DjangoJSONEncoder, indent=indent, ensure_ascii=False).encode()


def batch_document(batch, now: datetime) -> dict[str, Any]:
    """batch.json: everything about the batch, its settings, template and analytics."""
    template = batch.template
    return {
        "exported_at": now.isoformat(),
        "batch": {
            "id": batch.pk,
            "name": batch.name,
            "description": batch.description,
            "status": batch.status,
            "priority": batch.priority,
            "tags": batch.tags,
            "owner": batch.owner.get_username(),
            "created_at": batch.created_at,
            "started_at": batch.started_at,
            "completed_at": batch.completed_at,
            "deadline": batch.deadline,
            "archived_at": batch.archived_at,
        },
        "template": ({"id": template.pk, "name": template.name, "slug": template.slug} if template else None),
        "settings": batch.settings,
        "effective_settings": batch.effective_settings(),
        "final_score_rule": FINAL_SCORE_RULE,
        "calibration": batch.calibration or None,
        "analytics": batch_analytics(batch, now),
    }


def job_summary(job: GradingJob) -> dict[str, Any]:
    result = job.result if _has_result(job) else None
    document = job.document
    return {
        "id": job.pk,
        "name": job.name,
        "status": job.status,
        "provider": job.provider,
        "provider_kind": kind_of(job.provider),
        "model": job.model,
        "overrides": job.overrides,
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "last_error": job.last_error,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "completed_at": job.completed_at,
        "duration_ms": job.duration_ms,
        "document": {
            "id": document.pk,
            "file_name": document.original_name,
            "content_type": document.content_type,
            "size": document.size,
            "sha256": document.sha256,
        },
        "score": None
        if result is None
        else {
            "ai": result.score,
            "ai_calibrated": result.is_calibrated,
            "provider_raw": result.provider_score,
            "reviewed": result.reviewed_score,
            "final": result.final_score,
            "max": result.max_score,
            "percent": result.percent,
            "is_reviewed": result.is_reviewed,
        },
    }


def result_document(job: GradingJob) -> dict[str, Any] | None:
    """result.json: the provider's full answer and any review; null for a job without a result."""
    if not _has_result(job):
        return None
    result = job.result
    return {
        "provider": result.provider,
        "provider_kind": kind_of(result.provider),
        "model": result.model,
        "score": result.score,
        "max_score": result.max_score,
        "criteria": result.criteria,
        "calibrated": result.is_calibrated,
        "raw_score": result.raw_score,
        "raw_criteria": result.raw_criteria if result.is_calibrated else None,
        "feedback": result.feedback,
        "input_tokens": result.input_tokens,
        "output_tokens": result.output_tokens,
        "cost": result.cost,
        "latency_ms": result.latency_ms,
        "created_at": result.created_at,
        "review": None
        if not result.is_reviewed
        else {
            "score": result.reviewed_score,
            "criteria": result.reviewed_criteria,
            "comment": result.review_comment,
            "reviewer": result.reviewer.get_username() if result.reviewer else None,
            "reviewed_at": result.reviewed_at,
        },
        "raw_response": result.raw_response,
    }


def readme(batch, now: datetime, feedback: bool = True) -> str:
    return f"""Export of the batch "{batch.name}" (id {batch.pk}), made {now.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC.

README.txt      this file
batch.json      the batch: metadata, its own settings and the effective settings
                (template <- batch), the template, and the analytics at export time
gradebook.csv   one row per document, for a spreadsheet: document_id, file_name,
                student_id, student_name, final_score (or reviewed_score or
                calibrated_score, as asked), max_score, percent, one column per
                rubric criterion (headed "Name (points)"), reviewed (yes/no),
                graded_by (connection:model of each grade), status ("graded", or the jobs' statuses
                when no job produced a grade), feedback (the AI's overall
                feedback) and review_comment
jobs/<job name>-<job id>/summary.json
                the job: status, attempts, last error, timings, document, scores
jobs/<job name>-<job id>/result.json
                the grade as the provider returned it (criteria with feedback,
                tokens, cost, raw response) and the human review if there is one;
                the JSON value null for a job that has no result
feedback/<student>_<student id>.pdf
                a feedback sheet for each student with a graded document: the
                final score, each criterion with its level, feedback and quoted
                evidence, and the reviewer's comments, for the student to read
feedback/unmatched/<file name>-<document id>.pdf
                the same for each graded document no student is known for{_sheets_note(feedback)}

Scores. A reviewer's score never replaces the AI's: both are kept, and the
final score is the reviewer's where one was recorded, the AI's otherwise.
{FINAL_SCORE_RULE}
{_calibration_note(batch)}

Safety. Job names are made safe for folder names: letters other than ASCII
are folded or replaced by "_", "/" and other punctuation by "_", leading dots
dropped; the job id keeps names unique. In gradebook.csv every cell starting
with =, +, -, @, a tab or a carriage return is prefixed with an apostrophe so
that no spreadsheet runs it as a formula. The CSV is UTF-8 with a byte order
mark (so that spreadsheet programs read accents right) and CRLF line ends.
"""


def _sheets_note(feedback: bool) -> str:
    if feedback:
        return ""
    return "\n                (left out of this export, as asked: feedback=0)"


def _calibration_note(batch) -> str:
    fitted = [group for group in (batch.calibration or {}).get("models", []) if group.get("method")]
    if not fitted:
        return "The AI's scores are the providers' own: the batch was not calibrated."
    return (
        "The AI's scores are calibrated to the teacher's scale from the batch's exemplars\n"
        '(see batch.json, "calibration"); each result.json keeps the provider\'s own\n'
        "score as raw_score."
    )


def write_zip(batch, path) -> int:
    """Write the export ZIP to a file, whole or not at all; returns its size in bytes.

    The archive goes to a temporary file beside the target and is renamed
    over it only when complete, so an interrupted export never leaves a
    truncated ZIP under the name asked for.
    """
    target = Path(path)
    partial = target.with_name(f".{target.name}.partial")
    size = 0
    try:
        with partial.open("wb") as file:
            for chunk in stream_zip(batch):
                file.write(chunk)
                size += len(chunk)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    return size

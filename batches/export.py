"""A batch's results as a ZIP (or the gradebook alone as CSV), written as it is sent.

Memory stays flat however large the batch: jobs are read with a database
iterator in chunks, and the ZIP is written into a small buffer that the
generator empties into the response every time it passes CHUNK_BYTES. Nothing
ever holds the whole archive or all the rows.
"""

import csv
import io
import itertools
import json
import re
import unicodedata
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from statistics import fmean
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.utils import timezone
from django.utils.text import slugify

from batches.analytics import batch_analytics
from grading.models import GradingJob, GradingResult, JobStatus

CHUNK_BYTES = 64 * 1024
ROWS_PER_QUERY = 500
# Cells a spreadsheet would read as a formula (or that hide one behind a control character).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
FORMULA_SIGNS = ("=", "+", "-", "@")
# What may stand unseen before a formula sign: whitespace, control and format
# characters (zero-width spaces and joiners U+200B..U+200D, U+2060, the BOM U+FEFF,
# bidirectional marks). Spreadsheets skip some of these when they look for a formula.
INVISIBLE_CATEGORIES = {"Cc", "Cf", "Zs", "Zl", "Zp"}
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
        if not (character.isspace() or unicodedata.category(character) in INVISIBLE_CATEGORIES):
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


def document_grade(results: list[GradingResult]) -> DocumentGrade:
    """A document's final grade from its results, by FINAL_SCORE_RULE."""
    if not results:
        return DocumentGrade(None, None, {}, False, [], [])
    reviewed = [result for result in results if result.is_reviewed]
    counted = reviewed or results
    criteria: dict[str, list[float]] = {}
    for result in counted:
        for key, score in _criterion_scores(result).items():
            criteria.setdefault(key, []).append(score)
    return DocumentGrade(
        score=fmean(result.final_score for result in counted),
        max_score=max(result.max_score for result in counted),
        criteria={key: fmean(scores) for key, scores in criteria.items()},
        reviewed=bool(reviewed),
        graded_by=sorted({result.model for result in results}),
        comments=[result.review_comment for result in reviewed if result.review_comment],
    )


def _criterion_scores(result: GradingResult) -> dict[str, float]:
    scores = {
        str(item["key"]): float(item["score"])
        for item in result.criteria or []
        if isinstance(item, dict) and isinstance(item.get("score"), int | float)
    }
    for item in result.reviewed_criteria or []:
        if isinstance(item, dict) and isinstance(item.get("score"), int | float):
            scores[str(item["key"])] = float(item["score"])
    return scores


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


def gradebook_rows(batch) -> Iterator[list[str]]:
    """The header, then one row per document in the batch, every cell neutralised."""
    columns = rubric_columns(batch)
    header = ["document_id", "file_name", "final_score", "max_score", "percent"]
    header += [title for _, title in columns]
    header += ["reviewed", "graded_by", "status", "review_comment"]
    yield [neutralise(cell) for cell in header]
    jobs = (
        GradingJob.objects.in_batch(batch)
        .select_related("document", "result")
        .defer("settings", "overrides", "document__text", "result__raw_response", "result__feedback")
        .order_by("document_id", "pk")
        .iterator(chunk_size=ROWS_PER_QUERY)
    )
    for _, document_jobs in itertools.groupby(jobs, key=lambda job: job.document_id):
        yield _gradebook_row(list(document_jobs), columns)


def _gradebook_row(jobs: list[GradingJob], columns: list[tuple[str, str]]) -> list[str]:
    document = jobs[0].document
    results = [job.result for job in jobs if job.status == JobStatus.COMPLETED and _has_result(job)]
    grade = document_grade(results)
    percent = 100 * grade.score / grade.max_score if grade.score is not None and grade.max_score else None
    status = "graded" if results else ", ".join(sorted({job.status for job in jobs}))
    row = [document.pk, document.original_name, _number(grade.score), _number(grade.max_score)]
    row += [_number(percent)]
    row += [_number(grade.criteria.get(key)) for key, _ in columns]
    row += ["yes" if grade.reviewed else "no", "; ".join(grade.graded_by), status]
    row += [" | ".join(grade.comments)]
    return [neutralise(cell) for cell in row]


def _has_result(job: GradingJob) -> bool:
    try:
        return job.result is not None
    except GradingResult.DoesNotExist:
        return False


def stream_gradebook_csv(batch) -> Iterator[bytes]:
    """gradebook.csv alone, in chunks of about CHUNK_BYTES."""
    yield from _chunked(_csv_lines(gradebook_rows(batch)))


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


def stream_zip(batch, now: datetime | None = None) -> Iterator[bytes]:
    """The export ZIP: README.txt, batch.json, gradebook.csv, then jobs/<name>/ for every job."""
    now = now or timezone.now()
    sink = _WriteThrough()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        writer = _EntryWriter(archive, now)
        writer.write("README.txt", readme(batch, now).encode())
        yield sink.drain()
        writer.write("batch.json", _json(batch_document(batch, now), indent=2))
        yield sink.drain()
        with writer.open("gradebook.csv") as entry:
            for line in _csv_lines(gradebook_rows(batch)):
                entry.write(line)
                if sink.pending >= CHUNK_BYTES:
                    yield sink.drain()
        for job in _jobs_for_export(batch):
            folder = job_folder(job)
            writer.write(f"{folder}/summary.json", _json(job_summary(job)))
            writer.write(f"{folder}/result.json", _json(result_document(job)))
            if sink.pending >= CHUNK_BYTES:
                yield sink.drain()
    yield sink.drain()  # the central directory, written when the archive closes


class _EntryWriter:
    """Entries stamped with the export's time and ordinary file permissions."""

    def __init__(self, archive: zipfile.ZipFile, now: datetime):
        self.archive = archive
        self.stamp = now.astimezone(UTC).timetuple()[:6]

    def info(self, name: str) -> zipfile.ZipInfo:
        info = zipfile.ZipInfo(name, date_time=self.stamp)
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = 0o644 << 16
        return info

    def open(self, name: str):
        return self.archive.open(self.info(name), "w")

    def write(self, name: str, data: bytes) -> None:
        self.archive.writestr(self.info(name), data)


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


def readme(batch, now: datetime) -> str:
    return f"""Export of the batch "{batch.name}" (id {batch.pk}), made {now.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC.

README.txt      this file
batch.json      the batch: metadata, its own settings and the effective settings
                (template <- batch), the template, and the analytics at export time
gradebook.csv   one row per document, ready to import into a gradebook:
                document_id, file_name, final_score, max_score, percent, one column
                per rubric criterion (headed "Name (points)"), reviewed (yes/no),
                graded_by (the models), status ("graded", or the jobs' statuses
                when no job produced a grade) and review_comment
jobs/<job name>-<job id>/summary.json
                the job: status, attempts, last error, timings, document, scores
jobs/<job name>-<job id>/result.json
                the grade as the provider returned it (criteria with feedback,
                tokens, cost, raw response) and the human review if there is one;
                the JSON value null for a job that has no result

Scores. A reviewer's score never replaces the AI's: both are kept, and the
final score is the reviewer's where one was recorded, the AI's otherwise.
{FINAL_SCORE_RULE}
{_calibration_note(batch)}

Safety. Job names are made safe for folder names: letters other than ASCII
are folded or replaced by "_", "/" and other punctuation by "_", leading dots
dropped; the job id keeps names unique. In gradebook.csv every cell starting
with =, +, -, @, a tab or a carriage return is prefixed with an apostrophe so
that no spreadsheet runs it as a formula. The CSV is UTF-8 with CRLF line ends.
"""


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

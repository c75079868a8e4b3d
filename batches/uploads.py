"""Document uploads into a batch: many files or ZIPs of them, bounded, all-or-nothing.

An upload is checked whole before anything is stored: a refused upload
leaves no document, no job and no file behind. A document with no text to
grade (an empty file, or only whitespace once its text is extracted) is
refused like an unsupported file type, by name. With `skip_unsupported`,
files of an unsupported type and empty documents are left out instead of
refusing the upload, and listed in `Added.skipped`. ZIPs are judged from their
central directory first (entry count, declared sizes, compression ratio), so
a zip bomb is refused without inflating a single byte of it; entries are only
inflated once every bound holds, and then never past their declared size
(zipfile stops there and checks the CRC) nor past the per-file limit, counted
on the bytes actually inflated. Then every document's text is extracted, within
the bounds of `grading.extraction` (a .docx is a ZIP too, judged the same way,
and no document yields more than MAX_DOCUMENT_CHARS): one past them refuses the
upload, naming the file.
"""

import io
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import PurePosixPath

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from rest_framework.exceptions import ValidationError

from batches.autostart import start_if_auto
from batches.exceptions import InvalidTransition
from batches.models import BatchStatus, JobBatch
from core.upload_limit import upload_body_problem
from grading.containers import MIB, RATIO_FLOOR_BYTES, InflateLimit, declared_entries, ratio, read_entry
from grading.documents import safe_filename, store_document
from grading.extraction import DocumentTooLarge, UnreadableDocument, extract_text
from grading.models import Document, GradingJob
from grading.naming import pattern_problem

SKIPPED_IN_ZIPS = ("__MACOSX/",)
MAX_LISTED = 20


def supported_extensions() -> tuple[str, ...]:
    from grading.extraction import SUPPORTED_EXTENSIONS

    return tuple(SUPPORTED_EXTENSIONS)


@dataclass(frozen=True)
class Limits:
    file_bytes: int
    total_bytes: int
    files: int
    ratio: int

    @classmethod
    def from_settings(cls) -> "Limits":
        return cls(
            file_bytes=settings.MAX_DOCUMENT_MB * MIB,
            total_bytes=settings.MAX_UPLOAD_MB * MIB,
            files=settings.MAX_FILES_PER_UPLOAD,
            ratio=settings.MAX_ZIP_RATIO,
        )


@dataclass(frozen=True)
class Upload:
    name: str
    data: bytes
    # How a refusal names it: "essays.zip: ada.docx" for an entry of a ZIP.
    label: str = ""
    # Set by extraction, before anything is stored.
    text: str | None = None
    error: str = ""
    # The entry's path inside a ZIP ("" for a file uploaded as itself): an LMS's
    # download may name the student in a folder (see grading/naming.py).
    path: str = ""


@dataclass(frozen=True)
class Skipped:
    """A file left out of an upload that skips unsupported files, and why."""

    file: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file} ({self.reason})"


UNSUPPORTED_TYPE = "unsupported file type"
NO_TEXT = "no text to grade"


class _Check:
    """Collects every problem of an upload, so one 400 lists them all."""

    def __init__(self, limits: Limits, skipped: list[Skipped] | None = None):
        self.limits = limits
        self.problems: list[str] = []
        self.unsupported: list[str] = []
        # Not None: unsupported files are skipped (listed here) instead of refused.
        self.skipped = skipped
        self.count = 0
        self.total = 0

    def document(self, name: str, size: int) -> bool:
        """Count one document of `size` bytes; False when it must not be read."""
        supported = PurePosixPath(name).suffix.lower() in supported_extensions()
        if self.skipped is not None and (not supported or size == 0):
            # Left out, not refused: it counts against no limit.
            self.skipped.append(Skipped(name, NO_TEXT if supported else UNSUPPORTED_TYPE))
            return False
        self.count += 1
        self.total += size
        if not supported:
            self.unsupported.append(name)
            return False
        if size == 0:
            self.problems.append(f"“{name}” is empty (0 bytes): it has no text to grade.")
            return False
        if size > self.limits.file_bytes:
            self.problems.append(
                f"“{name}” is {size / MIB:.1f} MB; the limit is {self.limits.file_bytes // MIB} MB per file."
            )
            return False
        return True

    def errors(self) -> list[str]:
        problems = _listed(self.problems)
        if self.count > self.limits.files:
            problems.append(f"{self.count} documents in one upload; the limit is {self.limits.files}.")
        if self.total > self.limits.total_bytes:
            problems.append(
                f"The upload holds {self.total / MIB:.1f} MB of documents; "
                f"the limit is {self.limits.total_bytes // MIB} MB."
            )
        if self.unsupported:
            kinds = ", ".join(supported_extensions())
            problems.append(
                f"Unsupported file types: {', '.join(self.unsupported[:50])}. "
                f"Upload {kinds} files, or a .zip of them; or skip unsupported files to upload the rest."
            )
        return problems


class UploadRefused(ValidationError):
    """An upload refused as a whole, with one sentence per problem (naming its file).

    A DRF ValidationError, so the API answers 400 `{"files": [...]}`; the web
    pages list `problems` beside the upload form.
    """

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__({"files": problems})


def read_upload(
    files: list[UploadedFile], limits: Limits | None = None, skipped: list[Skipped] | None = None
) -> list[Upload]:
    """Every document of the request, ZIPs expanded; raises UploadRefused listing every problem.

    Given a `skipped` list, unsupported and empty files are appended to it instead of refused.
    """
    limits = limits or Limits.from_settings()
    if not files:
        raise UploadRefused(["Attach one or more files in the multipart field “files”."])
    check = _Check(limits, skipped)
    plain: list[tuple[str, UploadedFile]] = []
    archives: list[tuple[str, zipfile.ZipFile, list[zipfile.ZipInfo]]] = []
    for upload in files:
        name = safe_filename(upload.name or "")
        if name.lower().endswith(".zip"):
            opened = _inspect_zip(name, upload, check)
            if opened is not None:
                archives.append((name, *opened))
        elif check.document(name, upload.size):
            plain.append((name, upload))
    _raise_if(check.errors())
    # Every bound holds: only now is anything read or inflated.
    documents = [Upload(name, _read(upload), label=name) for name, upload in plain]
    problems: list[str] = []
    for archive_name, archive, entries in archives:
        documents.extend(_inflate(archive_name, archive, entries, problems, limits))
    _raise_if(_listed(problems))
    return _extract(documents)


def _listed(problems: list[str]) -> list[str]:
    # A bomb of 400 entries has 400 problems; the first few say enough.
    listed = problems[:MAX_LISTED]
    if len(problems) > MAX_LISTED:
        listed.append(f"… and {len(problems) - MAX_LISTED} more problems like these.")
    return listed


def _raise_if(problems: list[str]) -> None:
    if problems:
        raise UploadRefused(problems)


def _extract(documents: list[Upload]) -> list[Upload]:
    """Each document with its text, or its reason when unreadable; refused past the extraction bounds."""
    problems: list[str] = []
    extracted = []
    for upload in documents:
        try:
            text, error = extract_text(io.BytesIO(upload.data), upload.name), ""
        except DocumentTooLarge as exc:
            problems.append(f"“{upload.label or upload.name}” {exc.reason}")
            continue
        except UnreadableDocument as exc:
            text, error = "", str(exc)
        extracted.append(replace(upload, text=text, error=error))
    _raise_if(_listed(problems))
    return extracted


def _read(upload: UploadedFile) -> bytes:
    upload.seek(0)
    return upload.read()


def _inspect_zip(
    name: str, upload: UploadedFile, check: _Check
) -> tuple[zipfile.ZipFile, list[zipfile.ZipInfo]] | None:
    limits = check.limits
    if upload.size > limits.total_bytes:
        check.problems.append(f"“{name}” is larger than the {limits.total_bytes // MIB} MB upload limit.")
        return None
    # The end record says how many entries the central directory holds; read
    # it before zipfile parses them all, so a ZIP of a million empty entries
    # is refused as quickly as any other.
    declared = declared_entries(upload)
    if declared is None:
        check.problems.append(f"“{name}” is not a readable ZIP archive.")
        return None
    if declared > limits.files:
        check.problems.append(f"“{name}” holds {declared} entries; the limit is {limits.files}.")
        return None
    try:
        archive = zipfile.ZipFile(upload)
        entries = [info for info in archive.infolist() if _is_document(info)]
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError):
        check.problems.append(f"“{name}” is not a readable ZIP archive.")
        return None
    if not entries:
        check.problems.append(f"“{name}” contains no documents.")
    accepted = []
    for info in entries:
        entry = f"{name}: {safe_filename(info.filename)}"
        if _climbs_out(info.filename):
            # A name like "../../x.txt" (zip-slip) is an attack, not an accident:
            # refuse the archive rather than quietly rename the entry.
            check.problems.append(f"“{name}” holds an entry with an unsafe path: {info.filename[:200]!r}.")
        elif info.flag_bits & 0x1:
            check.problems.append(f"“{entry}” is encrypted; upload it without a password.")
        elif ratio(info) > limits.ratio and info.file_size > RATIO_FLOOR_BYTES:
            check.problems.append(
                f"“{entry}” inflates {ratio(info):.0f} times (limit {limits.ratio}); "
                "the archive looks like a zip bomb."
            )
            check.total += info.file_size
        elif check.document(entry, info.file_size):
            accepted.append(info)
    return archive, accepted


def _is_document(info: zipfile.ZipInfo) -> bool:
    if info.is_dir() or info.filename.startswith(SKIPPED_IN_ZIPS):
        return False
    # Hidden files such as .DS_Store ride along in archives made on a desktop.
    return not PurePosixPath(info.filename.replace("\\", "/")).name.startswith(".")


def _climbs_out(path: str) -> bool:
    parts = path.replace("\\", "/").split("/")
    return path.startswith(("/", "\\")) or ".." in parts or (len(parts[0]) == 2 and parts[0][1] == ":")


def _inflate(
    archive_name: str,
    archive: zipfile.ZipFile,
    entries: list[zipfile.ZipInfo],
    problems: list[str],
    limits: Limits,
) -> list[Upload]:
    documents = []
    for info in entries:
        name = safe_filename(info.filename)
        label = f"{archive_name}: {name}"
        try:
            # Bounded on the bytes that come out, not only on the declared size.
            documents.append(
                Upload(
                    name,
                    read_entry(archive, info, limits.file_bytes),
                    label=label,
                    path=_entry_path(info.filename),
                )
            )
        except InflateLimit:
            problems.append(f"“{label}” inflates past the {limits.file_bytes // MIB} MB limit per file.")
        except (zipfile.BadZipFile, NotImplementedError, RuntimeError, OSError, EOFError, ValueError) as exc:
            problems.append(f"“{label}” could not be extracted: {str(exc)[:120]}.")
    return documents


def _entry_path(path: str) -> str:
    """A ZIP entry's path as text to read names from (never used as a path): "/" separated, printable."""
    cleaned = "".join(ch for ch in path.replace("\\", "/") if ch.isprintable())
    return cleaned.lstrip("/")[:500]


def clean_student_pattern(pattern: str | None) -> str | None:
    """The pattern given with an upload (None or blank: keep the batch's); a 400 naming the field if unusable."""
    pattern = (pattern or "").strip()
    if not pattern:
        return None
    problem = pattern_problem(pattern)
    if problem:
        raise ValidationError({"student_pattern": [f"{problem[0].upper()}{problem[1:]}."]})
    return pattern


def store_upload(
    batch: JobBatch,
    owner,
    uploads: list[Upload],
    student_pattern: str | None = None,
    skipped: list[Skipped] | None = None,
) -> tuple[list[Document], list[GradingJob]]:
    """Store the documents and add their jobs, or, on any failure, leave nothing behind.

    A student pattern given with the upload becomes the batch's, in the same transaction.
    A document with no text once extracted (and no extraction error saying
    why) is refused, naming it; given a `skipped` list, it is left out and
    listed there instead.
    """
    stored: list[Document] = []
    try:
        with transaction.atomic():
            if student_pattern is not None and student_pattern != batch.student_pattern:
                batch.edit(student_pattern=student_pattern)
            empty = []
            for upload in uploads:
                document = store_document(
                    owner,
                    upload.name,
                    upload.data,
                    text=upload.text,
                    error=upload.error,
                    source_path=upload.path,
                )
                stored.append(document)
                if _has_no_text(document):
                    empty.append(document)
            if empty and skipped is None:
                raise UploadRefused(
                    [
                        document.extraction_error or f"“{document.original_name}” has no text to grade."
                        for document in empty
                    ]
                )
            if empty:
                skipped.extend(Skipped(document.original_name, NO_TEXT) for document in empty)
                Document.objects.filter(pk__in=[document.pk for document in empty]).delete()
            kept = [document for document in stored if document not in empty]
            if not kept:
                raise UploadRefused(_nothing_left(skipped or []))
            jobs = batch.add_documents(kept, owner=owner)
    except BaseException:
        # The rows rolled back with the transaction; the files are not transactional.
        for document in stored:
            document.file.delete(save=False)
        raise
    for document in empty:
        document.file.delete(save=False)
    return kept, jobs


def _has_no_text(document: Document) -> bool:
    """Nothing to grade: no text once extracted, for being empty (not for being unreadable).

    A document whose text could not be read for another reason (a password,
    a broken file) is still stored, so its job fails with that reason.
    """
    from grading.extraction import empty_message

    if document.text.strip():
        return False
    suffix = PurePosixPath(document.original_name).suffix.lower()
    # store_document keeps the first 500 characters of the reason.
    return document.extraction_error in ("", empty_message(document.original_name, suffix)[:500])


def _nothing_left(skipped: list[Skipped]) -> list[str]:
    listed = ", ".join(str(item) for item in skipped[:MAX_LISTED])
    return [f"Nothing to upload: every file was skipped ({listed})."]


def refuse_oversized(content_length: str | int | None) -> None:
    """Refuse a request body over the upload limit before Django reads it into temporary files."""
    problem = upload_body_problem(content_length)
    if problem:
        raise UploadRefused([problem])


@dataclass(frozen=True)
class Added:
    documents: list[Document]
    jobs: list[GradingJob]
    started: bool
    # Files left out by skip_unsupported (unsupported types, empty documents).
    skipped: list[Skipped] = field(default_factory=list)


def add_upload(
    batch: JobBatch,
    owner,
    files: Callable[[], list[UploadedFile]],
    content_length: str | int | None = None,
    student_pattern: Callable[[], str | None] | None = None,
    skip_unsupported: bool | Callable[[], bool] = False,
) -> Added:
    """The whole upload into a batch, for the API and the web pages alike.

    `files` is called only after the cheap refusals, so a request to a batch
    that takes no documents now (InvalidTransition) or a body over the limit
    (UploadRefused) is answered before Django parses the multipart body.
    Then every bound is checked, everything stored or nothing, and the batch
    started when its processing rules say auto_start. `skip_unsupported` (or
    a callable answering it, read with the files) leaves out unsupported and
    empty files instead of refusing the upload.
    """
    if batch.status not in (BatchStatus.DRAFT, BatchStatus.PAUSED):
        raise InvalidTransition(
            "add_jobs", batch.status, "Documents can be added only while the batch is a draft or paused."
        )
    refuse_oversized(content_length)
    chosen = files()
    skip = skip_unsupported() if callable(skip_unsupported) else skip_unsupported
    skipped: list[Skipped] | None = [] if skip else None
    uploads = read_upload(chosen, skipped=skipped)
    if not uploads:
        raise UploadRefused(_nothing_left(skipped or []))
    # Read from the body only now, like the files: a student pattern for the batch, or None.
    pattern = clean_student_pattern(student_pattern() if student_pattern else None)
    documents, jobs = store_upload(batch, owner, uploads, pattern, skipped)
    # Decided under the row lock: of two uploads racing, one starts the batch; a provider
    # that cannot work leaves it a draft, whose page says what to set.
    return Added(documents, jobs, start_if_auto(batch), skipped or [])

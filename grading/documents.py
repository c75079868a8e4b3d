"""Storing uploaded documents: hashing, saving the file and extracting its text."""

import io
import mimetypes
import os

from django.core.files.base import ContentFile

from grading.models import Document


def safe_filename(name: str) -> str:
    """The last path component only, so "../../etc/passwd" or "a/b.txt" cannot escape."""
    base = os.path.basename(name.replace("\\", "/")).strip().lstrip(".")
    cleaned = "".join(ch for ch in base if ch.isprintable() and ch not in '<>:"|?*\x00')
    return cleaned[:200] or "document"


def read_text(filename: str, data: bytes) -> tuple[str, str]:
    """The document's text and, when it cannot be extracted, why (the text is then empty)."""
    from grading.extraction import UnreadableDocument, extract_text

    try:
        return extract_text(io.BytesIO(data), safe_filename(filename)).replace("\x00", ""), ""
    except UnreadableDocument as exc:
        return "", str(exc)


def store_document(
    owner, filename: str, data: bytes, content_type: str = "", extracted: tuple[str, str] | None = None
) -> Document:
    """Save the bytes, remember their hash and extract the text now, not in a worker.

    A document whose text cannot be extracted is still stored, with the reason,
    so its job fails permanently with that reason rather than vanishing.
    `extracted` is read_text()'s answer when the caller already has it.
    """
    name = safe_filename(filename)
    text, error = extracted if extracted is not None else read_text(name, data)
    document = Document(
        original_name=name,
        content_type=content_type or mimetypes.guess_type(name)[0] or "application/octet-stream",
        size=len(data),
        sha256=Document.digest(data),
        text=text.replace("\x00", ""),
        extraction_error=error[:500],
        owner=owner,
    )
    document.file.save(name, ContentFile(data), save=False)
    document.save()
    return document

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


def store_document(
    owner, filename: str, data: bytes, content_type: str = "", source_path: str = ""
) -> Document:
    """Save the bytes, remember their hash and extract the text now, not in a worker.

    A document whose text cannot be extracted is still stored, with the reason,
    so its job fails permanently with that reason rather than vanishing.
    """
    from grading.extraction import UnreadableDocument, extract_text

    name = safe_filename(filename)
    try:
        text, error = extract_text(io.BytesIO(data), name), ""
    except UnreadableDocument as exc:
        text, error = "", str(exc)
    document = Document(
        original_name=name,
        source_path=source_path[:500],
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

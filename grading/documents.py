"""Storing uploaded documents: hashing, saving the file and extracting its text."""

import io
import mimetypes
import os
import re

from django.core.files.base import ContentFile

from grading.models import Document

MAX_NAME_CHARS = 200
# Longer "extensions" are not file types ("report.final draft of the thesis").
MAX_EXTENSION_CHARS = 16
# The file on disk: a path component holds at most 255 bytes on most file systems,
# and storage may add "_" and 7 characters to make a name unique. 200 characters
# are 600 bytes in Chinese, 800 in emoji.
MAX_STORED_NAME_BYTES = 200
STORAGE_UNSAFE = re.compile(r"[^-\w.]")


def safe_filename(name: str) -> str:
    """The last path component only, so "../../etc/passwd" or "a/b.txt" cannot escape.

    A name over MAX_NAME_CHARS is shortened in its stem, keeping its extension,
    which is what says how the document is read.
    """
    base = os.path.basename(name.replace("\\", "/")).strip().lstrip(".")
    cleaned = "".join(ch for ch in base if ch.isprintable() and ch not in '<>:"|?*\x00')
    if len(cleaned) > MAX_NAME_CHARS:
        stem, extension = os.path.splitext(cleaned)
        if len(extension) > MAX_EXTENSION_CHARS:
            stem, extension = cleaned, ""
        cleaned = stem[: MAX_NAME_CHARS - len(extension)].rstrip(" .") + extension
    return cleaned or "document"


def stored_filename(name: str) -> str:
    """The name of the document's file on disk, within MAX_STORED_NAME_BYTES of UTF-8 and keeping its extension.

    The document keeps `name` itself (original_name) for every page and export.
    Only what storage would keep anyway is kept (django.utils.text.
    get_valid_filename: letters, digits, "-", "_" and "."), so a name of emoji
    alone is stored as "document.txt" rather than as the hidden ".txt".
    """
    stem, extension = os.path.splitext(name)
    if len(extension) > MAX_EXTENSION_CHARS:
        stem, extension = name, ""
    stem = STORAGE_UNSAFE.sub("", stem.strip().replace(" ", "_"))
    extension = STORAGE_UNSAFE.sub("", extension)
    budget = MAX_STORED_NAME_BYTES - len(extension.encode())
    stem = stem.encode()[:budget].decode(errors="ignore").strip("._")
    return (stem or "document") + extension


def read_text(filename: str, data: bytes) -> tuple[str, str]:
    """The document's text and, when it cannot be extracted, why (the text is then empty)."""
    from grading.extraction import UnreadableDocument, extract_text

    try:
        return extract_text(io.BytesIO(data), safe_filename(filename)).replace("\x00", ""), ""
    except UnreadableDocument as exc:
        return "", str(exc)


def store_document(
    owner,
    filename: str,
    data: bytes,
    content_type: str = "",
    text: str | None = None,
    error: str = "",
    source_path: str = "",
) -> Document:
    """Save the bytes, remember their hash and extract the text now, not in a worker.

    A document whose text cannot be extracted is still stored, with the reason,
    so its job fails permanently with that reason rather than vanishing. An
    upload extracts first, to refuse documents past the extraction bounds
    before storing anything, and passes `text` (and `error`) in.
    """
    name = safe_filename(filename)
    if text is None:
        text, error = read_text(name, data)
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
    document.file.save(stored_filename(name), ContentFile(data), save=False)
    document.save()
    return document

"""Plain text out of uploaded documents, so every provider grades the same words.

Uploads are untrusted: any file that cannot be read becomes an UnreadableDocument with a
sentence the uploader can act on, never a parser's traceback.
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO

SUPPORTED_EXTENSIONS = (".docx", ".md", ".pdf", ".txt")
# Tried in order for plain text; latin-1 decodes any byte sequence, so it is the last resort.
TEXT_ENCODINGS = ("utf-8", "cp1252", "latin-1")
UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")

logger = logging.getLogger(__name__)

Source = str | os.PathLike | IO[bytes]


class UnreadableDocument(Exception):
    pass


def extract_text(path_or_file: Source, filename: str) -> str:
    """The document's text, with Unix line endings and no surrounding whitespace."""
    extension = Path(filename).suffix.lower()
    if extension not in SUPPORTED_EXTENSIONS:
        raise UnreadableDocument(unsupported_message(filename, extension))
    data = read_bytes(path_or_file, filename)
    reader = {
        ".txt": decode_text,
        ".md": decode_text,
        ".pdf": pdf_text,
        ".docx": docx_text,
    }
    text = reader[extension](data, filename)
    text = text.replace("\r\n", "\n").replace("\r", "\n").strip()
    if not text:
        raise UnreadableDocument(empty_message(filename, extension))
    return text


def unsupported_message(filename: str, extension: str) -> str:
    kinds = ", ".join(SUPPORTED_EXTENSIONS[:-1]) + " or " + SUPPORTED_EXTENSIONS[-1]
    kind = f"“{extension}” files" if extension else "Files without an extension"
    return f"“{filename}” cannot be graded: {kind} are not supported; upload a {kinds} file."


def empty_message(filename: str, extension: str) -> str:
    if extension == ".pdf":
        return f"“{filename}” has no extractable text; it may be a scanned image without OCR."
    return f"“{filename}” contains no text to grade."


def read_bytes(source: Source, filename: str) -> bytes:
    if isinstance(source, str | os.PathLike):
        try:
            return Path(source).read_bytes()
        except OSError as error:
            raise UnreadableDocument(f"“{filename}” could not be opened: {error.strerror}.") from error
    # An upload may already have been read once, for its checksum.
    if getattr(source, "seekable", lambda: False)():
        source.seek(0)
    data = source.read()
    return data.encode() if isinstance(data, str) else bytes(data)


def decode_text(data: bytes, filename: str) -> str:
    if data.startswith(UTF16_BOMS):
        return decode_utf16(data, filename)
    text = decode_first(data)
    # A text file with NUL bytes is a binary file with the wrong name.
    if "\x00" in text:
        raise UnreadableDocument(f"“{filename}” is not a text file, despite its name.")
    return text.removeprefix("\ufeff")


def decode_first(data: bytes) -> str:
    for encoding in TEXT_ENCODINGS[:-1]:
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode(TEXT_ENCODINGS[-1])


def decode_utf16(data: bytes, filename: str) -> str:
    try:
        return data.decode("utf-16")
    except UnicodeDecodeError as error:
        raise UnreadableDocument(f"“{filename}” is not valid UTF-16 text.") from error


def pdf_text(data: bytes, filename: str) -> str:
    from pypdf import PdfReader
    from pypdf.errors import FileNotDecryptedError

    try:
        reader = PdfReader(io.BytesIO(data))
        unlock(reader, filename)
        return "\n\n".join(page.extract_text() or "" for page in reader.pages)
    except UnreadableDocument:
        raise
    except FileNotDecryptedError as error:
        raise UnreadableDocument(password_message(filename)) from error
    except Exception as error:
        # A damaged PDF can fail anywhere inside the parser, with any exception type.
        logger.info("Could not parse PDF %s", filename, exc_info=True)
        raise UnreadableDocument(f"“{filename}” is damaged or not a PDF and could not be read.") from error


def password_message(filename: str) -> str:
    return f"“{filename}” is a password-protected PDF; remove the password and upload it again."


def unlock(reader, filename: str) -> None:
    from pypdf.errors import PyPdfError

    if not reader.is_encrypted:
        return
    # Many PDFs are encrypted only against editing, with an empty password for reading.
    try:
        opened = reader.decrypt("")
    except (PyPdfError, NotImplementedError, ValueError):
        # Raised when the cipher needs an optional crypto library; the file stays locked.
        opened = 0
    if not opened:
        raise UnreadableDocument(password_message(filename))


def docx_text(data: bytes, filename: str) -> str:
    import docx

    try:
        document = docx.Document(io.BytesIO(data))
    except Exception as error:
        # python-docx raises zip, XML and package errors alike for files that are not .docx.
        raise UnreadableDocument(
            f"“{filename}” is damaged or not a Word document and could not be read."
        ) from error
    return "\n\n".join(block for block in docx_blocks(document) if block.strip())


def docx_blocks(container) -> Iterator[str]:
    """Paragraphs and table rows in document order, including tables nested in cells."""
    from docx.table import Table

    for item in container.iter_inner_content():
        if isinstance(item, Table):
            yield from table_rows(item)
        else:
            yield item.text


def table_rows(table) -> Iterator[str]:
    for row in table.rows:
        cells, seen = [], set()
        for cell in row.cells:
            # A merged cell is returned once per grid column it spans.
            if id(cell._tc) in seen:
                continue
            seen.add(id(cell._tc))
            cells.append("\n".join(block for block in docx_blocks(cell) if block.strip()))
        yield "\t".join(cell for cell in cells if cell)

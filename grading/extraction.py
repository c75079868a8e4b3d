"""Plain text out of uploaded documents, so every provider grades the same words.

Uploads are untrusted: any file that cannot be read becomes an UnreadableDocument with a
sentence the uploader can act on, never a parser's traceback.

Extraction is bounded, because a small file can hold a great deal: a 1 MB .docx
can inflate to gigabytes of XML, a PDF stream can be a deflate bomb. Every
document yields at most MAX_DOCUMENT_CHARS characters; a .docx is a ZIP, judged
like one (entry count, declared size and compression ratio of the parts read)
and its XML is inflated and parsed as a stream, never held whole, stopping
as soon as the bytes actually inflated pass the cap; a PDF is read with
pypdf's decompression limits tightened and at most MAX_PDF_PAGES pages. A
document past a bound raises DocumentTooLarge, which an upload refuses (400).
"""

from __future__ import annotations

import io
import logging
import os
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

from grading.containers import MIB, InflateLimit, declared_entries, looks_like_bomb, ratio, read_bounded

SUPPORTED_EXTENSIONS = (".docx", ".md", ".pdf", ".txt")
# Tried in order for plain text; latin-1 decodes any byte sequence, so it is the last resort.
TEXT_ENCODINGS = ("utf-8", "cp1252", "latin-1")
UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")

# A Word document has a few dozen parts, a few hundred with many images.
MAX_DOCX_ENTRIES = 5_000
# The XML of a .docx may inflate to this many bytes per character allowed
# (run and paragraph markup is verbose), and at least DOCX_XML_FLOOR_BYTES.
DOCX_XML_BYTES_PER_CHAR = 100
DOCX_XML_FLOOR_BYTES = 16 * MIB
DOCX_RELS_MAX_BYTES = 1 * MIB
MAX_PDF_PAGES = 2_000
# pypdf's guards (pypdf.Configuration), tightened from its defaults of 75 MB per
# decoded stream: a page's content stream is kilobytes, rarely a few MB.
PDF_STREAM_MAX_BYTES = 32 * MIB
# pypdf's guards are per stream, and it keeps every stream it decoded: a few
# MB of PDF whose pages each hold a deflated MB of drawing operators grew a
# worker by 1.5 GB in 10 s. The pages' content streams together may inflate
# to this much (a 2,000-page text document holds a few tens of MB), and each
# page's are forgotten once read (forget_decoded), so memory holds one page's.
PDF_CONTENT_MAX_BYTES = 64 * MIB
PDF_LIMITS = {
    "maximum_declared_stream_length": PDF_STREAM_MAX_BYTES,
    "array_based_stream_maximum_output_length": PDF_STREAM_MAX_BYTES,
    "zlib_maximum_output_length": PDF_STREAM_MAX_BYTES,
    "lzw_maximum_output_length": PDF_STREAM_MAX_BYTES,
    "run_length_maximum_output_length": PDF_STREAM_MAX_BYTES,
    "brotli_maximum_output_length": PDF_STREAM_MAX_BYTES,
    "jbig2_maximum_output_length": PDF_STREAM_MAX_BYTES,
    "image_maximum_buffer_size": PDF_STREAM_MAX_BYTES,
    "stream_decoding_work_maximum_length": 2 * PDF_STREAM_MAX_BYTES,
    "page_tree_maximum_entries": 4 * MAX_PDF_PAGES,
    # Tokens per content stream (pypdf: 2,000,000); a dense page of text holds thousands.
    "stream_parsing_work_maximum_count": 400_000,
}

logger = logging.getLogger(__name__)

Source = str | os.PathLike | IO[bytes]


class UnreadableDocument(Exception):
    pass


class DocumentTooLarge(UnreadableDocument):
    """A document past a bound of safe extraction; an upload refuses it rather than store it.

    `reason` is the sentence without the file's name, so an upload can name
    the file as it knows it (for an entry of a ZIP, "essays.zip: ada.docx").
    """

    def __init__(self, filename: str, reason: str):
        super().__init__(f"“{filename}” {reason}")
        self.filename = filename
        self.reason = reason


def setting(name: str):
    # Imported here: importing this module loads neither Django nor the parsers.
    from django.conf import settings

    return getattr(settings, name)


def max_chars() -> int:
    return setting("MAX_DOCUMENT_CHARS")


def too_many_chars(filename: str) -> DocumentTooLarge:
    return DocumentTooLarge(
        filename,
        f"holds more than {max_chars():,} characters of text, the limit per document "
        "(MAX_DOCUMENT_CHARS); split it into smaller documents.",
    )


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
    if len(text) > max_chars():
        raise too_many_chars(filename)
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
    from pypdf import PdfReader, apply_configuration
    from pypdf.errors import FileNotDecryptedError, LimitReachedError

    try:
        with apply_configuration(**PDF_LIMITS):
            reader = PdfReader(io.BytesIO(data))
            unlock(reader, filename)
            pages = len(reader.pages)
            if pages > MAX_PDF_PAGES:
                raise DocumentTooLarge(filename, f"has {pages:,} pages; the limit is {MAX_PDF_PAGES:,}.")
            return join_capped(pdf_page_texts(reader, filename), filename, keep_blank=True)
    except UnreadableDocument:
        raise
    except FileNotDecryptedError as error:
        raise UnreadableDocument(password_message(filename)) from error
    except LimitReachedError as error:
        # pypdf's own guards: a stream inflating past its cap, a page tree too large, …
        logger.info("PDF %s past a pypdf limit: %s", filename, error)
        raise DocumentTooLarge(
            filename, f"is past the limits of safe PDF reading ({str(error)[:160].rstrip('.')})."
        ) from error
    except Exception as error:
        # A damaged PDF can fail anywhere inside the parser, with any exception type.
        logger.info("Could not parse PDF %s", filename, exc_info=True)
        raise UnreadableDocument(f"“{filename}” is damaged or not a PDF and could not be read.") from error


def pdf_page_texts(reader, filename: str) -> Iterator[str]:
    """Each page's text, refusing before a page whose content would take the document past its budget.

    The page's content stream is decoded first (pypdf keeps the decoded bytes,
    so extract_text does not decode it again) and counted against
    PDF_CONTENT_MAX_BYTES; no page's text is extracted past it.
    """
    inflated = 0
    for page in reader.pages:
        contents = page.get_contents()
        inflated += len(contents.get_data()) if contents is not None else 0
        if inflated > PDF_CONTENT_MAX_BYTES:
            raise DocumentTooLarge(
                filename,
                f"holds more than {PDF_CONTENT_MAX_BYTES // MIB} MB of page content once inflated, "
                "the limit of safe PDF reading.",
            )
        text = page.extract_text() or ""
        forget_decoded(page)
        yield text


def forget_decoded(page) -> None:
    """Drop the decoded bytes pypdf keeps on the page's content streams; the budget counted them."""
    from pypdf.generic import ArrayObject

    contents = page.get("/Contents")
    streams = contents.get_object() if contents is not None else None
    for stream in streams if isinstance(streams, ArrayObject) else [streams]:
        stream = stream.get_object() if stream is not None else None
        if getattr(stream, "decoded_self", None) is not None:
            stream.decoded_self = None


def join_capped(blocks: Iterable[str], filename: str, keep_blank: bool = False) -> str:
    """The blocks joined by blank lines, refusing as soon as they pass MAX_DOCUMENT_CHARS."""
    limit, total, kept = max_chars(), 0, []
    for block in blocks:
        if not keep_blank and not block.strip():
            continue
        total += len(block) + 2
        if total > limit + 2:
            raise too_many_chars(filename)
        kept.append(block)
    return "\n\n".join(kept)


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


# --- Word documents ---------------------------------------------------------------
#
# A .docx is a ZIP. Only two of its parts are inflated: _rels/.rels, which names
# the main part, and that part (word/document.xml), which is streamed through
# expat: no tree is built, so memory holds one paragraph or table row of text
# at a time, whatever the XML's size. The text follows python-docx's reading:
# the body's paragraphs and tables in order, a table row as its cells joined by
# tabs, a cell's paragraphs and nested tables joined by newlines, a merged cell
# once (a vertically merged one in its first row only).

WORDML_NAMESPACES = (
    "http://schemas.openxmlformats.org/wordprocessingml/2006/main",
    "http://purl.oclc.org/ooxml/wordprocessingml/main",
)
OFFICE_DOCUMENT_RELATIONSHIP = "/officeDocument"
RUN_SYMBOLS = {"tab": "\t", "ptab": "\t", "cr": "\n", "noBreakHyphen": "-"}
# Word nests a table in a cell in a table … a few levels deep; thousands of
# open elements are an attack on the parser's stack, not a document.
MAX_XML_DEPTH = 1_000
OTHER = ("other", None)


def docx_text(data: bytes, filename: str) -> str:
    damaged = UnreadableDocument(f"“{filename}” is damaged or not a Word document and could not be read.")
    source = io.BytesIO(data)
    entries = declared_entries(source)
    if entries is None:
        raise damaged
    if entries > MAX_DOCX_ENTRIES:
        raise DocumentTooLarge(
            filename, f"holds {entries:,} parts; a Word document is refused past {MAX_DOCX_ENTRIES:,}."
        )
    try:
        with zipfile.ZipFile(source) as package:
            main = docx_part(package, main_part_name(package, filename), filename)
            blocks = docx_body_blocks(read_bounded(package, main, docx_xml_cap()), filename)
            return join_capped(blocks, filename)
    except UnreadableDocument:
        raise
    except InflateLimit as error:
        raise DocumentTooLarge(
            filename, f"has a part ({error.entry}) that inflates past {error.cap / MIB:.0f} MB; refused."
        ) from error
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, NotImplementedError, RuntimeError) as error:
        raise damaged from error
    except (KeyError, ValueError, OSError, EOFError, DocxXmlError) as error:
        raise damaged from error


def docx_xml_cap() -> int:
    return max(DOCX_XML_FLOOR_BYTES, DOCX_XML_BYTES_PER_CHAR * max_chars())


def docx_part(package: zipfile.ZipFile, name: str, filename: str, cap: int | None = None) -> zipfile.ZipInfo:
    """The part's entry, once its declared size and compression ratio are within bounds."""
    cap = docx_xml_cap() if cap is None else cap
    info = package.getinfo(name)  # KeyError: damaged
    if info.flag_bits & 0x1:
        raise UnreadableDocument(
            f"“{filename}” is encrypted; save it without a password and upload it again."
        )
    limit = setting("MAX_ZIP_RATIO")
    if looks_like_bomb(info, limit):
        raise DocumentTooLarge(
            filename,
            f"looks like a zip bomb: its part {name} inflates {ratio(info):,.0f} times (limit {limit}).",
        )
    if info.file_size > cap:
        raise DocumentTooLarge(
            filename,
            f"has a part ({name}) of {info.file_size / MIB:,.0f} MB; the limit is {cap / MIB:.0f} MB.",
        )
    return info


def main_part_name(package: zipfile.ZipFile, filename: str) -> str:
    """The main document part named by the package relationships (word/document.xml as a rule)."""
    try:
        info = docx_part(package, "_rels/.rels", filename, cap=DOCX_RELS_MAX_BYTES)
    except KeyError:
        return "word/document.xml"
    targets: list[str] = []

    def start(name: str, attributes: dict[str, str]) -> None:
        if name.endswith(" Relationship") and attributes.get("Type", "").endswith(
            OFFICE_DOCUMENT_RELATIONSHIP
        ):
            targets.append(attributes.get("Target", ""))

    parse_xml(read_bounded(package, info, DOCX_RELS_MAX_BYTES), start=start)
    if not targets or not targets[0].strip("/"):
        return "word/document.xml"
    return targets[0].lstrip("/")


class DocxXmlError(ValueError):
    pass


def xml_parser(start=None, end=None, data=None):
    """An expat parser with namespaces as "uri local", refusing any DTD (so no entity tricks)."""
    from xml.parsers import expat

    parser = expat.ParserCreate(namespace_separator=" ")
    parser.buffer_text = True
    parser.buffer_size = 64 * 1024
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)

    def refuse_doctype(*args) -> None:
        # OOXML never declares a DTD; one is only good for entity expansion.
        raise DocxXmlError("a document type declaration")

    parser.StartDoctypeDeclHandler = refuse_doctype
    parser.EntityDeclHandler = refuse_doctype
    if start:
        parser.StartElementHandler = start
    if end:
        parser.EndElementHandler = end
    if data:
        parser.CharacterDataHandler = data
    return parser


def feed(parser, chunk: bytes, final: bool = False) -> None:
    from xml.parsers import expat

    try:
        parser.Parse(chunk, final)
    except expat.ExpatError as error:
        raise DocxXmlError(str(error)) from error


def parse_xml(chunks: Iterable[bytes], start=None) -> None:
    parser = xml_parser(start=start)
    for chunk in chunks:
        feed(parser, chunk)
    feed(parser, b"", final=True)


class _Cell:
    __slots__ = ("blocks", "continued")

    def __init__(self) -> None:
        self.blocks: list[str] = []
        self.continued = False  # vertically merged with the cell above: its text is there


class _BodyReader:
    """expat handlers that turn a document part into its body's blocks of text, in order."""

    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.stack: list[tuple[str, object]] = []  # (role, state) per open element
        self.blocks: list[str] = []  # finished body-level blocks, not yet taken
        self.seen_document = False
        self.captured = 0

    def take(self) -> list[str]:
        blocks, self.blocks = self.blocks, []
        return blocks

    def start(self, name: str, attributes: dict[str, str]) -> None:
        if len(self.stack) >= MAX_XML_DEPTH:
            raise DocumentTooLarge(self.filename, f"nests its XML more than {MAX_XML_DEPTH:,} levels deep.")
        namespace, _, tag = name.rpartition(" ")
        self.stack.append(self.role(namespace, tag, attributes))

    def role(self, namespace: str, tag: str, attributes: dict[str, str]) -> tuple[str, object]:
        if namespace not in WORDML_NAMESPACES:
            return OTHER
        parent = self.stack[-1][0] if self.stack else None
        if parent is None:
            if tag != "document":
                raise DocxXmlError(f"a <{tag}> root, not a Word document")
            self.seen_document = True
            return "document", None
        if tag == "body" and parent == "document":
            return "body", None
        if parent in ("body", "tc"):
            if tag == "p":
                return "p", []
            if tag == "tbl":
                return "tbl", None
        if tag == "tr" and parent == "tbl":
            return "tr", []
        if tag == "tc" and parent == "tr":
            return "tc", _Cell()
        if tag == "tcPr" and parent == "tc":
            return "tcPr", None
        if tag == "vMerge" and parent == "tcPr":
            # No w:val, or "continue": this cell carries on the one above.
            if attributes.get(f"{namespace} val", "continue") == "continue":
                self.stack[-2][1].continued = True
            return OTHER
        if tag == "hyperlink" and parent == "p":
            return "hyperlink", None
        if tag == "r" and parent in ("p", "hyperlink"):
            return "r", None
        if parent == "r":
            if tag == "t":
                return "t", None
            symbol = RUN_SYMBOLS.get(tag)
            if tag == "br" and attributes.get(f"{namespace} type", "textWrapping") == "textWrapping":
                symbol = "\n"
            if symbol:
                self.paragraph().append(symbol)
                self.count(1)
        return OTHER

    def paragraph(self) -> list[str]:
        for role, state in reversed(self.stack):
            if role == "p":
                return state
        raise DocxXmlError("run outside a paragraph")  # unreachable: roles nest

    def count(self, characters: int) -> None:
        # Text still inside an open paragraph or table counts too: one huge
        # paragraph must not fill memory before the caller's cap sees it.
        self.captured += characters
        if self.captured > max_chars():
            raise too_many_chars(self.filename)

    def data(self, text: str) -> None:
        if self.stack and self.stack[-1][0] == "t":
            self.paragraph().append(text)
            self.count(len(text))

    def end(self, name: str) -> None:
        role, state = self.stack.pop()
        if role == "p":
            self.emit("".join(state))
        elif role == "tc":
            if not state.continued:
                text = "\n".join(block for block in state.blocks if block.strip())
                if text:
                    self.stack[-1][1].append(text)
        elif role == "tr":
            self.emit("\t".join(state))

    def emit(self, block: str) -> None:
        """A finished paragraph or table row goes to its container: the body, or a cell."""
        role, state = self.stack[-1]
        if role == "tbl":
            role, state = self.stack[-2]
        if role == "tc":
            state.blocks.append(block)
        elif role == "body":
            self.blocks.append(block)


def docx_body_blocks(chunks: Iterable[bytes], filename: str) -> Iterator[str]:
    """The body's blocks, handed over as the XML streams in, so the caller's cap applies as it goes."""
    reader = _BodyReader(filename)
    parser = xml_parser(start=reader.start, end=reader.end, data=reader.data)
    for chunk in chunks:
        feed(parser, chunk)
        yield from reader.take()
    feed(parser, b"", final=True)
    yield from reader.take()
    if not reader.seen_document:
        raise DocxXmlError("no document element")

"""Real PDF and Word files built in memory, so extraction is tested on genuine formats."""

from __future__ import annotations

import io
import zlib


def make_pdf(pages: list[str]) -> bytes:
    """A minimal but valid PDF with one Helvetica text page per string, lines split on newlines."""
    return pdf_of_streams([content_stream(text) for text in pages])


def deflated_pages(raw_per_page: list[bytes]) -> bytes:
    """A PDF with one page per content stream, each given raw and stored deflated."""
    return pdf_of_streams([deflated_stream(raw) for raw in raw_per_page])


def pdf_of_streams(streams: list[bytes]) -> bytes:
    """A PDF with one page per content stream object (its dictionary and data)."""
    kids = " ".join(f"{4 + 2 * index} 0 R" for index in range(len(streams)))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {len(streams)} >>".encode(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    for index, stream in enumerate(streams):
        objects.append(page_object(contents=5 + 2 * index))
        objects.append(stream)
    return assemble(objects)


def deflated_stream(raw: bytes) -> bytes:
    packed = zlib.compress(raw, 9)
    return b"<< /Length %d /Filter /FlateDecode >>\nstream\n%s\nendstream" % (len(packed), packed)


def page_object(contents: int) -> bytes:
    return (
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        f"/Resources << /Font << /F1 3 0 R >> >> /Contents {contents} 0 R >>"
    ).encode()


def content_stream(text: str) -> bytes:
    operators = ["BT", "/F1 12 Tf", "14 TL", "72 720 Td"]
    for line in text.split("\n"):
        escaped = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        operators.append(f"({escaped}) Tj T*")
    operators.append("ET")
    stream = "\n".join(operators).encode("latin-1")
    return b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream)


def assemble(objects: list[bytes]) -> bytes:
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n%s\nendobj\n" % (number, body))
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\n" % (len(objects) + 1))
    out.write(b"startxref\n%d\n%%%%EOF\n" % xref)
    return out.getvalue()


def encrypt_pdf(data: bytes, user_password: str) -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    # RC4 needs no optional crypto library, unlike AES.
    writer.encrypt(user_password=user_password, owner_password="owner", algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def make_docx(paragraphs: list[str], table: list[list[str]] | None = None) -> bytes:
    import docx

    document = docx.Document()
    for text in paragraphs:
        document.add_paragraph(text)
    if table:
        grid = document.add_table(rows=len(table), cols=len(table[0]))
        for row, values in zip(grid.rows, table, strict=True):
            for cell, value in zip(row.cells, values, strict=True):
                cell.text = value
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


WORDML = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
DOCX_CONTENT_TYPES = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    b'<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    b'<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    b'<Default Extension="xml" ContentType="application/xml"/>'
    b'<Override PartName="/word/document.xml" '
    b'ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>'
    b"</Types>"
)
DOCX_RELS = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    b'<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    b'<Relationship Id="rId1" Target="word/document.xml" '
    b'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument"/>'
    b"</Relationships>"
)


def docx_bomb(inflated_bytes: int = 1 << 30, declared_bytes: int | None = None) -> bytes:
    """A genuine .docx whose word/document.xml inflates to about `inflated_bytes` of paragraphs.

    About 1 MB per GiB inflated, built in a second or two without ever holding
    the XML: one 1 MiB chunk of paragraphs is deflated once, ending in a full
    flush (so it refers to nothing before it), and those compressed bytes are
    repeated; the CRC is computed over the repeats. `declared_bytes` makes the
    central directory and local header lie about the inflated size.
    """
    import zlib

    head = f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<w:document xmlns:w="{WORDML}"><w:body>'
    # Long runs of one letter deflate about 1000:1, as far as deflate goes.
    paragraph = b"<w:p><w:r><w:t>" + b"a" * 16_000 + b"</w:t></w:r></w:p>"
    chunk = paragraph * ((1 << 20) // len(paragraph))
    tail = b"</w:body></w:document>"
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    deflated_head = compressor.compress(head.encode()) + compressor.flush(zlib.Z_FULL_FLUSH)
    deflated_chunk = compressor.compress(chunk) + compressor.flush(zlib.Z_FULL_FLUSH)
    deflated_tail = compressor.compress(tail) + compressor.flush()
    repeats = max(1, (inflated_bytes - len(head) - len(tail)) // len(chunk))
    crc = zlib.crc32(head.encode())
    for _ in range(repeats):
        crc = zlib.crc32(chunk, crc)
    crc = zlib.crc32(tail, crc)
    size = len(head) + repeats * len(chunk) + len(tail)
    body = deflated_head + deflated_chunk * repeats + deflated_tail
    parts = [
        _deflated_part("[Content_Types].xml", DOCX_CONTENT_TYPES),
        _deflated_part("_rels/.rels", DOCX_RELS),
        ("word/document.xml", body, crc, size if declared_bytes is None else declared_bytes),
    ]
    return write_zip(parts)


def _deflated_part(name: str, data: bytes) -> tuple[str, bytes, int, int]:
    import zlib

    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    return name, compressor.compress(data) + compressor.flush(), zlib.crc32(data), len(data)


def write_zip(parts: list[tuple[str, bytes, int, int]]) -> bytes:
    """A ZIP of already deflated entries (name, deflated bytes, CRC-32, inflated size), under 4 GiB each."""
    import struct

    out, central = io.BytesIO(), io.BytesIO()
    for name, deflated, crc, size in parts:
        encoded = name.encode()
        offset = out.tell()
        fields = (20, 0, 8, 0, 0x21, crc, len(deflated), size, len(encoded), 0)
        out.write(struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", *fields))
        out.write(encoded)
        out.write(deflated)
        central.write(struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 20, *fields, 0, 0, 0, 0, offset))
        central.write(encoded)
    directory = central.getvalue()
    start = out.tell()
    out.write(directory)
    count = len(parts)
    out.write(struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, count, count, len(directory), start, 0))
    return out.getvalue()

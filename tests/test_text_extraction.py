import io
import zipfile
import zlib

import pytest

from grading import containers, extraction
from grading.extraction import SUPPORTED_EXTENSIONS, DocumentTooLarge, UnreadableDocument, extract_text
from tests.support.documents import (
    DOCX_CONTENT_TYPES,
    DOCX_RELS,
    WORDML,
    assemble,
    deflated_pages,
    docx_bomb,
    encrypt_pdf,
    make_docx,
    make_pdf,
    page_object,
)

ESSAY = "Remote work raises productivity.\n\nIt depends on wellbeing."


def test_supported_extensions_are_the_four_upload_types():
    assert set(SUPPORTED_EXTENSIONS) == {".txt", ".md", ".pdf", ".docx"}


def test_a_utf8_text_file_is_read_from_a_path(tmp_path):
    path = tmp_path / "essay.txt"
    path.write_text("Café society — “quoted”.\r\nSecond line.", encoding="utf-8")

    assert extract_text(path, "essay.txt") == "Café society — “quoted”.\nSecond line."


def test_a_text_file_is_read_from_a_binary_file_object_even_after_being_read_once():
    upload = io.BytesIO(ESSAY.encode())
    upload.read()

    assert extract_text(upload, "essay.txt") == ESSAY


def test_a_byte_order_mark_is_dropped():
    data = "\ufeffWith a BOM.".encode()

    assert extract_text(io.BytesIO(data), "bom.txt") == "With a BOM."


def test_a_windows_encoded_text_file_falls_back_to_cp1252():
    data = "“Smart quotes” and café".encode("cp1252")

    assert extract_text(io.BytesIO(data), "legacy.txt") == "“Smart quotes” and café"


def test_a_utf16_text_file_with_a_byte_order_mark_is_decoded():
    data = "Saved as Unicode by Notepad.".encode("utf-16")

    assert extract_text(io.BytesIO(data), "notepad.txt") == "Saved as Unicode by Notepad."


def test_markdown_is_read_as_text_with_its_markup():
    data = b"# Title\n\nBody with *emphasis*.\n"

    assert extract_text(io.BytesIO(data), "essay.MD") == "# Title\n\nBody with *emphasis*."


def test_a_pdf_yields_the_text_of_every_page():
    data = make_pdf(["Remote work and productivity.\nA second line.", "Page two (conclusion)."])

    text = extract_text(io.BytesIO(data), "essay.pdf")

    assert "Remote work and productivity." in text
    assert "A second line." in text
    assert "Page two (conclusion)." in text
    assert text.index("productivity") < text.index("Page two")


def test_a_pdf_encrypted_with_an_empty_password_is_still_read(tmp_path):
    path = tmp_path / "locked-for-editing.pdf"
    path.write_bytes(encrypt_pdf(make_pdf(["Readable by anyone."]), user_password=""))

    assert extract_text(path, "locked-for-editing.pdf") == "Readable by anyone."


def test_a_password_protected_pdf_is_unreadable():
    data = encrypt_pdf(make_pdf(["Secret."]), user_password="secret")

    with pytest.raises(UnreadableDocument, match="password-protected PDF"):
        extract_text(io.BytesIO(data), "secret.pdf")


def test_a_corrupt_pdf_is_unreadable():
    data = make_pdf(["Cut short."])[:150]

    with pytest.raises(UnreadableDocument, match="“broken.pdf” is damaged or not a PDF"):
        extract_text(io.BytesIO(data), "broken.pdf")


def test_a_pdf_without_text_says_it_may_be_a_scan():
    data = make_pdf([""])

    with pytest.raises(UnreadableDocument, match="scanned image"):
        extract_text(io.BytesIO(data), "scan.pdf")


def test_a_word_document_yields_paragraphs_and_table_cells_in_order():
    data = make_docx(
        ["Introduction paragraph.", "Body paragraph."],
        table=[["Criterion", "Evidence"], ["Thesis", "Stated in the opening"]],
    )

    text = extract_text(io.BytesIO(data), "report.docx")

    assert text == (
        "Introduction paragraph.\n\nBody paragraph.\n\nCriterion\tEvidence\n\nThesis\tStated in the opening"
    )


def test_a_word_document_is_read_from_a_path(tmp_path):
    path = tmp_path / "report.docx"
    path.write_bytes(make_docx(["Only paragraph."]))

    assert extract_text(str(path), "report.docx") == "Only paragraph."


def test_a_corrupt_word_document_is_unreadable():
    with pytest.raises(UnreadableDocument, match="damaged or not a Word document"):
        extract_text(io.BytesIO(b"PK\x03\x04 not really a zip"), "report.docx")


def test_an_empty_word_document_has_no_text():
    with pytest.raises(UnreadableDocument, match="contains no text"):
        extract_text(io.BytesIO(make_docx(["", "   "])), "blank.docx")


@pytest.mark.parametrize("content", [b"", b"   \n\t\r\n  "])
def test_an_empty_or_whitespace_file_has_no_text(content):
    with pytest.raises(UnreadableDocument, match="“empty.txt” contains no text to grade"):
        extract_text(io.BytesIO(content), "empty.txt")


@pytest.mark.parametrize("filename", ["slides.pptx", "essay.doc", "README"])
def test_an_unsupported_file_type_is_refused_with_the_supported_ones_named(filename):
    with pytest.raises(UnreadableDocument) as caught:
        extract_text(io.BytesIO(b"anything"), filename)

    assert f"“{filename}” cannot be graded" in str(caught.value)
    assert ".docx, .md, .pdf or .txt" in str(caught.value)


def test_a_binary_file_named_txt_is_refused():
    with pytest.raises(UnreadableDocument, match="not a text file"):
        extract_text(io.BytesIO(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), "image.txt")


def test_a_missing_path_is_unreadable(tmp_path):
    with pytest.raises(UnreadableDocument, match="could not be opened"):
        extract_text(tmp_path / "gone.txt", "gone.txt")


# --- bounded extraction ---------------------------------------------------------------

GIB = 1 << 30
MIB = 1 << 20


@pytest.fixture(scope="module")
def gigabyte_bomb() -> bytes:
    """About 1.2 MB of .docx whose word/document.xml inflates to 1 GiB."""
    return docx_bomb(GIB)


def docx_of(document_xml: bytes, extra: dict[str, bytes] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", DOCX_CONTENT_TYPES)
        archive.writestr("_rels/.rels", DOCX_RELS)
        archive.writestr("word/document.xml", document_xml)
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
    return buffer.getvalue()


def body(xml: str) -> bytes:
    return f'<w:document xmlns:w="{WORDML}"><w:body>{xml}</w:body></w:document>'.encode()


def test_a_docx_bomb_is_refused_from_its_directory_without_inflating(gigabyte_bomb):
    assert len(gigabyte_bomb) < 2 * MIB

    with pytest.raises(DocumentTooLarge) as caught:
        extract_text(io.BytesIO(gigabyte_bomb), "bomb.docx")

    assert str(caught.value).startswith(
        "“bomb.docx” looks like a zip bomb: its part word/document.xml inflates"
    )
    assert "(limit 100)" in str(caught.value)


def test_a_docx_part_declared_past_the_xml_cap_is_refused_whatever_its_ratio(settings):
    settings.MAX_ZIP_RATIO = 1_000_000  # the ratio guard out of the way
    settings.MAX_DOCUMENT_CHARS = 1000  # the XML cap is then its floor, 16 MB

    with pytest.raises(
        DocumentTooLarge, match=r"has a part \(word/document.xml\) of 64 MB; the limit is 16 MB"
    ):
        extract_text(io.BytesIO(docx_bomb(64 * MIB)), "big.docx")


def test_a_docx_lying_about_its_size_is_never_inflated_past_what_it_declared(settings):
    settings.MAX_ZIP_RATIO = 1_000_000
    # Declares 200 kB, holds 1 GiB: inflating stops at 200 kB and the CRC check fails.
    liar = docx_bomb(GIB, declared_bytes=200_000)

    with pytest.raises(UnreadableDocument, match="damaged or not a Word document") as caught:
        extract_text(io.BytesIO(liar), "liar.docx")

    assert not isinstance(caught.value, DocumentTooLarge)


def test_a_docx_lying_about_its_size_stops_at_the_character_cap_while_streaming(settings):
    settings.MAX_ZIP_RATIO = 1_000_000
    settings.MAX_DOCUMENT_CHARS = 1000
    # Declares 10 MB (under the 16 MB cap), holds 1 GiB of text: the stream stops at 1,000 characters.
    liar = docx_bomb(GIB, declared_bytes=10 * MIB)

    with pytest.raises(DocumentTooLarge, match="more than 1,000 characters"):
        extract_text(io.BytesIO(liar), "liar.docx")


def test_the_bounded_reader_stops_as_soon_as_the_inflated_bytes_pass_the_cap():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("zeros.xml", bytes(8 * MIB))
    read = 0
    with zipfile.ZipFile(buffer) as archive, pytest.raises(containers.InflateLimit) as caught:
        for chunk in containers.read_bounded(archive, archive.getinfo("zeros.xml"), cap=MIB):
            read += len(chunk)

    assert caught.value.cap == MIB
    assert read <= MIB


def test_a_docx_with_more_text_than_the_limit_is_refused(settings):
    settings.MAX_DOCUMENT_CHARS = 1000
    data = make_docx([f"Sentence number {index} of a long essay." for index in range(100)])

    with pytest.raises(DocumentTooLarge) as caught:
        extract_text(io.BytesIO(data), "long.docx")

    assert caught.value.reason.startswith("holds more than 1,000 characters of text")
    assert "MAX_DOCUMENT_CHARS" in str(caught.value)


def test_one_huge_paragraph_is_refused_before_it_ends(settings):
    settings.MAX_DOCUMENT_CHARS = 1000
    data = docx_of(body("<w:p><w:r><w:t>" + "word " * 10_000 + "</w:t></w:r></w:p>"))

    with pytest.raises(DocumentTooLarge, match="more than 1,000 characters"):
        extract_text(io.BytesIO(data), "one-paragraph.docx")


@pytest.mark.parametrize("filename", ["long.txt", "long.md"])
def test_a_text_file_with_more_text_than_the_limit_is_refused(settings, filename):
    settings.MAX_DOCUMENT_CHARS = 1000

    assert len(extract_text(io.BytesIO(b"x" * 1000), filename)) == 1000
    with pytest.raises(DocumentTooLarge, match=f"“{filename}” holds more than 1,000 characters"):
        extract_text(io.BytesIO(b"x" * 1001), filename)


def test_a_pdf_with_more_text_than_the_limit_is_refused(settings):
    settings.MAX_DOCUMENT_CHARS = 1000
    data = make_pdf(["A line of the essay that goes on for a while.\n" * 15] * 3)

    with pytest.raises(DocumentTooLarge, match="more than 1,000 characters"):
        extract_text(io.BytesIO(data), "long.pdf")


def test_a_docx_with_too_many_parts_is_refused_before_its_directory_is_read(monkeypatch):
    monkeypatch.setattr(extraction, "MAX_DOCX_ENTRIES", 5)
    data = docx_of(
        body("<w:p><w:r><w:t>Fine.</w:t></w:r></w:p>"), {f"word/media/{i}.png": b"" for i in range(3)}
    )

    with pytest.raises(DocumentTooLarge, match="holds 6 parts; a Word document is refused past 5"):
        extract_text(io.BytesIO(data), "parts.docx")


def test_a_docx_declaring_entities_is_unreadable_not_expanded():
    laughs = (
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
        f'<w:document xmlns:w="{WORDML}"><w:body><w:p><w:r><w:t>&lol2;</w:t></w:r></w:p></w:body></w:document>'
    )

    with pytest.raises(UnreadableDocument, match="damaged or not a Word document"):
        extract_text(io.BytesIO(docx_of(laughs.encode())), "laughs.docx")


def test_xml_nested_past_any_document_is_refused():
    data = docx_of(body("<w:p>" + "<x>" * 5000 + "</x>" * 5000 + "</w:p>"))

    with pytest.raises(DocumentTooLarge, match="nests its XML more than"):
        extract_text(io.BytesIO(data), "deep.docx")


def test_a_word_document_keeps_tabs_breaks_hyperlinks_and_merged_cells_once():
    xml = body(
        '<w:p><w:r><w:t xml:space="preserve">Tab</w:t><w:tab/><w:t>then</w:t><w:br/><w:t>next</w:t>'
        '<w:br w:type="page"/></w:r><w:hyperlink><w:r><w:t xml:space="preserve"> link</w:t></w:r></w:hyperlink>'
        "<w:r><w:noBreakHyphen/><w:t>end</w:t></w:r></w:p>"
        "<w:sdt><w:sdtContent><w:p><w:r><w:t>In a content control.</w:t></w:r></w:p></w:sdtContent></w:sdt>"
        "<w:tbl>"
        '<w:tr><w:tc><w:tcPr><w:gridSpan w:val="2"/></w:tcPr><w:p><w:r><w:t>Wide</w:t></w:r></w:p></w:tc>'
        '<w:tc><w:tcPr><w:vMerge w:val="restart"/></w:tcPr><w:p><w:r><w:t>Tall</w:t></w:r></w:p></w:tc></w:tr>'
        "<w:tr><w:tc><w:p><w:r><w:t>a</w:t></w:r></w:p></w:tc><w:tc><w:p><w:r><w:t>b</w:t></w:r></w:p>"
        "<w:tbl><w:tr><w:tc><w:p><w:r><w:t>inner</w:t></w:r></w:p></w:tc></w:tr></w:tbl></w:tc>"
        "<w:tc><w:tcPr><w:vMerge/></w:tcPr><w:p/></w:tc></w:tr>"
        "</w:tbl>"
    )

    assert (
        extract_text(io.BytesIO(docx_of(xml)), "rich.docx")
        == "Tab\tthen\nnext link-end\n\nWide\tTall\n\na\tb\ninner"
    )


def test_a_pdf_stream_bomb_is_refused_by_pypdfs_tightened_limits():
    # 40 MB of spaces after a line of text, deflated to about 40 kB; pypdf stops inflating at 32 MB.
    raw = b"BT /F1 12 Tf 72 720 Td (Hello) Tj ET\n" + b" " * (40 * MIB)
    packed = zlib.compress(raw, 9)
    stream = b"<< /Length %d /Filter /FlateDecode >>\nstream\n%s\nendstream" % (len(packed), packed)
    data = assemble(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [4 0 R] /Count 1 >>",
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
            page_object(contents=5),
            stream,
        ]
    )

    with pytest.raises(DocumentTooLarge, match="“bomb.pdf” is past the limits of safe PDF reading"):
        extract_text(io.BytesIO(data), "bomb.pdf")


def test_pages_whose_content_inflates_past_the_documents_budget_are_refused(monkeypatch):
    # Each page is within pypdf's per-stream limit; together they are not. pypdf
    # keeps what it decoded, so without a budget for the whole document a few MB
    # of such pages grew a worker by gigabytes.
    monkeypatch.setattr(extraction, "PDF_CONTENT_MAX_BYTES", 1 * MIB)
    drawing = b"BT /F1 12 Tf 72 720 Td (Page) Tj ET\n" + b"0 0 m 1 1 l S\n" * (200 * 1024 // 14)

    assert extract_text(io.BytesIO(deflated_pages([drawing] * 4)), "four.pdf").count("Page") == 4
    with pytest.raises(
        DocumentTooLarge, match="“drawn.pdf” holds more than 1 MB of page content once inflated"
    ):
        extract_text(io.BytesIO(deflated_pages([drawing] * 8)), "drawn.pdf")


def test_a_page_of_more_operators_than_any_page_holds_is_refused():
    # 600,000 tokens deflate to a few kB; pypdf's default budget (2,000,000) took
    # seconds and hundreds of MB to parse a page of them.
    flood = b"BT /F1 12 Tf 72 720 Td " + b"(a) Tj " * 300_000 + b"ET"

    with pytest.raises(DocumentTooLarge, match="“flood.pdf” is past the limits of safe PDF reading"):
        extract_text(io.BytesIO(deflated_pages([flood])), "flood.pdf")


def test_a_pdf_with_more_pages_than_the_limit_is_refused(monkeypatch):
    monkeypatch.setattr(extraction, "MAX_PDF_PAGES", 2)

    assert "Two." in extract_text(io.BytesIO(make_pdf(["One.", "Two."])), "two.pdf")
    with pytest.raises(DocumentTooLarge, match="has 3 pages; the limit is 2"):
        extract_text(io.BytesIO(make_pdf(["One.", "Two.", "Three."])), "three.pdf")


PDF_MEMORY_PROBE = """
import io, json, os
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gradeproject.settings")
import django
django.setup()
import psutil
from grading.extraction import DocumentTooLarge, extract_text
from tests.support.documents import deflated_pages, make_pdf

extract_text(io.BytesIO(make_pdf(["Every parser imported and used once."])), "warm-up.pdf")
# 1,500 pages of 1 MB of drawing each, about 3.5 MB deflated.
bomb = deflated_pages([b"0 0 m 1 1 l S\\n" * ((1 << 20) // 14)] * 1500)
process = psutil.Process()
before = process.memory_info().rss
try:
    extract_text(io.BytesIO(bomb), "drawn.pdf")
    problem = None
except DocumentTooLarge as exc:
    problem = str(exc)
print(json.dumps({"growth": process.memory_info().rss - before, "problem": problem}))
"""


def test_refusing_a_pdf_of_many_inflating_pages_grows_memory_by_less_than_50_mb():
    """In a fresh interpreter measuring its own RSS: pypdf kept every page's stream, 1.5 GB of them."""
    from tests.support.probes import run_probe

    result = run_probe(PDF_MEMORY_PROBE)
    assert result["problem"].startswith("“drawn.pdf” holds more than 64 MB of page content once inflated")
    assert result["growth"] < 50 * MIB, result

import io

import pytest

from grading.extraction import SUPPORTED_EXTENSIONS, UnreadableDocument, extract_text
from tests.support.documents import encrypt_pdf, make_docx, make_pdf

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

"""Feedback sheets a student can read: one PDF per student (or per document with no student).

A sheet holds, for each of the student's documents in the batch, the final
score (export.FINAL_SCORE_RULE), each criterion of the rubric with its score,
the rubric level that score reaches, the grader's feedback and the quotes it
gave as evidence, the overall feedback, and the reviewer's comments.

PDFs are made with fpdf2. Text that Windows-1252 can encode (English and the
Western European languages, accents, curly quotes, dashes) is set in the PDF
core font Helvetica, which needs no embedding; any other text (Polish, Czech,
Greek, Cyrillic names or quotes…) is set in DejaVu Sans, shipped in
static/fonts/ (its licence permits it), which fpdf2 embeds as a subset.

fpdf2 parses the whole font file for every PDF it adds the font to, and its
subsetting then prunes that parsed font in place: parsing two fonts of 6,000
glyphs was most of a DejaVu sheet's time. So each font is parsed once per process (_font_template) and every PDF gets a
working copy of it that subsetting may prune (_working_copy), which shares
what subsetting only reads (README, the export section, has the figures).
"""

import copy
import functools
import logging
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from fontTools import ttLib
from fpdf import FPDF
from fpdf.enums import XPos, YPos
from fpdf.fonts import SubsetMap, TTFFont

FONT_DIR = Path(settings.BASE_DIR) / "static" / "fonts"
# fontTools narrates every subset it makes (which tables, which glyphs) at INFO.
logging.getLogger("fontTools").setLevel(logging.WARNING)
CORE_ENCODING = "windows-1252"
MAX_TEXT = 20_000  # a feedback text longer than this is cut, with a note


@dataclass
class CriterionFeedback:
    name: str
    score: float | None
    max_score: float | None
    level: str = ""
    feedback: str = ""
    evidence: list[tuple[str, bool]] = field(default_factory=list)
    reviewer_comment: str = ""


@dataclass
class DocumentFeedback:
    file_name: str
    score: float | None
    max_score: float | None
    reviewed: bool = False
    criteria: list[CriterionFeedback] = field(default_factory=list)
    overall: list[str] = field(default_factory=list)
    reviewer_comments: list[str] = field(default_factory=list)


@dataclass
class FeedbackSheet:
    title: str  # the student's name and id, or the document's name when it has no student
    batch_name: str
    student_email: str = ""
    documents: list[DocumentFeedback] = field(default_factory=list)

    def texts(self):
        yield from (self.title, self.batch_name, self.student_email)
        for document in self.documents:
            yield from (document.file_name, *document.overall, *document.reviewer_comments)
            for criterion in document.criteria:
                yield from (criterion.name, criterion.level, criterion.feedback, criterion.reviewer_comment)
                yield from (quote for quote, _ in criterion.evidence)


def number(value: float | None) -> str:
    return "–" if value is None else f"{round(value, 2):g}"


def _clean(text: str) -> str:
    """Printable text: control characters other than line breaks dropped, very long text cut."""
    text = unicodedata.normalize("NFC", str(text or ""))
    cleaned = text
    if not text.replace("\n", "").isprintable():
        cleaned = "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch)[0] != "C")
    if len(cleaned) > MAX_TEXT:
        cleaned = cleaned[:MAX_TEXT] + " […]"
    return cleaned.replace("\t", "    ")


def _needs_unicode_font(sheet: FeedbackSheet) -> bool:
    try:
        for text in sheet.texts():
            _clean(text).encode(CORE_ENCODING)
    except UnicodeEncodeError:
        return True
    return False


@functools.cache
def _font_template(path: str, style: str) -> TTFFont:
    """The font as fpdf2 reads it, parsed once per process and never subset itself.

    Every table is loaded and every glyph expanded now, so that reading the
    template later changes nothing in it: fontTools expands a glyph in place
    on first access, and subsetting rewrites the component ids of a glyph
    still compact (remapComponentsFast), which would corrupt a shared one.
    """
    font = TTFFont(FPDF(), Path(path), f"template{style}", style)
    parsed = font.ttfont
    for tag in list(parsed.keys()):
        parsed[tag]  # loads (decompiles) the table
    if "glyf" in parsed:
        glyphs = parsed["glyf"]
        for name in parsed.getGlyphOrder():
            glyphs[name]  # expands the glyph
    return font


def _working_copy(parsed: ttLib.TTFont) -> ttLib.TTFont:
    """A TTFont that fontTools' subsetter may prune without touching `parsed`.

    The subsetter replaces a table's dicts and lists rather than editing them,
    except the character maps' own dicts; so each table is copied with its
    containers, the cmap subtables too, and glyphs (expanded, see
    _font_template) and other leaves are shared. tests/test_feedback_sheets.py
    checks that a sheet comes out byte for byte as with a freshly parsed font.
    """
    working = ttLib.TTFont(recalcTimestamp=False)
    working.sfntVersion = parsed.sfntVersion
    working.setGlyphOrder(list(parsed.getGlyphOrder()))
    for tag in list(parsed.keys()):
        if tag == "GlyphOrder":
            continue
        table = working.tables[tag] = _with_own_containers(parsed[tag])
        if tag == "cmap":
            table.tables = [_with_own_containers(subtable) for subtable in table.tables]
    return working


def _with_own_containers(item):
    duplicate = copy.copy(item)
    for name, value in vars(item).items():
        if isinstance(value, dict | list | set):
            setattr(duplicate, name, copy.copy(value))
    return duplicate


def _add_parsed_font(pdf: FPDF, family: str, style: str, path: Path) -> None:
    """FPDF.add_font, from the font parsed once (_font_template) rather than from its file."""
    template = _font_template(str(path), style)
    font = copy.copy(template)  # widths, character map and descriptor are read only
    font.i = len(pdf.fonts) + 1
    font.fontkey = f"{family.lower()}{style}"
    font.ttfont = _working_copy(template.ttfont)
    font.subset = SubsetMap(font)  # the characters this PDF uses
    font.missing_glyphs = []
    font.biggest_size_pt = 0
    pdf.fonts[font.fontkey] = font


class _Sheet(FPDF):
    def __init__(self, sheet: FeedbackSheet):
        super().__init__(format="A4")
        self.sheet = sheet
        self.set_margins(18, 16, 18)
        self.set_auto_page_break(True, margin=16)
        self.set_title(f"Feedback: {sheet.title}")
        self.set_creator("gradeproject")
        if _needs_unicode_font(sheet):
            _add_parsed_font(self, "DejaVu", "", FONT_DIR / "DejaVuSans.ttf")
            _add_parsed_font(self, "DejaVu", "B", FONT_DIR / "DejaVuSans-Bold.ttf")
            self.family = "DejaVu"
        else:
            self.core_fonts_encoding = CORE_ENCODING
            self.family = "helvetica"

    def footer(self) -> None:
        self.set_y(-12)
        self.font(8)
        self.set_text_color(120)
        self.cell(0, 5, f"{self.sheet.title} · page {self.page_no()}/{{nb}}", align="R")

    def font(self, size: float, bold: bool = False) -> None:
        self.set_font(self.family, "B" if bold else "", size)

    def para(
        self, text: str, size: float = 10, bold: bool = False, indent: float = 0, gap: float = 1.5
    ) -> None:
        text = _clean(text)
        if not text.strip():
            return
        self.font(size, bold)
        width, height = self.epw - indent, size * 0.5
        for line in self._wrap(text, width - 2 * self.c_margin):
            self.set_x(self.l_margin + indent)
            self.cell(width, height, line, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.ln(gap)

    def _width(self, text: str) -> float:
        """The text's width in the current font, from the font's own widths (no text shaping here)."""
        try:
            return self.current_font.get_text_width(text, self.font_size_pt, None)[1] / self.k
        except (KeyError, IndexError):  # a character the width table lacks: let fpdf2 measure
            return self.get_string_width(text)

    def _wrap(self, text: str, width: float):
        """Lines that fit `width`, broken at spaces (a word too long for a line at any character).

        fpdf2's multi_cell measures a line again for every character it adds, and its
        get_string_width copies the graphics state each time: a sheet took a tenth of a
        second. Measuring each word once from the font's width table is far cheaper.
        """
        space = self._width(" ")
        for paragraph in text.split("\n"):
            line, used = [], 0.0
            for word in paragraph.split(" "):
                size = self._width(word)
                while size > width:  # a long word (a URL): break it where it overflows
                    cut = max(1, int(len(word) * width / size))
                    while cut > 1 and self._width(word[:cut]) > width:
                        cut -= 1
                    if line:
                        yield " ".join(line)
                        line, used = [], 0.0
                    yield word[:cut]
                    word = word[cut:]
                    size = self._width(word)
                if line and used + space + size > width:
                    yield " ".join(line)
                    line, used = [], 0.0
                used += (space if line else 0) + size
                line.append(word)
            yield " ".join(line)


def render_pdf(sheet: FeedbackSheet) -> bytes:
    """The sheet as PDF bytes."""
    pdf = _Sheet(sheet)
    pdf.alias_nb_pages()
    pdf.add_page()
    pdf.set_text_color(90)
    pdf.para(f"Feedback · {sheet.batch_name}", size=10)
    pdf.set_text_color(0)
    pdf.para(sheet.title, size=18, bold=True, gap=1)
    if sheet.student_email:
        pdf.set_text_color(90)
        pdf.para(sheet.student_email, size=10)
        pdf.set_text_color(0)
    if not sheet.documents:
        pdf.para("No grade yet.", size=11)
    for document in sheet.documents:
        _document(pdf, document, several=len(sheet.documents) > 1)
    return bytes(pdf.output())


def _document(pdf: _Sheet, document: DocumentFeedback, several: bool) -> None:
    pdf.ln(3)
    if several or document.file_name:
        pdf.set_text_color(90)
        pdf.para(document.file_name, size=10)
        pdf.set_text_color(0)
    percent = (
        f" ({100 * document.score / document.max_score:.0f} %)"
        if document.score is not None and document.max_score
        else ""
    )
    pdf.para(f"Score: {number(document.score)} / {number(document.max_score)}{percent}", size=15, bold=True)
    if document.reviewed:
        pdf.set_text_color(90)
        pdf.para("Reviewed by your teacher.", size=9)
        pdf.set_text_color(0)
    for comment in document.reviewer_comments:
        pdf.para("Your teacher's comment", size=11, bold=True, gap=0.5)
        pdf.para(comment, size=10, indent=4, gap=3)
    for criterion in document.criteria:
        heading = f"{criterion.name}: {number(criterion.score)} / {number(criterion.max_score)}"
        if criterion.level:
            heading += f" · {criterion.level}"
        pdf.para(heading, size=11, bold=True, gap=0.5)
        pdf.para(criterion.feedback, size=10, indent=4)
        for quote, found in criterion.evidence:
            note = "" if found else " (not found in your text)"
            pdf.set_text_color(60)
            pdf.para(f"“{quote}”{note}", size=9, indent=8, gap=0.8)
            pdf.set_text_color(0)
        if criterion.reviewer_comment:
            pdf.para(f"Teacher: {criterion.reviewer_comment}", size=10, indent=4)
        pdf.ln(1.5)
    if document.overall:
        pdf.para("Overall", size=11, bold=True, gap=0.5)
        for text in document.overall:
            pdf.para(text, size=10, indent=4)

"""What an assignment rule looks at in a document, and how it decides.

Pure functions, no database: a `Candidate` is one uploaded document as the
rules see it (its name, size, extension, content type detected from its bytes,
the first characters of its text and its kind), and `conditions_hold` says
whether a rule's conditions all hold for it. batches/rule_models.py stores the
rules; batches/inbox.py runs them over an upload.

The document kind is a small heuristic over the text's headings and length
(`document_kind`):

- a heading is a short line (at most 12 words) that does not end like a
  sentence, or a line starting with a known heading word and a colon
  ("Abstract: …"); Markdown `#` and numbering ("2.1 Methods") are stripped;
- **paper**: two or more of the research paper's headings (abstract,
  methods/methodology, results, literature review/related work,
  references/bibliography), or one of them in a text of 3,000 words or more;
- **report**: one or more of the report's headings (executive summary,
  recommendations, findings, key findings, terms of reference, next steps), at
  least as many as the paper's;
- **essay**: neither, 150 to 6,000 words, and at most five headings (a title,
  perhaps a few section names): continuous prose;
- otherwise none: the rule asking for a kind does not match.
"""

import fnmatch
import io
import re
import zipfile
from dataclasses import dataclass, field
from datetime import date
from pathlib import PurePosixPath

# How much of the text the "contains" condition reads.
CONTENT_WINDOW = 2000
# How much of the text the kind heuristic reads (a very long document is a paper or report by then).
KIND_WINDOW = 200_000
MAX_PATTERN = 200

DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
KINDS = ("essay", "report", "paper")

PAPER_HEADINGS = (
    "abstract",
    "method",
    "methods",
    "methodology",
    "materials and methods",
    "results",
    "literature review",
    "related work",
    "references",
    "bibliography",
    "works cited",
)
REPORT_HEADINGS = (
    "executive summary",
    "recommendations",
    "recommendation",
    "findings",
    "key findings",
    "terms of reference",
    "next steps",
)
PAPER_MIN_WORDS = 3000
ESSAY_WORDS = (150, 6000)
ESSAY_MAX_HEADINGS = 5
HEADING_MAX_WORDS = 12
_NUMBERING = re.compile(r"^(?:#+\s*|\d+(?:\.\d+)*[.)]?\s+|(?:[ivxlc]+|[a-h])[.)]\s+)", re.IGNORECASE)
_LEAD_WORD = re.compile(r"^([a-z][a-z ]{2,40}?)\s*[:—–-]\s+\S", re.IGNORECASE)


# --- the document as the rules see it ---------------------------------------------


@dataclass(frozen=True)
class Candidate:
    name: str
    size: int
    content_type: str
    text: str = field(default="", repr=False)
    kind: str = ""

    @property
    def extension(self) -> str:
        return PurePosixPath(self.name).suffix.lower()

    @property
    def opening(self) -> str:
        """The first CONTENT_WINDOW characters, whitespace folded, lower case: what `contains` reads."""
        return fold(self.text[: CONTENT_WINDOW + 200])[:CONTENT_WINDOW]

    @classmethod
    def of(cls, name: str, data: bytes, text: str) -> "Candidate":
        return cls(
            name=name,
            size=len(data),
            content_type=detect_content_type(name, data),
            text=text,
            kind=document_kind(text),
        )


def fold(text: str) -> str:
    return " ".join(text.split()).casefold()


def detect_content_type(name: str, data: bytes) -> str:
    """The content type the bytes show, whatever the name says.

    PDF by its header, a Word document by the part every .docx holds, another
    ZIP as a ZIP, text when the bytes decode (Markdown when named .md), and
    application/octet-stream otherwise.
    """
    if data.startswith(b"%PDF-"):
        return "application/pdf"
    if data.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                names = set(archive.namelist())
        except (zipfile.BadZipFile, ValueError, OSError, EOFError):
            return "application/octet-stream"
        return DOCX_TYPE if "word/document.xml" in names else "application/zip"
    head = data[:4096]
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return _text_type(name)
    if b"\x00" in head:
        return "application/octet-stream"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut at the window's edge is still text.
        if exc.start < len(head) - 4:
            return "application/octet-stream"
    return _text_type(name)


def _text_type(name: str) -> str:
    return "text/markdown" if PurePosixPath(name).suffix.lower() == ".md" else "text/plain"


def content_type_matches(wanted: str, actual: str) -> bool:
    """ "text/*" matches any text type; otherwise the types must be equal (case aside)."""
    wanted, actual = wanted.strip().lower(), actual.lower()
    if wanted.endswith("/*"):
        return actual.startswith(wanted[:-1])
    return wanted == actual


# --- the kind of document -----------------------------------------------------------


def headings(text: str) -> list[str]:
    """Lines that look like headings, reduced to their words in lower case."""
    found = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        lead = _LEAD_WORD.match(stripped)
        if lead and _known_heading(fold(lead.group(1))):
            found.append(fold(lead.group(1)))
            continue
        words = stripped.split()
        if len(words) > HEADING_MAX_WORDS or stripped[-1] in ".,;?!\"”'’":
            continue
        heading = fold(_NUMBERING.sub("", _NUMBERING.sub("", stripped)).strip(" :#*_"))
        if heading:
            found.append(heading)
    return found


def _known_heading(heading: str) -> bool:
    return heading in PAPER_HEADINGS or heading in REPORT_HEADINGS


def _signals(found: list[str], names: tuple[str, ...]) -> int:
    """How many of the kind's headings the document has (each counted once, by its first word group)."""
    hits = set()
    for heading in found:
        for name in names:
            if heading == name or heading.startswith(name + " "):
                hits.add(_family(name))
    return len(hits)


def _family(name: str) -> str:
    families = {
        "method": "methods",
        "methodology": "methods",
        "materials and methods": "methods",
        "related work": "literature review",
        "bibliography": "references",
        "works cited": "references",
        "recommendation": "recommendations",
        "key findings": "findings",
    }
    return families.get(name, name)


def document_kind(text: str) -> str:
    """essay, report, paper, or "" when the heuristic (see the module's docstring) cannot tell."""
    if not text:
        return ""
    sample = text[:KIND_WINDOW]
    found = headings(sample)
    words = len(sample.split())
    paper, report = _signals(found, PAPER_HEADINGS), _signals(found, REPORT_HEADINGS)
    if report and report >= paper:
        return "report"
    if paper >= 2 or (paper and words >= PAPER_MIN_WORDS):
        return "paper"
    if not paper and ESSAY_WORDS[0] <= words <= ESSAY_WORDS[1] and len(found) <= ESSAY_MAX_HEADINGS:
        return "essay"
    return ""


# --- patterns ------------------------------------------------------------------------


class PatternError(ValueError):
    pass


def compile_pattern(pattern: str) -> re.Pattern:
    """A regular expression from a rule, refused when invalid or prone to runaway backtracking.

    File names are short, but a nested quantifier such as (a+)+ can still take
    minutes on one: such patterns are refused rather than run.
    """
    if len(pattern) > MAX_PATTERN:
        raise PatternError(f"At most {MAX_PATTERN} characters.")
    try:
        compiled = re.compile(pattern, re.IGNORECASE)
    except re.error as exc:
        raise PatternError(f"Not a valid regular expression: {exc}.") from None
    try:
        from re import _parser  # the stdlib's own parser (sre_parse before 3.11)

        tree = _parser.parse(pattern)
    except Exception:  # compiled above: the check is a guard, not a second parser
        return compiled
    if _nested_repeat(tree, _parser, inside=False):
        raise PatternError("Nested repetition such as (a+)+ can run for minutes; simplify the pattern.")
    return compiled


def _nested_repeat(items, parser, inside: bool) -> bool:
    """Whether an unbounded repetition sits inside another one anywhere in the parsed pattern."""
    repeats = {parser.MAX_REPEAT, parser.MIN_REPEAT, getattr(parser, "POSSESSIVE_REPEAT", None)}
    for op, value in items:
        if op in repeats:
            _low, high, sub = value
            unbounded = high == parser.MAXREPEAT or high > 20
            children, nested = [sub], inside or unbounded
            if inside and unbounded:
                return True
        elif op == parser.SUBPATTERN:
            children, nested = [value[-1]], inside
        elif op == parser.BRANCH:
            children, nested = list(value[1]), inside
        elif op in (parser.ASSERT, parser.ASSERT_NOT):
            children, nested = [value[1]], inside
        else:
            continue
        if any(_nested_repeat(child, parser, nested) for child in children):
            return True
    return False


def name_matches(pattern: str, kind: str, name: str) -> bool:
    """A glob (`*_essay.*`, case aside) or a regular expression searched in the name."""
    if kind == "regex":
        return compile_pattern(pattern).search(name) is not None
    return fnmatch.fnmatchcase(name.casefold(), pattern.casefold())


UNGROUPED = "ungrouped"


def group_of(pattern: str, name: str) -> str:
    """The document's group: the pattern's first group (or whole match) in its name, else "ungrouped"."""
    found = compile_pattern(pattern).search(name)
    if found is None:
        return UNGROUPED
    value = found.group(1) if found.re.groups else found.group(0)
    return (value or "").strip()[:80] or UNGROUPED


# --- names of the batches rules create -------------------------------------------------

NAME_PLACEHOLDERS = ("template", "group", "date", "rule")


def check_name_pattern(pattern: str, grouped: bool) -> None:
    try:
        pattern.format(**{key: "x" for key in NAME_PLACEHOLDERS})
    except (KeyError, IndexError, ValueError) as exc:
        names = ", ".join(f"{{{key}}}" for key in NAME_PLACEHOLDERS)
        raise PatternError(f"Unknown placeholder {exc}; use {names}.") from None
    if "{group}" in pattern and not grouped:
        raise PatternError("{group} needs a group pattern: set “group by” too, or leave {group} out.")


def default_name_pattern(grouped: bool) -> str:
    return "{template} – {group} – {date}" if grouped else "{template} – {date}"


def batch_name(pattern: str, *, template: str, group: str, day: date, rule: str) -> str:
    name = pattern.format(template=template, group=group, date=day.isoformat(), rule=rule)
    return " ".join(name.split())[:200] or f"{template} – {day.isoformat()}"[:200]


def clean_extensions(values: list[str]) -> list[str]:
    """ ".PDF", "pdf", " docx " -> [".pdf", ".docx"]."""
    cleaned = []
    for value in values:
        text = str(value).strip().lower()
        if text:
            cleaned.append(text if text.startswith(".") else f".{text}")
    return list(dict.fromkeys(cleaned))

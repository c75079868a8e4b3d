"""Splitting a document into paragraphs, sentences and words, keeping the sentences' own text."""

from __future__ import annotations

import re
from functools import lru_cache

PARAGRAPH_SPLIT_RE = re.compile(r"\n\s*\n")
HEADING_RE = re.compile(r"#{1,6}\s+\S|(?:\d+(?:\.\d+)*\.?|[IVX]+\.)\s+[A-Z]")
# A sentence runs to its closing punctuation (and any quote or bracket after it) or to the end;
# a full stop before a digit or a lower-case letter (3.5, e.g., example.com) does not close it.
SENTENCE_RE = re.compile(r"[^.!?]*(?:\.(?=[\da-z])[^.!?]*)*(?:[.!?]+[\"'”’)\]]*|$)")
# Words whose full stop ends an abbreviation, not a sentence (“et al.”, “e.g.”, “Dr.”, “J.”).
ABBREVIATIONS = frozenset(
    (
        "al.",
        "e.g.",
        "i.e.",
        "mr.",
        "mrs.",
        "ms.",
        "dr.",
        "prof.",
        "vs.",
        "etc.",
        "cf.",
        "fig.",
        "pp.",
        "approx.",
    )
)
# Words, with their apostrophes; `@CAPS1`-style placeholders of anonymised text are one word.
# Letters are any script's (“café” and “naïve” are one word each, not “caf” and “na”, “ve”).
WORD_RE = re.compile(r"[^\W\d_]+(?:['’\-][^\W\d_]+)*|@[A-Z]+\d*")
# Sentences' words are found with ’ read as ', so that “don’t” and “don't” are one word.
# Punctuation with a space before it (“home .”), or none after it before a word (“home,then”,
# “home.Then”). Separate patterns, each opening with a fixed character class, scan fastest.
SPACING_RES = (
    re.compile(r"[.,!?;:](?<= [.,!?;:])(?=\s|$)"),
    re.compile(r"[,;](?=[A-Za-z])"),
    re.compile(r"[.!?](?<=[a-z][.!?])(?=[A-Z][a-z])"),
)


def spacing_errors(text: str) -> int:
    return sum(len(pattern.findall(text)) for pattern in SPACING_RES)


CAPITALS = re.compile(r"[A-Z0-9\"'“‘(\[@*#-]")


class Sentence:
    __slots__ = ("paragraph", "text", "words")

    def __init__(self, text: str, words: list[str], paragraph: int) -> None:
        self.text = text
        self.words = words  # as written, with ’ read as '
        self.paragraph = paragraph

    def __repr__(self) -> str:
        return f"Sentence({self.text!r})"

    @property
    def capitalised(self) -> bool:
        return bool(CAPITALS.match(self.text))

    @property
    def closed(self) -> bool:
        return self.text.rstrip("\"'”’)]").endswith((".", "!", "?", ":"))


def paragraphs_of(text: str) -> tuple[list[str], int]:
    """Prose paragraphs, and how many blocks were headings rather than paragraphs."""
    paragraphs, headings = [], 0
    for block in PARAGRAPH_SPLIT_RE.split(text.strip()):
        block = block.strip()
        if not block:
            continue
        if is_heading(block):
            headings += 1
        else:
            paragraphs.append(block)
    if not paragraphs:
        # Nothing but short lines (a one-line answer without a full stop): they are the text.
        blocks = [block.strip() for block in PARAGRAPH_SPLIT_RE.split(text.strip())]
        return [block for block in blocks if block], 0
    return paragraphs, headings


def abbreviated(piece: str) -> bool:
    if piece[-1] != ".":
        return False
    last = piece.rsplit(None, 1)[-1].lstrip("(\"'“‘[")
    # A capital and a full stop is an initial, except “I.” ending a sentence.
    return last.lower() in ABBREVIATIONS or (len(last) == 2 and last[0].isupper() and last[0] != "I")


def is_heading(block: str) -> bool:
    if "\n" in block:
        return False
    if HEADING_RE.match(block):
        return True
    # A short line without closing punctuation is a title, not a paragraph.
    return len(block.split()) <= 10 and block[-1] not in ".!?:;,\"'”’)"


def sentences_of(paragraphs: list[str]) -> list[Sentence]:
    sentences = []
    for index, paragraph in enumerate(paragraphs):
        # Lines wrapped inside a paragraph are one run of text.
        run = " ".join(paragraph.split()) if "\n" in paragraph else paragraph
        start = None
        for match in SENTENCE_RE.finditer(run):
            start = match.start() if start is None else start
            piece = run[start : match.end()].strip()
            if match.end() < len(run) and abbreviated(piece):
                continue
            start = None
            words = WORD_RE.findall(piece.replace("’", "'") if "’" in piece else piece)
            if words:
                sentences.append(Sentence(piece, words, index))
            elif sentences and piece:
                # Stray punctuation (“ .” after a space) belongs to the sentence before it.
                last = sentences[-1]
                sentences[-1] = Sentence(f"{last.text} {piece}", last.words, last.paragraph)
    return sentences


@lru_cache(maxsize=65536)
def normal(word: str) -> str:
    return word.replace("’", "'").lower()

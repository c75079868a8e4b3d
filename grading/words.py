"""What counts as a word: one definition for the document's page and the graders' feedback.

A word starts with a letter and runs on through letters, apostrophes and
hyphens ("it's", "well-known"); numbers, dashes and punctuation are not words.
"""

import re

WORD_RE = re.compile(r"[A-Za-z][A-Za-z'’\-]*")


def count_words(text: str) -> int:
    """The number of words in the text, as the job page and the builtin grader both report it."""
    return sum(1 for _ in WORD_RE.finditer(text or ""))

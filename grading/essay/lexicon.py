"""Word lists and the English dictionary the essay features look words up in.

The dictionary is pyspellchecker's English word-frequency list (about 160,000 words with their
counts in a large corpus), shipped inside the package: no network, loaded once per process on
first use. It serves both the spelling check (is this a word?) and word rarity (how common is it?).
"""

from __future__ import annotations

import gzip
import json
import math
import threading
import unicodedata
from functools import lru_cache
from importlib import resources


def word_set(words: str) -> frozenset[str]:
    return frozenset(words.split())


STOPWORDS = word_set(
    """
    a an the and or but of to in on for with by as at from into about over under is are was
    were be been being it its this that these those their there them they he she his her we
    our you your i me my not no so than then such can could should would may might must will
    shall do does did has have had how what which who whom whose why when where while all any
    each more most other some very also if just one up out get got go went like only own us him
    it's i'm don't didn't can't won't
    """
)

# Words and phrases that link ideas or events, matched at word boundaries.
CONNECTIVES = (
    "however", "therefore", "moreover", "furthermore", "consequently", "nevertheless", "thus",
    "hence", "similarly", "likewise", "although", "whereas", "meanwhile", "finally", "firstly",
    "secondly", "lastly", "eventually", "afterwards", "later", "suddenly", "instead",
    "otherwise", "besides", "because", "since", "unless", "though", "even though",
    "in addition", "for example", "for instance", "in contrast", "on the other hand",
    "as a result", "in conclusion", "in the end", "after that", "at first", "at last",
    "first of all", "in fact", "as soon as", "so that",
)  # fmt: skip

# Cues of reasoning about evidence rather than reporting it.
REASONING = (
    "because", "therefore", "thus", "hence", "suggests", "suggest", "implies", "imply",
    "indicates", "indicate", "shows that", "show that", "means that", "which means", "if",
    "unless", "whereas", "however", "although", "the reason", "as a result", "consequently",
    "assume", "assumption", "limitation", "limitations", "so that", "in contrast", "implication",
)  # fmt: skip

# British spellings accepted by turning them into the American form the dictionary holds.
BRITISH = (
    ("isation", "ization"), ("ising", "izing"), ("ised", "ized"), ("ise", "ize"),
    ("ises", "izes"), ("yse", "yze"), ("ysed", "yzed"), ("ysing", "yzing"), ("our", "or"),
    ("ours", "ors"), ("oured", "ored"), ("ouring", "oring"), ("tre", "ter"), ("tres", "ters"),
    ("ogue", "og"), ("ogues", "ogs"), ("lled", "led"), ("lling", "ling"), ("ence", "ense"),
    ("ae", "e"),
)  # fmt: skip
SUFFIXES = ("ed", "d", "ing", "s", "es", "ly", "ness", "ment", "er", "ers", "ful")

RARE_ZIPF = 4.0  # rarer than about 10 in a million words

_lock = threading.Lock()
_counts: dict[str, int] | None = None
_total = 1


def counts() -> dict[str, int]:
    """Word -> corpus count, loaded once (about a third of a second) on first use."""
    global _counts, _total
    if _counts is None:
        with _lock:
            if _counts is None:
                source = resources.files("spellchecker") / "resources" / "en.json.gz"
                with source.open("rb") as raw, gzip.open(raw, "rt", encoding="utf-8") as text:
                    loaded = json.load(text)
                _total = max(1, sum(loaded.values()))
                _counts = loaded
    return _counts


@lru_cache(maxsize=200_000)
def known(word: str) -> bool:
    """Whether a lower-cased word is English: in the dictionary, or a regular form of one that is
    (a British spelling, an inflection of a common word, a compound of two common words)."""
    table = counts()
    if word in table:
        return True
    if not word.isascii():
        # The dictionary holds “naive” and “resume” but only some accented forms (“café”).
        folded = unicodedata.normalize("NFKD", word).encode("ascii", "ignore").decode()
        return folded.isalpha() and len(folded) == len(word) and known(folded)
    if "-" in word:
        return all(known(part) for part in word.split("-") if part)
    forms = [word] + [word[: -len(end)] for end in ("s", "es", "d", "ed", "ing", "ly") if word.endswith(end)]
    for form in forms:
        for british, american in BRITISH:
            if form.endswith(british) and form[: -len(british)] + american in table:
                return True
    for suffix in SUFFIXES:
        stem = word[: -len(suffix)]
        if word.endswith(suffix) and len(stem) >= 4 and table.get(stem, 0) >= 1000:
            return True
    # A compound of two common words (“wellbeing”, “smartphone”); short parts would accept “alot”.
    for cut in range(3, len(word) - 2):
        if table.get(word[:cut], 0) >= 20_000 and table.get(word[cut:], 0) >= 20_000:
            return True
    return False


def english_share(bag: dict[str, int]) -> float:
    """The share of a text's words (of three letters or more) that are English: low for a text
    in another language, which the features, made for English, cannot measure."""
    counted = [(word, count) for word, count in bag.items() if len(word) > 2 and word[0] != "@"]
    total = sum(count for _, count in counted)
    if not total:
        return 1.0
    return sum(count for word, count in counted if known(word)) / total


@lru_cache(maxsize=200_000)
def rarity(word: str) -> tuple[bool, bool]:
    """(known, rare): whether the word is English, and if so rarer than RARE_ZIPF."""
    if not known(word):
        return False, False
    return True, zipf(word) < RARE_ZIPF


@lru_cache(maxsize=200_000)
def zipf(word: str) -> float:
    """The word's frequency on the Zipf scale: log10 of its count per billion words (about 1–8)."""
    count = counts().get(word, 0)
    return math.log10(max(count, 1) * 1e9 / _total) if count else 0.0

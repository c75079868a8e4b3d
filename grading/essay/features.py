"""Measurable features of one essay, each with the sentences that show it.

`analyse` reads a document once and returns an `Essay`: counts for the model and the evidence
(sentences, misspelt words) that feedback quotes. Every feature is generic — nothing here knows
a prompt or a score range — and robust to length where it is not meant to measure length.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property, lru_cache

import numpy as np

from grading.essay import lexicon
from grading.essay.text import Sentence, paragraphs_of, sentences_of, spacing_errors

MATTR_WINDOW = 50
LONG_SENTENCE = 35  # words; past this a sentence is usually a run-on in student writing

# Citations in brackets — (Author, 2015), (Author et al., 2015, p. 3), [3], [1, 4–6] — and
# figures (numbers of two or more digits, percentages); “et al” and “according to” are
# counted as words.
CITATION_RE = re.compile(
    r"\([A-Z][A-Za-z'’\-]+(?: et al\.?| and [A-Z][A-Za-z'’\-]+| & [A-Z][A-Za-z'’\-]+)?,? \d{4}[a-z]?"
    r"(?:, p+\. ?\d+)?\)"
    r"|\[\d+(?:[,–-]\s?\d+)*\]"
)
FIGURE_RE = re.compile(r"\d[\d,.]*(?:\s?(?:%|per ?cent))?")


class Phrases:
    """Finds words and phrases in a list of words: word boundaries by construction."""

    def __init__(self, phrases: tuple[str, ...]) -> None:
        self.single = frozenset(p for p in phrases if " " not in p)
        self.multi: dict[str, list[tuple[str, ...]]] = {}
        for phrase in phrases:
            parts = tuple(phrase.split())
            if len(parts) > 1:
                self.multi.setdefault(parts[0], []).append(parts)

    def find(self, words: list[str]) -> list[str]:
        found = []
        single, multi = self.single, self.multi
        for index, word in enumerate(words):
            if word in single:
                found.append(word)
            if word in multi:
                for parts in multi[word]:
                    if tuple(words[index : index + len(parts)]) == parts:
                        found.append(" ".join(parts))
        return found

    def count(self, word_text: str, bag: Counter) -> Counter:
        """The same as Counter(find(words)), faster: single words come from the bag of words,
        phrases from the words joined by spaces (so a space marks each word boundary)."""
        found = Counter()
        for word in self.single.intersection(bag):
            found[word] = bag[word]
        padded = None
        for first, phrases in self.multi.items():
            if first in bag:
                padded = padded or f" {word_text} "
                for parts in phrases:
                    hits = padded.count(" " + " ".join(parts) + " ")
                    if hits:
                        found[" ".join(parts)] += hits
        return found


CONNECTIVES = Phrases(lexicon.CONNECTIVES)
CITATION_CUES = Phrases(("et al", "according to"))
REASONING = Phrases(lexicon.REASONING)

# The model's features, in order; each is a number computed below.
NAMES = (
    "length",  # log of the word count
    "sentences",  # log of the sentence count
    "paragraphs",  # log of the paragraph count
    "word_length",  # mean letters per word
    "mattr",  # moving-average type/token ratio over 50-word windows
    "root_ttr",  # distinct words / sqrt(words): range of vocabulary, grows with development
    "rare_words",  # share of content words rarer than Zipf 4
    "spelling",  # log(1 + misspelt words per 100)
    "sentence_mean",  # mean words per sentence (log)
    "sentence_spread",  # coefficient of variation of sentence lengths
    "long_sentences",  # share of sentences over 35 words
    "capitals",  # share of sentences not opening with a capital
    "lowercase_i",  # “i” written lower case, per 100 words
    "spacing",  # punctuation spacing errors per 100 words
    "commas",  # commas per sentence
    "connectives",  # linking words per 100 words
    "connective_range",  # distinct linking words (log)
    "reasoning",  # reasoning cues per 100 words
    "citations",  # citations and figures (log)
)


@dataclass
class Essay:
    text: str
    sentences: list[Sentence]
    paragraphs: int
    headings: int
    words: list[str]  # lower case
    misspelt: list[tuple[str, int]]  # (word as written, sentence index)
    connectives: Counter
    citations: int
    values: np.ndarray = field(repr=False)
    bag: Counter = field(repr=False)  # word -> count, the bag of words exemplars are compared on
    _stems: set[str] | None = field(default=None, repr=False)

    @cached_property
    def word_text(self) -> str:
        return " ".join(self.words)

    def stems(self) -> set[str]:
        if self._stems is None:
            self._stems = {stem(word) for word in self.bag if word not in lexicon.STOPWORDS}
        return self._stems

    @property
    def word_count(self) -> int:
        return len(self.words)

    def value(self, name: str) -> float:
        return float(self.values[NAMES.index(name)])


def analyse(text: str) -> Essay:
    paragraphs, headings = paragraphs_of(text)
    sentences = sentences_of(paragraphs)
    lowered = [[word.lower() for word in sentence.words] for sentence in sentences]
    words = [word for sentence in lowered for word in sentence]
    bag = Counter(words)
    known = lexicon.known
    unknown = {word for word in bag if len(word) > 2 and word[0] != "@" and not known(word)}
    misspelt: list[tuple[str, int]] = []
    lowercase_i = 0
    for index, sentence in enumerate(sentences):
        lowercase_i += sentence.words.count("i")
        if unknown.isdisjoint(lowered[index]):
            continue
        for position, (written, word) in enumerate(zip(sentence.words, lowered[index], strict=True)):
            # Capitalised words inside a sentence are names; all-capital words are acronyms.
            if word in unknown and (written[0].islower() or (position == 0 and not written.isupper())):
                misspelt.append((written, index))
    word_text = " ".join(words)
    connectives = CONNECTIVES.count(word_text, bag)
    citations = count_citations(text, word_text, bag)
    for word in [word for word in bag if word[0] == "@"]:
        del bag[word]
    reasoning = sum(REASONING.count(word_text, bag).values())
    values = vector(sentences, paragraphs, headings, words, bag, misspelt, lowercase_i, text,
                    connectives, citations, reasoning)  # fmt: skip
    essay = Essay(text, sentences, len(paragraphs), headings, words, misspelt, connectives, citations,
                  values, bag)  # fmt: skip
    essay.__dict__["word_text"] = word_text  # the cached property, already computed
    return essay


def vector(sentences, paragraphs, headings, words, bag, misspelt, lowercase_i, text,
           connectives, citations, reasoning) -> np.ndarray:  # fmt: skip
    count = max(len(words), 1)
    per_hundred = 100 / count
    lengths = np.array([len(sentence.words) for sentence in sentences] or [0], dtype=float)
    mean_length = float(lengths.mean())
    # Counted over distinct words (the bag), each weighted by how often it occurs.
    rarity, stopwords = lexicon.rarity, lexicon.STOPWORDS
    known_content = rare = letters = 0
    for word, times in bag.items():
        letters += len(word) * times
        if word not in stopwords:
            is_known, is_rare = rarity(word)
            if is_known:
                known_content += times
                if is_rare:
                    rare += times
    uncapitalised = sum(1 for sentence in sentences if not sentence.capitalised)
    return np.array(
        [
            math.log(count),
            math.log(max(len(sentences), 1)),
            math.log(max(len(paragraphs), 1) + 0.5 * headings),
            letters / max(sum(bag.values()), 1),
            mattr(words),
            len(set(words)) / math.sqrt(count),
            rare / max(known_content, 1),
            math.log1p(len(misspelt) * per_hundred),
            math.log(max(mean_length, 1.0)),
            float(lengths.std() / mean_length) if mean_length else 0.0,
            float((lengths > LONG_SENTENCE).mean()),
            uncapitalised / max(len(sentences), 1),
            lowercase_i * per_hundred,
            spacing_errors(text) * per_hundred,
            text.count(",") / max(len(sentences), 1),
            sum(connectives.values()) * per_hundred,
            math.log1p(len(connectives)),
            reasoning * per_hundred,
            math.log1p(citations),
        ]
    )


def count_citations(text: str, word_text: str, bag: Counter) -> int:
    bracketed = len(CITATION_RE.findall(text)) if "(" in text or "[" in text else 0
    figures = sum(
        1
        for figure in FIGURE_RE.findall(text)
        if "%" in figure or "cent" in figure or sum(c.isdigit() for c in figure) >= 2
    )
    return bracketed + figures + sum(CITATION_CUES.count(word_text, bag).values())


def mattr(words: list[str], window: int = MATTR_WINDOW) -> float:
    """Moving-average type/token ratio: the mean share of distinct words in every window.

    Counted without sliding: the word at j is new in exactly the windows that start after its
    previous occurrence and no later than j, so summing those counts gives every window's
    distinct words at once.
    """
    count = len(words)
    if count <= window:
        return len(set(words)) / count if count else 0.0
    if count < 400:
        return sliding_mattr(words, window)  # for a short text, faster than numpy's overhead
    numbers: dict[str, int] = {}
    ids = np.array([numbers.setdefault(word, len(numbers)) for word in words])
    # Each occurrence's previous occurrence of the same word: sorted by word, then position.
    order = np.argsort(ids, kind="stable")
    same = ids[order][1:] == ids[order][:-1]
    previous = np.empty(count, dtype=np.int64)
    previous[order] = np.concatenate(([-1], np.where(same, order[:-1], -1)))
    positions = np.arange(count)
    first = np.maximum(np.maximum(previous + 1, positions - window + 1), 0)
    final = np.minimum(positions, count - window)
    distinct = np.maximum(final - first + 1, 0).sum()
    return float(distinct) / ((count - window + 1) * window)


def sliding_mattr(words: list[str], window: int) -> float:
    seen: dict[str, int] = {}
    for word in words[:window]:
        seen[word] = seen.get(word, 0) + 1
    distinct = total = len(seen)
    for index in range(window, len(words)):
        leaving, entering = words[index - window], words[index]
        if seen[leaving] == 1:
            del seen[leaving]
            distinct -= 1
        else:
            seen[leaving] -= 1
        if entering in seen:
            seen[entering] += 1
        else:
            seen[entering] = 1
            distinct += 1
        total += distinct
    return total / ((len(words) - window + 1) * window)


SUFFIXES = (
    "ational", "ization", "isation", "fulness", "ousness", "iveness", "ements", "ations",
    "ments", "ation", "ement", "ities", "ness", "ment", "ings", "ions", "ives", "ing", "ion",
    "ive", "ity", "ies", "ied", "ers", "ous", "ful", "ism", "ist", "ize", "ise", "al", "ed",
    "er", "es", "ly", "s", "e",
)  # fmt: skip


@lru_cache(maxsize=200_000)
def stem(word: str) -> str:
    """A crude suffix-stripping stem, enough to match “argue”, “argued” and “arguments”."""
    word = word.removesuffix("'s")
    for suffix in SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word

"""An offline grader that scores a document against a rubric from measurable text features.

It needs no network and no key, so a fresh install can grade; and it is deterministic, so the
same document and rubric always get the same grade. Each criterion is matched to an aspect of
writing (argument, evidence, structure, language or content) by the words in its key, name and
description; the aspect decides which features count and how much. The features are computed
once per document and shared by all criteria, which keeps a 1,500-word essay in the
low milliseconds.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache

from grading.providers.base import (
    CriterionGrade,
    Grade,
    GradeRequest,
    Provider,
    ProviderLimits,
    Tokenizer,
    criteria_of,
    require_text,
)
from grading.words import WORD_RE, count_words  # one definition of a word, shared with the job page


def word_set(words: str) -> frozenset[str]:
    return frozenset(words.split())


# Words and sentence ends in one pass over lower-cased text: tokenising twice was the hot spot.
TOKEN_RE = re.compile(r"[a-z][a-z'’\-]*|[.!?]+(?=[\s\"')\]’”]|$)")
PARAGRAPH_SPLIT_RE = re.compile(r"\n\s*\n")
HEADING_RE = re.compile(r"#{1,6}\s+\S|(?:\d+(?:\.\d+)*\.?|[IVX]+\.)\s+[A-Z]")
CITATION_RE = re.compile(
    r"\([A-Z][A-Za-z'’\-]+(?: et al\.?| and [A-Z][A-Za-z'’\-]+| & [A-Z][A-Za-z'’\-]+)?,? \d{4}[a-z]?"
    r"(?:, p+\. ?\d+)?\)"
    r"|\[\d+(?:[,–-]\s?\d+)*\]"
)
CITATION_PHRASES = ("et al", "according to", "%", "per cent", "percent")
INTRO_RE = re.compile(
    r"\b(?:this (?:essay|paper|report|study|article)|i (?:will )?argue|we (?:will )?argue"
    r"|i contend|i propose|in this (?:essay|paper|report|study)|the purpose of|aims? to"
    r"|will (?:argue|examine|discuss|explore|show|analy[sz]e))\b"
)
CONCLUSION_RE = re.compile(
    r"\b(?:in conclusion|to conclude|in summary|to summari[sz]e|overall|ultimately"
    r"|in sum|taken together|this (?:essay|paper|report) has)\b"
)
TRANSITION_WORDS = word_set(
    """
    however therefore moreover furthermore consequently nevertheless thus hence similarly
    likewise although whereas first second third finally meanwhile
    """
)
TRANSITION_PHRASES = (
    "in addition", "for example", "for instance", "in contrast", "on the other hand",
    "as a result",
)  # fmt: skip
TRIPLE_LETTER_RE = re.compile(r"([a-z])\1\1")
VOWEL_RE = re.compile(r"[aeiouy]")

DEFAULT_EXPECTED_WORDS = (300, 5000)
TTR_WINDOW = 100

# Frequent misspellings in student writing; one hit is a certain error, unlike an unknown word.
MISSPELLINGS = word_set(
    """
    absense acheive accomodate accross adress agressive alot apparant arguement assasination
    basicly begining beleive belive bizzare buisness calender catagory cemetary collegue comming
    commitee completly concious copywrite critisism definately definatly dependant desparate
    develope dilema dissapear dissapoint embarass enviroment existance experiance familar finaly
    foriegn freind futher goverment gaurd happend harrass heighth heirarchy hygene idenity
    ignorence imediately independant indispensible innoculate intresting irrelevent knowlege
    liason libary lisence maintainance managment millenium mischievious neccessary necesary
    negociate noticable occassion occured occurence occuring ocurred ommision oppurtunity
    orginal paralell parliment particularily pavillion peice perseverence persue posession
    potatos preceeding prefered presense priviledge probaly proffesional pronounciation
    publically realy reccomend recieve recieved recomend refered referance relevent religous
    remeber repitition resistence responsability rythm seperate sieze similiar sincerly speach
    strenght succesful supercede suprise tendancy therefor thier threshhold tomatos tommorow
    tounge truely twelth tyrany untill usefull vaccum vegatable wich wierd whereever writting
    teh taht becuase beacuse doesnt dont cant wont isnt arent didnt shouldnt wouldnt couldnt
    """
)

STOPWORDS = word_set(
    """
    a an the and or but of to in on for with by as at from into about over under is are was
    were be been being it its this that these those their there them they he she his her we
    our you your i me my not no so than then such can could should would may might must will
    shall do does did has have had how what which who whom whose why when where while all any
    each more most other some very also use uses used using well clear clearly strong quality
    """
)

SUFFIXES = (
    "ational", "ization", "isation", "fulness", "ousness", "iveness", "ements", "ations",
    "ments", "ation", "ement", "ities", "ness", "ment", "ings", "ions", "ives", "ing", "ion",
    "ive", "ity", "ies", "ied", "ers", "ous", "ful", "ism", "ist", "ize", "ise", "al", "ed",
    "er", "es", "ly", "s", "e",
)  # fmt: skip

# Which writing aspect a criterion is about, recognised from words in its key, name and
# description; the first aspect with a match wins, so the more specific aspects come first.
ASPECT_CUES = (
    ("language", ("grammar", "mechanic", "spelling", "style", "language", "clarity",
                  "expression", "prose", "writing", "tone", "readab", "punctuation")),
    ("structure", ("structure", "organi", "coheren", "flow", "format", "layout", "paragraph")),
    ("evidence", ("evidence", "source", "citation", "research", "support", "reference",
                  "data", "method", "analysis", "literature")),
    ("argument", ("thesis", "argument", "claim", "position", "reasoning", "critical")),
)  # fmt: skip

# Weights of each feature in an aspect's quality; each row sums to 1.
ASPECT_WEIGHTS = {
    "argument": {"coverage": 0.45, "intro": 0.2, "transitions": 0.15, "length": 0.2},
    "evidence": {"coverage": 0.4, "citations": 0.35, "length": 0.25},
    "structure": {"paragraphs": 0.35, "intro": 0.15, "conclusion": 0.15, "transitions": 0.15,
                  "coverage": 0.1, "length": 0.1},
    "language": {"spelling": 0.35, "variety": 0.25, "vocabulary": 0.25, "length": 0.15},
    "content": {"coverage": 0.55, "vocabulary": 0.15, "length": 0.3},
}  # fmt: skip


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """A crude suffix-stripping stem, enough to match “argue”, “argued” and “arguments”."""
    word = word.replace("’", "'").removesuffix("'s")
    for suffix in SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


@dataclass(frozen=True)
class KeyTerm:
    label: str
    stems: tuple[str, ...]
    # Multi-word terms match as a phrase whose words may carry any suffix.
    phrase: re.Pattern | None


@dataclass
class Features:
    word_count: int
    stems: frozenset[str]
    word_text: str
    paragraphs: int
    headings: int
    has_intro: bool
    has_conclusion: bool
    transitions: int
    citations: int
    sentences: int
    mean_sentence: float
    stdev_sentence: float
    ttr: float
    misspelled: list[str]


def measure(text: str) -> Features:
    lowered = text.lower()
    words, lengths = tokenise(lowered)
    counts = Counter(words)
    word_text = " ".join(words)
    paragraphs, headings = split_blocks(text)
    mean, stdev = mean_and_stdev(lengths)
    return Features(
        # The same count as the document's page shows (grading.words), whatever tokenise() keeps.
        word_count=count_words(text),
        stems=frozenset(stem(word) for word in counts),
        word_text=word_text,
        paragraphs=len(paragraphs),
        headings=headings,
        has_intro=bool(paragraphs) and bool(INTRO_RE.search(" ".join(paragraphs[:2]).lower())),
        has_conclusion=bool(paragraphs) and bool(CONCLUSION_RE.search(paragraphs[-1].lower())),
        transitions=count_transitions(counts, word_text),
        citations=count_citations(text, lowered),
        sentences=len(lengths),
        mean_sentence=mean,
        stdev_sentence=stdev,
        ttr=segmental_ttr(words),
        misspelled=misspellings(words, counts),
    )


def tokenise(lowered: str) -> tuple[list[str], list[int]]:
    """The words of the text, and the number of words in each sentence."""
    words: list[str] = []
    lengths: list[int] = []
    start = 0
    for token in TOKEN_RE.findall(lowered):
        if token[0] in ".!?":
            if len(words) > start:
                lengths.append(len(words) - start)
            start = len(words)
        else:
            words.append(token)
    if len(words) > start:
        lengths.append(len(words) - start)
    return words, lengths


def split_blocks(text: str) -> tuple[list[str], int]:
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
    return paragraphs, headings


def is_heading(block: str) -> bool:
    if "\n" in block:
        return False
    if HEADING_RE.match(block):
        return True
    # A short line without closing punctuation is a title, not a paragraph.
    return len(block.split()) <= 10 and block[-1] not in ".!?:;,\"'”’)"


def count_transitions(counts: Counter, word_text: str) -> int:
    single = sum(counts[word] for word in TRANSITION_WORDS if word in counts)
    return single + sum(word_text.count(phrase) for phrase in TRANSITION_PHRASES)


def count_citations(text: str, lowered: str) -> int:
    return len(CITATION_RE.findall(text)) + sum(lowered.count(cue) for cue in CITATION_PHRASES)


def mean_and_stdev(values: list[int]) -> tuple[float, float]:
    if not values:
        return 0.0, 0.0
    mean = sum(values) / len(values)
    variance = sum((value - mean) ** 2 for value in values) / len(values)
    return mean, math.sqrt(variance)


def segmental_ttr(words: list[str]) -> float:
    """Mean type-token ratio over fixed windows, because plain TTR falls as texts grow longer."""
    if len(words) < TTR_WINDOW:
        return len(set(words)) / len(words) if words else 0.0
    windows = range(0, len(words) - TTR_WINDOW + 1, TTR_WINDOW)
    ratios = [len(set(words[start : start + TTR_WINDOW])) / TTR_WINDOW for start in windows]
    return sum(ratios) / len(ratios)


def misspellings(words: list[str], counts: Counter) -> list[str]:
    wrong = {word for word in counts if word in MISSPELLINGS or looks_misspelled(word)}
    return [word for word in words if word in wrong] if wrong else []


@lru_cache(maxsize=65536)
def looks_misspelled(word: str) -> bool:
    # Three identical letters or a long word with no vowel occur in no English word we expect.
    if len(word) < 4 or "-" in word or "'" in word or "’" in word:
        return False
    return bool(TRIPLE_LETTER_RE.search(word)) or not VOWEL_RE.search(word)


@lru_cache(maxsize=1024)
def key_terms(keywords: tuple[str, ...], fallback: str) -> tuple[KeyTerm, ...]:
    """The criterion's terms as stems; without keywords, the content words of its name."""
    labels = keywords or tuple(word for word in WORD_RE.findall(fallback.lower()) if word not in STOPWORDS)
    terms: dict[tuple[str, ...], KeyTerm] = {}
    for label in labels:
        stems = tuple(stem(word) for word in WORD_RE.findall(label.lower()))
        if stems and stems not in terms:
            terms[stems] = KeyTerm(label.strip(), stems, phrase_pattern(stems))
    return tuple(terms.values())


def phrase_pattern(stems: tuple[str, ...]) -> re.Pattern | None:
    if len(stems) == 1:
        return None
    return re.compile(r"\b" + r"[a-z'’\-]*\s".join(re.escape(part) for part in stems))


def term_found(term: KeyTerm, features: Features) -> bool:
    if term.phrase is None:
        return term.stems[0] in features.stems
    return term.phrase.search(features.word_text) is not None


@lru_cache(maxsize=1024)
def aspect_of(key: str, name: str, description: str) -> str:
    label = f"{key} {name}".lower()
    for haystack in (label, description.lower()):
        for aspect, cues in ASPECT_CUES:
            if any(cue in haystack for cue in cues):
                return aspect
    return "content"


def expected_words(settings: dict) -> tuple[int, int]:
    expected = settings.get("expected_words") or {}
    low = int(expected.get("min") or DEFAULT_EXPECTED_WORDS[0])
    high = int(expected.get("max") or max(low, DEFAULT_EXPECTED_WORDS[1]))
    return low, max(low, high)


def clip(value: float) -> float:
    return max(0.0, min(1.0, value))


class Scorer:
    """Turns one document's features into 0..1 scores and the sentences that explain them."""

    def __init__(self, features: Features, words: tuple[int, int]) -> None:
        self.features = features
        self.low, self.high = words

    def length(self) -> tuple[float, str]:
        count = self.features.word_count
        if count < self.low:
            score = (count / self.low) ** 1.5
        elif count > self.high:
            score = clip(1 - (count - self.high) / self.high) * 0.5 + 0.5
        else:
            score = 1.0
        return score, f"{count:,} words against an expected {self.low:,}–{self.high:,}"

    def coverage(self, terms: tuple[KeyTerm, ...]) -> tuple[float, str]:
        if not terms:
            return 0.5, "no key terms to look for"
        found = [term.label for term in terms if term_found(term, self.features)]
        missing = [term.label for term in terms if term.label not in found]
        # Three quarters of the terms is full coverage: no essay needs every listed word.
        score = clip(len(found) / (0.75 * len(terms)))
        note = f"{len(found)} of {len(terms)} key terms found"
        if found:
            note += ": " + ", ".join(found)
        if missing:
            note += "; missing: " + ", ".join(missing[:6])
        return score, note

    def paragraphs(self) -> tuple[float, str]:
        count, headings = self.features.paragraphs, self.features.headings
        score = clip((count - 1) / 4) * 0.8 + clip(headings / 3) * 0.2
        if count >= 5 and not headings:
            score = max(score, 0.9)
        note = f"{count} paragraph{'s' if count != 1 else ''}"
        if headings:
            note += f" and {headings} heading{'s' if headings != 1 else ''}"
        return score, note

    def intro(self) -> tuple[float, str]:
        if self.features.has_intro:
            return 1.0, "the opening states its purpose"
        return 0.2, "no opening statement of purpose or thesis"

    def conclusion(self) -> tuple[float, str]:
        if self.features.has_conclusion:
            return 1.0, "the last paragraph concludes"
        return 0.2, "no clear conclusion in the last paragraph"

    def transitions(self) -> tuple[float, str]:
        count = self.features.transitions
        per_hundred = 100 * count / max(self.features.word_count, 1)
        return clip(per_hundred / 1.2), f"{count} linking words such as “however” or “therefore”"

    def citations(self) -> tuple[float, str]:
        count = self.features.citations
        per_five_hundred = 500 * count / max(self.features.word_count, 1)
        score = clip(per_five_hundred / 3) * clip(count / 3)
        return score, f"{count} citation{'s' if count != 1 else ''} or figures cited"

    def vocabulary(self) -> tuple[float, str]:
        ttr = self.features.ttr
        return clip((ttr - 0.40) / 0.30), f"vocabulary range {ttr:.2f} (type-token ratio)"

    def variety(self) -> tuple[float, str]:
        mean, stdev = self.features.mean_sentence, self.features.stdev_sentence
        spread = clip(stdev / 8)
        # Very short or very long average sentences read poorly whatever their spread.
        balance = clip(1 - max(0.0, 12 - mean, mean - 30) / 12)
        note = f"{self.features.sentences} sentences averaging {mean:.0f} words (spread {stdev:.1f})"
        return spread * 0.6 + balance * 0.4, note

    def spelling(self) -> tuple[float, str]:
        errors = self.features.misspelled
        per_hundred = 100 * len(errors) / max(self.features.word_count, 1)
        score = clip(1 - per_hundred / 3)
        if not errors:
            return score, "no spelling errors spotted"
        shown = ", ".join(dict.fromkeys(errors[:5]))
        return (
            score,
            f"{len(errors)} likely spelling error{'s' if len(errors) != 1 else ''} ({shown})",
        )


def grade_criterion(criterion: dict, scorer: Scorer) -> CriterionGrade:
    key = str(criterion.get("key") or criterion.get("name") or "criterion")
    name = str(criterion.get("name") or key)
    description = str(criterion.get("description") or "")
    points = float(criterion.get("points") or 0)
    terms = key_terms(tuple(criterion.get("keywords") or ()), f"{name} {description}")
    aspect = aspect_of(key, name, description)
    quality, notes = weigh(aspect, scorer, terms)
    score = round(quality * points * 2) / 2
    return CriterionGrade(
        key=key,
        name=name,
        score=score,
        max_score=points,
        feedback=criterion_feedback(criterion, score, points, notes),
    )


def weigh(aspect: str, scorer: Scorer, terms: tuple[KeyTerm, ...]) -> tuple[float, list[str]]:
    quality, notes = 0.0, []
    for feature, weight in ASPECT_WEIGHTS[aspect].items():
        value, note = scorer.coverage(terms) if feature == "coverage" else getattr(scorer, feature)()
        quality += weight * value
        notes.append(note)
    return clip(quality), notes


def nearest_level(levels: list[dict], score: float) -> dict | None:
    scored = [level for level in levels if isinstance(level, dict) and "points" in level]
    if not scored:
        return None
    # On a tie the higher level wins, giving the writer the benefit of the doubt.
    return min(
        scored,
        key=lambda level: (
            abs(float(level["points"]) - score),
            -float(level["points"]),
        ),
    )


def criterion_feedback(criterion: dict, score: float, points: float, notes: list[str]) -> str:
    level = nearest_level(criterion.get("levels") or [], score)
    heading = f"{format_points(score)} of {format_points(points)}"
    if level is not None:
        heading = f"{level.get('label', 'Level')} ({heading})"
    evidence = "; ".join(notes)
    return f"{heading}. {evidence[0].upper()}{evidence[1:]}."


def format_points(value: float) -> str:
    return f"{value:g}"


def overall_feedback(criteria: list[CriterionGrade], features: Features) -> str:
    score = sum(item.score for item in criteria)
    total = sum(item.max_score for item in criteria)
    percent = 100 * score / total if total else 0
    ranked = sorted(criteria, key=lambda item: item.score / item.max_score if item.max_score else 0)
    plural = "s" if features.paragraphs != 1 else ""
    summary = (
        f"Scored {format_points(score)} of {format_points(total)} ({percent:.0f}%) on "
        f"{features.word_count:,} words in {features.paragraphs} paragraph{plural}."
    )
    parts = [summary]
    if len(ranked) > 1:
        parts.append(f"Strongest: {ranked[-1].name}. Needs most work: {ranked[0].name}.")
    return " ".join(parts)


class BuiltinProvider(Provider):
    name = "builtin"
    # Runs in the worker's own process: no limits to keep, nothing to pay, no prompt sent.
    offline = True
    needs_key = False
    TOKENIZER = Tokenizer("chars/4", "characters / 4, as the builtin grader itself reports tokens")

    @classmethod
    def problem(cls, model: str) -> str | None:
        if model and not model.startswith("builtin"):
            return f"The builtin grader has one model, builtin-v1; “{model}” belongs to another provider."
        return None

    @classmethod
    def limits(cls) -> ProviderLimits:
        return ProviderLimits(source="none: the builtin grader runs in the worker's own process")

    @classmethod
    def is_priced(cls, model: str) -> bool:
        return True  # free, and known to be

    @classmethod
    def price_method(cls, model: str) -> str:
        return "the builtin grader runs offline and costs nothing"

    @classmethod
    def tokenizer(cls, model: str) -> Tokenizer:
        return cls.TOKENIZER

    def grade(self, request: GradeRequest) -> Grade:
        require_text(request)
        criteria = criteria_of(request.rubric)
        features = measure(request.text)
        scorer = Scorer(features, expected_words(request.settings or {}))
        graded = [grade_criterion(criterion, scorer) for criterion in criteria]
        feedback = overall_feedback(graded, features)
        output_chars = len(feedback) + sum(len(item.feedback) for item in graded)
        return Grade(
            score=sum(item.score for item in graded),
            max_score=sum(item.max_score for item in graded),
            criteria=graded,
            feedback=feedback,
            input_tokens=max(1, len(request.text) // 4),
            output_tokens=output_chars // 4,
            raw={"features": features_summary(features)},
            model=request.model or "builtin",
        )


def features_summary(features: Features) -> dict:
    return {
        "word_count": features.word_count,
        "paragraphs": features.paragraphs,
        "headings": features.headings,
        "sentences": features.sentences,
        "mean_sentence_words": round(features.mean_sentence, 1),
        "sentence_length_stdev": round(features.stdev_sentence, 1),
        "type_token_ratio": round(features.ttr, 3),
        "transitions": features.transitions,
        "citations": features.citations,
        "has_intro": features.has_intro,
        "has_conclusion": features.has_conclusion,
        "likely_misspellings": len(features.misspelled),
    }

"""A rubric read once for grading: each criterion's aspect, scale and terms, and the scales of the
features. Built once per rubric and settings, and shared (read only) by every grade."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from grading.calibration import Scale
from grading.essay import lexicon, prior
from grading.essay.features import Essay, stem
from grading.essay.text import WORD_RE

# The prior weight of similarity to the exemplars: n / (n + SIMILARITY_HALF) for n exemplars,
# as the similarity to a few exemplars is mostly chance and to many a fair guide (half weight at
# 50, about the weight of the length features).
SIMILARITY_HALF = 50
FULL_COVERAGE = 0.75  # three quarters of a criterion's key terms is full coverage
TASK_WORDS = lexicon.word_set(
    "write essay story paper report following either one way someone know time person means "
    "describe explain discuss using use"
)


@dataclass(frozen=True)
class KeyTerm:
    label: str
    stems: tuple[str, ...]
    # Multi-word terms match as a phrase whose words may carry any suffix.
    phrase: re.Pattern | None

    def found(self, stems: set[str], word_text: str) -> bool:
        if self.phrase is None:
            return self.stems[0] in stems
        return self.phrase.search(word_text) is not None


def key_terms(labels: list[str]) -> tuple[KeyTerm, ...]:
    terms: dict[tuple[str, ...], KeyTerm] = {}
    for label in labels:
        stems = tuple(stem(word.lower()) for word in WORD_RE.findall(label))
        if stems and stems not in terms:
            phrase = None
            if len(stems) > 1:
                phrase = re.compile(r"\b" + r"[a-z'’\-]*\s".join(re.escape(part) for part in stems))
            terms[stems] = KeyTerm(label.strip(), stems, phrase)
    return tuple(terms.values())


def content_words(text: str) -> list[str]:
    words = (word.lower() for word in WORD_RE.findall(text))
    return [
        word for word in words if word not in lexicon.STOPWORDS and word not in TASK_WORDS and len(word) > 2
    ]


@dataclass(frozen=True)
class CriterionPlan:
    key: str
    name: str
    points: float
    levels: tuple[dict, ...]
    scale: Scale
    aspects: tuple[str, ...]  # what the criterion is about, the first named first
    weights: np.ndarray
    terms: tuple[KeyTerm, ...]

    def level(self, score: float) -> dict | None:
        """The level whose points are nearest the score (the higher on a tie)."""
        if not self.levels:
            return None
        return min(
            self.levels, key=lambda level: (abs(float(level["points"]) - score), -float(level["points"]))
        )


@dataclass(frozen=True)
class Plan:
    criteria: tuple[CriterionPlan, ...]
    centre: np.ndarray
    spread: np.ndarray
    expected: tuple[int, int] | None
    topic: tuple[KeyTerm, ...]  # the instructions' content words and all criteria's keywords

    @cached_property
    def max_total(self) -> float:
        return sum(criterion.points for criterion in self.criteria)

    @cached_property
    def min_total(self) -> float:
        """The lowest total the rubric allows: the sum of its criteria's lowest levels."""
        return sum(criterion.scale.low for criterion in self.criteria)

    @cached_property
    def total_weights(self) -> np.ndarray:
        """What the whole rubric asks for: its criteria's aspect weights, weighted by points."""
        weights = sum(c.points * c.weights for c in self.criteria) / max(self.max_total, 1e-9)
        return weights

    def learning_weights(self, weights: np.ndarray, exemplars: int) -> np.ndarray:
        """The prior of a model fitted on exemplars, which also leans on similarity to them."""
        weights = weights.copy()
        weights[prior.COLUMNS.index("exemplars")] = exemplars / (exemplars + SIMILARITY_HALF)
        return weights

    def row(self, essay: Essay) -> np.ndarray:
        """The essay's standardised columns (the exemplar column 0 until a model fills it)."""
        values = np.empty(len(prior.COLUMNS))
        values[: len(essay.values)] = essay.values
        length = prior.COLUMNS.index("length")
        if self.expected and essay.word_count > self.expected[1]:
            # Past the expected maximum, each extra word counts against the essay, not for it.
            values[length] = 2 * math.log(self.expected[1]) - values[length]
        values[prior.COLUMNS.index("topic")] = coverage(self.topic, essay)
        values[prior.COLUMNS.index("exemplars")] = 0.0
        return (values - self.centre) / self.spread

    def quality(self, criterion: CriterionPlan, row: np.ndarray, essay: Essay) -> float:
        """The prior quality index of one criterion, on its own key terms where it has them."""
        if criterion.terms:
            topic = prior.COLUMNS.index("topic")
            row = row.copy()
            row[topic] = (coverage(criterion.terms, essay) - self.centre[topic]) / self.spread[topic]
        return float(row @ criterion.weights)


def coverage(terms: tuple[KeyTerm, ...], essay: Essay) -> float:
    if not terms:
        return prior.SCALES["topic"][0]
    stems, text = essay.stems(), essay.word_text
    found = sum(1 for term in terms if term.found(stems, text))
    return min(1.0, found / (FULL_COVERAGE * len(terms)))


def plan(rubric: dict, settings: dict) -> Plan:
    criteria = tuple(criterion_plan(criterion) for criterion in rubric.get("criteria") or ())
    expected = expected_words(settings)
    centre, spread = prior.scales(expected)
    labels = content_words(str(settings.get("instructions") or ""))
    for criterion in rubric.get("criteria") or ():
        labels.extend(str(keyword) for keyword in criterion.get("keywords") or ())
    return Plan(criteria, centre, spread, expected, key_terms(list(dict.fromkeys(labels))))


def criterion_plan(criterion: dict) -> CriterionPlan:
    key = str(criterion.get("key") or criterion.get("name") or "criterion")
    name = str(criterion.get("name") or key)
    description = str(criterion.get("description") or "")
    points = float(criterion.get("points") or 0)
    levels = tuple(
        level for level in criterion.get("levels") or () if isinstance(level, dict) and "points" in level
    )
    descriptors = " ".join(str(level.get("descriptor") or "") for level in levels)
    aspects = prior.aspects_of(key, name, description, descriptors)
    keywords = [str(keyword) for keyword in criterion.get("keywords") or ()]
    # Without keywords, the name of a content criterion says what to look for (“Budget
    # forecast”); the name of a writing quality (“Ideas”, “Style”) does not.
    terms = key_terms(keywords or ([] if aspects else content_words(name)))
    aspects = aspects or (prior.FALLBACK_ASPECT,)
    scale = scale_of(points, levels)
    return CriterionPlan(key, name, points, levels, scale, aspects, prior.weights(aspects), terms)


def scale_of(points: float, levels: tuple[dict, ...]) -> Scale:
    if levels:
        return Scale.levels([min(float(level["points"]), points) for level in levels])
    # Without levels: whole points, or half points on a small criterion.
    return Scale.steps(0.0, points, 0.5 if points <= 10 else 1.0)


def expected_words(settings: dict) -> tuple[int, int] | None:
    expected = settings.get("expected_words") or {}
    if not expected:
        return None
    low = int(expected.get("min") or 0) or None
    high = int(expected.get("max") or 0) or None
    if low is None and high is None:
        return None
    low = low or max(1, (high or 0) // 3)
    return low, max(low, high or low * 3)

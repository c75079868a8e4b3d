"""What the grader believes before it sees a teacher's grades: feature scales and aspect weights.

Each feature is put on a common scale, z = (value − centre) / spread, with centres and spreads
typical of school and college prose. Each aspect of writing a rubric may name (ideas, organisation,
style, conventions, evidence, analysis, argument) weighs those z-scores by how much the feature
says about that aspect. The weights are hand-set from what writing assessment generally finds
(development and vocabulary range carry most, error rates count against), not fitted to any essay
set; a teacher's exemplars move them (see `model`).
"""

from __future__ import annotations

import math

import numpy as np

from grading.essay.features import NAMES

# The columns the model sees: the text features, then two that depend on the request.
COLUMNS = (*NAMES, "topic", "exemplars")

DEFAULT_WORDS = 250  # a typical length of a developed piece of school writing, without settings

# (centre, spread) of each column; "length" is centred on the expected length instead.
SCALES = {
    "length": (math.log(DEFAULT_WORDS), 0.6),
    "sentences": (math.log(15), 0.7),
    "paragraphs": (math.log(4), 0.7),
    "word_length": (4.2, 0.3),
    "mattr": (0.72, 0.06),
    "root_ttr": (7.0, 1.5),
    "rare_words": (0.15, 0.08),
    "spelling": (math.log1p(1.5), 0.6),
    "sentence_mean": (math.log(17), 0.35),
    "sentence_spread": (0.5, 0.2),
    "long_sentences": (0.05, 0.15),
    "capitals": (0.05, 0.15),
    "lowercase_i": (0.0, 0.5),
    "spacing": (0.1, 0.5),
    "commas": (0.8, 0.5),
    "connectives": (1.5, 1.0),
    "connective_range": (math.log1p(3), 0.6),
    "reasoning": (1.0, 1.0),
    "citations": (math.log1p(1), 1.0),
    "topic": (0.5, 0.3),
    "exemplars": (0.0, 1.0),
}

# Per aspect, the weight of each column's z-score in its quality (columns not named weigh 0).
ASPECT_WEIGHTS = {
    "ideas": {"length": 0.35, "root_ttr": 0.25, "sentences": 0.15, "topic": 0.10, "mattr": 0.05,
              "connective_range": 0.05, "rare_words": 0.05},
    "organisation": {"length": 0.25, "sentences": 0.15, "connective_range": 0.20,
                     "paragraphs": 0.15, "root_ttr": 0.10, "long_sentences": -0.10,
                     "connectives": 0.05},
    "style": {"root_ttr": 0.25, "mattr": 0.15, "length": 0.15, "rare_words": 0.10,
              "word_length": 0.10, "sentence_spread": 0.10, "long_sentences": -0.05,
              "commas": 0.05, "sentences": 0.05},
    "conventions": {"spelling": -0.30, "length": 0.20, "capitals": -0.10, "lowercase_i": -0.10,
                    "spacing": -0.10, "long_sentences": -0.10, "commas": 0.05, "sentences": 0.05},
    "evidence": {"citations": 0.35, "length": 0.25, "topic": 0.10, "reasoning": 0.10,
                 "root_ttr": 0.15, "sentences": 0.05},
    "analysis": {"reasoning": 0.30, "length": 0.25, "root_ttr": 0.15, "connective_range": 0.15,
                 "topic": 0.10, "word_length": 0.05},
    "argument": {"topic": 0.20, "reasoning": 0.15, "connective_range": 0.15, "length": 0.30,
                 "root_ttr": 0.15, "sentences": 0.05},
}  # fmt: skip

# Which aspect a criterion is about, recognised from words in its key, name and description
# (then its level descriptors); the first aspect with a match wins, so the narrower come first.
ASPECT_CUES = (
    ("conventions", ("convention", "mechanic", "spelling", "grammar", "punctuation",
                     "capitali", "usage", "proofread")),
    ("evidence", ("evidence", "citation", "source", "reference", "literature", "data",
                  "support", "research", "scholarship", "method", "result")),
    ("analysis", ("analys", "analyz", "critical", "interpret", "insight", "evaluat",
                  "discussion", "limitation", "reasoning")),
    ("argument", ("thesis", "argument", "claim", "position", "recommend", "question",
                  "summary")),
    ("organisation", ("organi", "structure", "coheren", "flow", "sequence", "transition",
                      "paragraph", "layout", "format", "presentation")),
    ("style", ("style", "language", "vocabulary", "word choice", "voice", "tone", "clarity",
               "fluency", "sentence", "expression", "prose", "readab")),
    ("ideas", ("idea", "content", "development", "topic", "focus", "detail", "task",
               "engagement", "understanding", "knowledge", "story")),
)  # fmt: skip
FALLBACK_ASPECT = "ideas"
# A criterion named as the whole of the writing (“Overall”, “Holistic score”, “Writing quality”)
# is every general aspect at once, not content to look for on the words of its name.
HOLISTIC_CUES = ("overall", "holistic", "general", "global", "total", "score", "grade", "mark",
                 "quality", "writing", "impression", "essay", "band", "whole", "composition")  # fmt: skip
HOLISTIC_ASPECTS = ("ideas", "organisation", "style", "conventions")

# How the zero-exemplar quality index becomes a share of the points: a logistic curve on which
# an essay of typical features earns about 60 %.
PRIOR_OFFSET = 0.4
PRIOR_SLOPE = 2.5


def aspects_of(key: str, name: str, description: str = "", descriptors: str = "") -> tuple[str, ...]:
    """The aspects a criterion's words name: all those its key and name name (“Style, grammar and
    mechanics” is style and conventions), else those of its description, else of its level
    descriptors, else, for a criterion named as the whole of the writing (“Overall”), the general
    aspects. Empty when none is named: a content criterion, such as “Budget forecast”, which the
    caller grades as FALLBACK_ASPECT on its own terms."""
    label = f"{key.replace('_', ' ')} {name}".lower()
    for haystack in (label, description.lower(), descriptors.lower()):
        found = tuple(aspect for aspect, cues in ASPECT_CUES if any(cue in haystack for cue in cues))
        if found:
            return found
    if any(cue in label.split() for cue in HOLISTIC_CUES):
        return HOLISTIC_ASPECTS
    return ()


def weights(aspects: tuple[str, ...]) -> np.ndarray:
    """The mean of the aspects' weights over the columns."""
    rows = [[ASPECT_WEIGHTS[aspect].get(column, 0.0) for column in COLUMNS] for aspect in aspects]
    return np.array(rows).mean(axis=0)


def scales(expected_words: tuple[int, int] | None) -> tuple[np.ndarray, np.ndarray]:
    centre = np.array([SCALES[column][0] for column in COLUMNS])
    spread = np.array([SCALES[column][1] for column in COLUMNS])
    if expected_words:
        centre[COLUMNS.index("length")] = math.log(max(expected_words[0], 1))
    return centre, spread


def share(quality: float) -> float:
    """The zero-exemplar share of a criterion's points for a quality index."""
    return 1 / (1 + math.exp(-(PRIOR_OFFSET + PRIOR_SLOPE * quality)))

"""Content similarity to the teacher's exemplars: what the essays graded high have in common.

Each essay is a tf-idf vector over the word stems of the exemplars; an essay's exemplar score is
the mean of the exemplars' scores weighted by how similar each is to it (kernel regression), in
standard units of the exemplars' scores. On an exemplar itself it is computed without that
exemplar, so the model never learns from a feature that has seen the answer.
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np

SHARPNESS = 3  # similarities are raised to this power: the nearest exemplars count most


class Similarity:
    def __init__(self, stems: list[Counter], scores: np.ndarray) -> None:
        frequency: Counter = Counter()
        for counts in stems:
            frequency.update(counts.keys())
        count = len(stems)
        # Stems in a single exemplar say nothing shared; those in nearly all say nothing distinct.
        self.index = {stem: i for i, stem in enumerate(s for s, df in frequency.items() if df >= 2)}
        self.idf = np.array(
            [math.log((count + 1) / (frequency[stem] + 0.5)) for stem in self.index], dtype=float
        )
        self.matrix = np.vstack([self.vector(counts) for counts in stems]) if stems else np.zeros((0, 0))
        self.scores = scores
        self.mean = float(scores.mean()) if len(scores) else 0.0
        self.spread = float(scores.std()) or 1.0

    def vector(self, counts: Counter) -> np.ndarray:
        vector = np.zeros(len(self.index))
        index = self.index
        shared = [(index[word], count) for word, count in counts.items() if word in index]
        if shared:
            positions, times = zip(*shared, strict=True)
            vector[list(positions)] = 1 + np.log(times)
        vector *= self.idf
        norm = np.linalg.norm(vector)
        return vector / norm if norm else vector

    def score(self, counts: Counter) -> float:
        if not len(self.index):
            return 0.0
        return self._predict(self.matrix @ self.vector(counts), self.scores)

    def own_scores(self) -> np.ndarray:
        """Each exemplar's score from the other exemplars only."""
        if not len(self.index):
            return np.zeros(len(self.scores))
        similarities = self.matrix @ self.matrix.T
        others = ~np.eye(len(self.scores), dtype=bool)
        return np.array(
            [
                self._predict(similarities[i][others[i]], self.scores[others[i]])
                for i in range(len(self.scores))
            ]
        )

    def _predict(self, similarities: np.ndarray, scores: np.ndarray) -> float:
        weights = np.clip(similarities, 0, None) ** SHARPNESS
        total = weights.sum()
        if total <= 1e-12:
            return 0.0
        return (float(weights @ scores) / total - self.mean) / self.spread

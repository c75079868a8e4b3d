"""Calibration: a monotone map from a grader's raw score to a teacher's scale, learnt from pairs.

A teacher grades a few exemplars; the grader (any provider) grades the same documents. From those
(raw, teacher) pairs `fit_map` learns a monotone map — isotonic (pool-adjacent-violators) or
linear — which `calibrate` applies to new raw scores before rounding them to the rubric's levels
or steps. With fewer than MIN_PAIRS pairs there is no map: too little to learn a scale from.

`cross_validated_qwk` says how well calibrated grades would agree with the teacher, scoring each
pair only with a map fitted without it (leave-one-out or k-fold): agreement measured on the very
pairs a map was fitted on would flatter it.

Pure Python and numpy, no Django: the same functions serve the builtin grader, the benchmark and
anything that compares a provider with its teacher.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

MIN_PAIRS = 5
Pair = tuple[float, float]  # (raw, teacher)


@dataclass(frozen=True)
class ScoreMap:
    """A non-decreasing map: linear interpolation between knots, flat beyond the ends."""

    knots: tuple[float, ...]  # raw scores, increasing
    values: tuple[float, ...]  # teacher scores, non-decreasing
    kind: str

    def __call__(self, raw: float) -> float:
        knots, values = self.knots, self.values
        if len(knots) == 1 or raw <= knots[0]:
            return values[0]
        if raw >= knots[-1]:
            return values[-1]
        right = bisect.bisect_right(knots, raw)
        left = right - 1
        share = (raw - knots[left]) / (knots[right] - knots[left])
        return values[left] + share * (values[right] - values[left])


def fit_isotonic(pairs: Sequence[Pair]) -> ScoreMap | None:
    """The least-squares non-decreasing fit of teacher on raw (pool adjacent violators).

    Knots sit at the mean raw score of each pooled block, so between blocks the map rises
    linearly instead of jumping.
    """
    if len(pairs) < MIN_PAIRS:
        return None
    # Equal raw scores form one block from the start: one raw score, one teacher score.
    blocks: list[list[float]] = []  # [raw sum, teacher sum, count]
    for raw, teacher in sorted(pairs):
        if blocks and blocks[-1][0] / blocks[-1][2] == raw:
            blocks[-1][0] += raw
            blocks[-1][1] += teacher
            blocks[-1][2] += 1
        else:
            blocks.append([raw, teacher, 1])
        while len(blocks) > 1 and blocks[-2][1] / blocks[-2][2] >= blocks[-1][1] / blocks[-1][2]:
            last = blocks.pop()
            for index in range(3):
                blocks[-1][index] += last[index]
    knots = tuple(block[0] / block[2] for block in blocks)
    values = tuple(block[1] / block[2] for block in blocks)
    return ScoreMap(knots, values, "isotonic")


def fit_linear(pairs: Sequence[Pair]) -> ScoreMap | None:
    """The increasing line that gives calibrated scores the teacher's mean and spread.

    Not least squares: a least-squares line shrinks toward the mean by the correlation, and
    rounding those shrunken scores would use fewer of the teacher's levels than the teacher
    does, which agreement (QWK) punishes. None when raw and teacher do not rise together.
    """
    if len(pairs) < MIN_PAIRS:
        return None
    raw = np.array([pair[0] for pair in pairs], dtype=float)
    teacher = np.array([pair[1] for pair in pairs], dtype=float)
    if raw.std() == 0 or teacher.std() == 0 or np.corrcoef(raw, teacher)[0, 1] <= 0:
        return None
    return match_spread(pairs)


def match_spread(pairs: Sequence[Pair]) -> ScoreMap | None:
    """The increasing line that gives the raw scores the teacher's mean and spread, whether or
    not these pairs rise together: for a raw score whose direction is trusted on other grounds
    (the grader's prior), where a handful of pairs is too few to confirm it. None when either
    side does not vary."""
    raw = np.array([pair[0] for pair in pairs], dtype=float)
    teacher = np.array([pair[1] for pair in pairs], dtype=float)
    if raw.std() == 0 or teacher.std() == 0:
        return None
    slope = teacher.std() / raw.std()
    low, high = float(raw.min()), float(raw.max())
    at = lambda x: float(teacher.mean() + slope * (x - raw.mean()))  # noqa: E731
    # Two knots, and the line extended beyond them: a new essay may score outside the exemplars.
    return LinearMap((low, high), (at(low), at(high)), "linear", slope)


def why_no_map(pairs: Sequence[Pair]) -> str:
    """Why the default map cannot be fitted on these pairs, in words for the teacher."""
    if len(pairs) < MIN_PAIRS:
        return f"too few exemplars (at least {MIN_PAIRS})"
    raw = np.array([pair[0] for pair in pairs], dtype=float)
    teacher = np.array([pair[1] for pair in pairs], dtype=float)
    if teacher.std() == 0:
        return f"every exemplar has your score {teacher[0]:g}: nothing to learn a spread from"
    if raw.std() == 0:
        return f"the grader gave every exemplar {raw[0]:g}"
    return "the grader's scores do not rise with yours"


@dataclass(frozen=True)
class LinearMap(ScoreMap):
    slope: float = 1.0

    def __call__(self, raw: float) -> float:
        return self.values[0] + self.slope * (raw - self.knots[0])


def identity_map(pairs: Sequence[Pair]) -> ScoreMap:
    """The map that keeps the raw score: for a grader already on the teacher's scale."""
    raws = [pair[0] for pair in pairs] or [0.0]
    low, high = float(min(raws)), float(max(raws))
    return LinearMap((low, high), (low, high), "identity", 1.0)


FITTERS: dict[str, Callable[[Sequence[Pair]], ScoreMap | None]] = {
    "linear": fit_linear,
    "isotonic": fit_isotonic,
}
DEFAULT_METHOD = "linear"


def fit_map(pairs: Sequence[Pair], method: str = DEFAULT_METHOD) -> ScoreMap | None:
    """A map from raw to teacher scores, or None with fewer than MIN_PAIRS pairs."""
    return FITTERS[method](pairs)


@dataclass(frozen=True)
class Scale:
    """The scores a teacher can give: a rubric's level points, or steps between bounds."""

    points: tuple[float, ...]

    @classmethod
    def steps(cls, low: float, high: float, step: float = 1.0) -> Scale:
        count = int(round((high - low) / step))
        return cls(tuple(low + i * step for i in range(count + 1)))

    @classmethod
    def levels(cls, points: Sequence[float]) -> Scale:
        return cls(tuple(sorted(set(float(point) for point in points))))

    @property
    def low(self) -> float:
        return self.points[0]

    @property
    def high(self) -> float:
        return self.points[-1]

    def nearest(self, value: float) -> float:
        """The nearest point of the scale (the higher on a tie), which also clamps."""
        index = bisect.bisect_left(self.points, value)
        if index == 0:
            return self.points[0]
        if index == len(self.points):
            return self.points[-1]
        below, above = self.points[index - 1], self.points[index]
        return above if above - value <= value - below else below


@dataclass(frozen=True)
class Choice:
    """The map to apply to a provider's scores, and the agreement with the teacher that chose it."""

    map: ScoreMap | None  # the fitted map, the identity, or None (nothing could be fitted)
    fitted: ScoreMap | None  # the map fitted on the pairs, also when the identity won
    before: float | None  # the provider's own scores against the teacher's
    after: float | None  # the fitted map's, cross-validated

    @property
    def kept(self) -> bool:
        """The provider's scores agree with the teacher at least as well as the fitted map."""
        return self.map is not None and self.map.kind == "identity"

    @property
    def agreement(self) -> float | None:
        """The agreement of what is applied: the provider's own when kept, else the map's."""
        return self.before if self.kept else self.after


def choose_map(pairs: Sequence[Pair], scale: Scale, method: str = DEFAULT_METHOD) -> Choice:
    """The fitted map, or the identity when the provider's own scores agree better.

    A grader that already learnt the teacher's scale from the exemplars (the offline grader
    does) can agree with them better as it is than through a map fitted on a few of them. The
    comparison is fair: the provider's scores need no fit, and the fitted map's agreement is
    cross-validated. The identity still rounds scores onto the scale, like any map.
    """
    fitted = fit_map(pairs, method)
    before = scale_qwk([raw for raw, _ in pairs], [t for _, t in pairs], scale) if pairs else None
    after = cross_validated_qwk(pairs, scale, method) if fitted is not None else None
    chosen = fitted
    if fitted is not None and before is not None and after is not None and after <= before:
        chosen = identity_map(pairs)
    return Choice(chosen, fitted, before, after)


def calibrate(raw: float, score_map: ScoreMap | None, scale: Scale) -> float:
    """A raw score on the teacher's scale: mapped when there is a map, rounded and clamped."""
    return scale.nearest(score_map(raw) if score_map is not None else raw)


def held_out_predictions(
    pairs: Sequence[Pair],
    fitter: Callable[[Sequence[Pair]], ScoreMap | None],
    folds: int | None = None,
) -> list[float | None]:
    """Each pair's calibrated raw score from a map fitted without it: leave-one-out, or `folds`
    interleaved folds. None where the remaining pairs were too few for a map."""
    count = len(pairs)
    groups = [[i] for i in range(count)] if not folds or folds >= count else [
        list(range(start, count, folds)) for start in range(folds)
    ]  # fmt: skip
    predictions: list[float | None] = [None] * count
    for held in groups:
        left_out = set(held)
        score_map = fitter([pair for i, pair in enumerate(pairs) if i not in left_out])
        if score_map is not None:
            for i in held:
                predictions[i] = score_map(pairs[i][0])
    return predictions


def cross_validated_qwk(
    pairs: Sequence[Pair], scale: Scale, method: str = DEFAULT_METHOD, folds: int | None = None
) -> float | None:
    """QWK of calibrated against teacher scores, each pair scored by a map fitted without it.

    None when too few pairs leave a map, or the figure is undefined.
    """
    predictions = held_out_predictions(pairs, FITTERS[method], folds)
    scored = [
        (scale.nearest(p), scale.nearest(pair[1]))
        for p, pair in zip(predictions, pairs, strict=True)
        if p is not None
    ]
    if not scored:
        return None
    return scale_qwk([a for a, _ in scored], [b for _, b in scored], scale)


def scale_qwk(first: Sequence[float], second: Sequence[float], scale: Scale) -> float | None:
    """QWK with the scale's points as the categories (both sides rounded onto the scale).

    The same figure as `quadratic_weighted_kappa` over the table of counts, computed from the
    category indexes' means and variances instead: a total of 0–1,000 in half points has 2,001
    categories, whose table would hold four million cells.
    """
    index = {point: i for i, point in enumerate(scale.points)}
    a = np.array([index[scale.nearest(value)] for value in first], dtype=float)
    b = np.array([index[scale.nearest(value)] for value in second], dtype=float)
    if len(scale.points) < 2 or not len(a):
        return None
    observed = float(np.mean((a - b) ** 2))
    expected = float(a.var() + b.var() + (a.mean() - b.mean()) ** 2)
    if expected == 0:
        return None
    return 1 - observed / expected


def criterion_maps(
    rows: Sequence[tuple[dict[str, float], dict[str, float]]], method: str = DEFAULT_METHOD
) -> dict[str, ScoreMap]:
    """Per criterion, a map from raw to teacher criterion scores, where there are enough pairs.

    rows are (raw criterion scores, teacher criterion scores) per document; a criterion either
    side lacks for a document is left out for that document.
    """
    pairs: dict[str, list[Pair]] = {}
    for raw, teacher in rows:
        for key, value in teacher.items():
            if key in raw:
                pairs.setdefault(key, []).append((float(raw[key]), float(value)))
    maps = {key: fit_map(found, method) for key, found in pairs.items()}
    return {key: score_map for key, score_map in maps.items() if score_map is not None}

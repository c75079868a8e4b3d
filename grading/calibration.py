"""Calibration: a monotone map from a provider's scores onto the teacher's own scale.

A teacher's exemplars give pairs (the provider's score, the teacher's score) for
the same documents. The map keeps the provider's order (a better essay never
ends lower) and learns where on the teacher's scale each score belongs: a
harsher or kinder teacher, a compressed or stretched range.

Two fits are offered: isotonic (pool-adjacent-violators, a step function that
follows any monotone shape) and linear (least squares, clamped to the scale).
With few exemplars the straight line generalises better; `fit_map` picks by
leave-one-out error, never by error on the exemplars it was fitted on.

How well the map will do on new documents is estimated by cross-validation:
each exemplar is scored by a map fitted on the others (leave-one-out), and the
agreement with the teacher is the quadratic weighted kappa on the teacher's
integer scale. A figure computed on the exemplars the map was fitted on would
flatter it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from grading.agreement import quadratic_weighted_kappa

# Below this many exemplars no map is fitted: two or three points say more about
# the points than about the teacher.
MIN_EXEMPLARS = 5
METHODS = ("linear", "isotonic")


@dataclass(frozen=True)
class ScoreMap:
    """A fitted monotone map, stored as JSON on the batch and applied to every result."""

    method: str
    # linear: [slope, intercept]; isotonic: breakpoints [[raw, calibrated], ...] ascending in raw.
    params: list
    low: float
    high: float

    def __call__(self, raw: float) -> float:
        if self.method == "linear":
            slope, intercept = self.params
            value = slope * raw + intercept
        else:
            value = _interpolate(self.params, raw)
        return min(self.high, max(self.low, value))

    def as_dict(self) -> dict:
        return {"method": self.method, "params": self.params, "low": self.low, "high": self.high}

    @classmethod
    def from_dict(cls, data: dict) -> ScoreMap:
        return cls(
            data["method"],
            [list(p) if isinstance(p, list) else p for p in data["params"]],
            data["low"],
            data["high"],
        )


def fit_linear(raw: Sequence[float], teacher: Sequence[float], low: float, high: float) -> ScoreMap | None:
    """Least squares, forced non-decreasing (a negative slope would reverse the provider's order)."""
    n = len(raw)
    if n < 2:
        return None
    mean_x, mean_y = sum(raw) / n, sum(teacher) / n
    sxx = sum((x - mean_x) ** 2 for x in raw)
    sxy = sum((x - mean_x) * (y - mean_y) for x, y in zip(raw, teacher, strict=True))
    slope = max(sxy / sxx, 0.0) if sxx > 0 else 0.0
    return ScoreMap("linear", [slope, mean_y - slope * mean_x], low, high)


def fit_isotonic(raw: Sequence[float], teacher: Sequence[float], low: float, high: float) -> ScoreMap | None:
    """Pool adjacent violators: the non-decreasing step function closest to the pairs in least squares."""
    if len(raw) < 2:
        return None
    blocks: list[list[float]] = []  # [sum_y, count, min_x, max_x]
    for x, y in sorted(zip(raw, teacher, strict=True)):
        if blocks and blocks[-1][3] == x:
            blocks[-1][0] += y
            blocks[-1][1] += 1
        else:
            blocks.append([y, 1, x, x])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] > blocks[-1][0] / blocks[-1][1]:
            last = blocks.pop()
            blocks[-1][0] += last[0]
            blocks[-1][1] += last[1]
            blocks[-1][3] = last[3]
    points = []
    for total, count, first, last in blocks:
        points.append([first, total / count])
        if last != first:
            points.append([last, total / count])
    return ScoreMap("isotonic", points, low, high)


FITTERS: dict[str, Callable[..., ScoreMap | None]] = {"linear": fit_linear, "isotonic": fit_isotonic}


@dataclass(frozen=True)
class Calibration:
    """A map and what cross-validation says of it."""

    score_map: ScoreMap | None
    exemplars: int
    qwk_before: float | None  # the provider's scores, rounded, against the teacher's
    qwk_after: float | None  # leave-one-out calibrated scores against the teacher's
    loo_predictions: list[float] = field(default_factory=list, repr=False)

    def as_dict(self) -> dict:
        return {
            "method": self.score_map.method if self.score_map else None,
            "map": self.score_map.as_dict() if self.score_map else None,
            "exemplars": self.exemplars,
            "qwk_before": _round(self.qwk_before),
            "qwk_after": _round(self.qwk_after),
        }


def fit_map(
    raw: Sequence[float],
    teacher: Sequence[float],
    low: float,
    high: float,
    step: float = 1.0,
    method: str | None = None,
) -> Calibration:
    """The best map for these pairs, judged by leave-one-out error; none with too few pairs."""
    raw, teacher = list(raw), list(teacher)
    before = qwk([snap(x, low, high, step) for x in raw], teacher, step)
    if len(raw) < MIN_EXEMPLARS:
        return Calibration(None, len(raw), before, None)
    best: tuple[float, str, list[float]] | None = None
    for name in [method] if method else METHODS:
        predictions = loo_predictions(raw, teacher, low, high, name)
        error = sum((p - t) ** 2 for p, t in zip(predictions, teacher, strict=True))
        if best is None or error < best[0]:
            best = (error, name, predictions)
    _, name, predictions = best
    after = qwk([snap(p, low, high, step) for p in predictions], teacher, step)
    return Calibration(FITTERS[name](raw, teacher, low, high), len(raw), before, after, predictions)


def loo_predictions(
    raw: Sequence[float], teacher: Sequence[float], low: float, high: float, method: str
) -> list[float]:
    """Each pair's calibrated score from a map fitted without it."""
    predictions = []
    for i in range(len(raw)):
        others_x = [x for j, x in enumerate(raw) if j != i]
        others_y = [y for j, y in enumerate(teacher) if j != i]
        score_map = FITTERS[method](others_x, others_y, low, high)
        predictions.append(score_map(raw[i]) if score_map else raw[i])
    return predictions


def snap(value: float, low: float, high: float, step: float = 1.0, levels: Sequence[float] = ()) -> float:
    """The nearest score the rubric allows: one of its levels, else a multiple of `step`, within range."""
    value = min(high, max(low, value))
    if levels:
        return min(levels, key=lambda level: (abs(level - value), -level))
    snapped = low + round((value - low) / step) * step if step > 0 else value
    return round(min(high, max(low, snapped)), 6)


def qwk(a: Sequence[float], b: Sequence[float], step: float = 1.0) -> float | None:
    """Quadratic weighted kappa of two graders on one scale of steps (the teacher's integer scale)."""
    if len(a) != len(b) or not a:
        return None
    ia = [round(x / step) for x in a]
    ib = [round(x / step) for x in b]
    low, high = min(ia + ib), max(ia + ib)
    size = high - low + 1
    if size < 2:
        return None
    matrix = [[0.0] * size for _ in range(size)]
    for x, y in zip(ia, ib, strict=True):
        matrix[x - low][y - low] += 1
    return quadratic_weighted_kappa(matrix)


def _interpolate(points: list, x: float) -> float:
    if x <= points[0][0]:
        return points[0][1]
    if x >= points[-1][0]:
        return points[-1][1]
    for (x0, y0), (x1, y1) in zip(points, points[1:], strict=False):
        if x0 <= x <= x1:
            return y0 if x1 == x0 else y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    return points[-1][1]


def _round(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else round(value, 4)

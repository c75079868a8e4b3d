"""Criterion scores on the rubric's levels, adding up to the total the model predicts."""

from __future__ import annotations

import math
from collections.abc import Sequence

from grading.calibration import Scale


def neighbours(scale: Scale, value: float) -> tuple[float | None, float | None]:
    points = scale.points
    index = points.index(value)
    below = points[index - 1] if index > 0 else None
    above = points[index + 1] if index + 1 < len(points) else None
    return below, above


def allocate(wanted: Sequence[float], scales: Sequence[Scale], total: float) -> list[float]:
    """Each criterion's nearest level, then single-level moves that bring the sum nearer `total`.

    Rounding each criterion on its own can leave the sum a few points off the predicted total
    (four criteria each rounded up by half a level); each move shifts the criterion whose wanted
    score lies nearest the next level, so the scores stay as close to the wanted ones as they can.
    """
    scores = [scale.nearest(value) for scale, value in zip(scales, wanted, strict=True)]
    for _ in range(sum(len(scale.points) for scale in scales)):
        gap = total - sum(scores)
        best: tuple[float, int, float] | None = None
        for index, (scale, value) in enumerate(zip(scales, wanted, strict=True)):
            below, above = neighbours(scale, scores[index])
            step = above if gap > 0 else below
            if step is None:
                continue
            new_gap = abs(gap - (step - scores[index]))
            if new_gap >= abs(gap) - 1e-9:
                continue
            cost = abs(step - value) - abs(scores[index] - value)
            if best is None or cost < best[0]:
                best = (cost, index, step)
        if best is None:
            break
        scores[best[1]] = best[2]
    return scores


def shares(qualities: Sequence[float], points: Sequence[float], total: float, slope: float) -> list[float]:
    """Criterion scores that add up to `total`, each criterion's share of its points rising
    with its quality index: points_c · logistic(θ + slope · quality_c), θ solved for by Newton's
    method (the sum rises with θ, so each step is safe once bounded)."""
    maximum = sum(points)
    if maximum <= 0:
        return [0.0 for _ in points]
    total = min(max(total, 1e-9 * maximum), maximum * (1 - 1e-9))
    offsets = [slope * quality for quality in qualities]
    low, high, theta = -80.0, 80.0, 0.0
    for _ in range(60):
        logistic = [1 / (1 + math.exp(-min(80.0, max(-80.0, theta + offset)))) for offset in offsets]
        gap = sum(p * value for p, value in zip(points, logistic, strict=True)) - total
        if abs(gap) < 1e-6 * maximum:
            break
        if gap > 0:
            high = theta
        else:
            low = theta
        slope_here = sum(p * value * (1 - value) for p, value in zip(points, logistic, strict=True))
        step = theta - gap / slope_here if slope_here > 1e-12 else (low + high) / 2
        theta = step if low < step < high else (low + high) / 2
    return [
        p / (1 + math.exp(-min(80.0, max(-80.0, theta + offset))))
        for p, offset in zip(points, offsets, strict=True)
    ]

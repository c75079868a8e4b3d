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


def shares(
    qualities: Sequence[float],
    points: Sequence[float],
    total: float,
    slope: float,
    lows: Sequence[float] | None = None,
) -> list[float]:
    """Criterion scores that add up to `total`, each criterion's share of its range rising with
    its quality index: low_c + (points_c − low_c) · logistic(θ + slope · quality_c), θ solved for
    by Newton's method (the sum rises with θ, so each step is safe once bounded). `lows` are the
    criteria's lowest levels (0 when not given): a 1–6 band starts at 1."""
    lows = list(lows) if lows is not None else [0.0 for _ in points]
    ranges = [high - low for low, high in zip(lows, points, strict=True)]
    floor, span = sum(lows), sum(ranges)
    if span <= 0:
        return [float(low) for low in lows]
    total = min(max(total - floor, 1e-9 * span), span * (1 - 1e-9))
    offsets = [slope * quality for quality in qualities]
    low, high, theta = -80.0, 80.0, 0.0
    for _ in range(60):
        logistic = [1 / (1 + math.exp(-min(80.0, max(-80.0, theta + offset)))) for offset in offsets]
        gap = sum(r * value for r, value in zip(ranges, logistic, strict=True)) - total
        if abs(gap) < 1e-6 * span:
            break
        if gap > 0:
            high = theta
        else:
            low = theta
        slope_here = sum(r * value * (1 - value) for r, value in zip(ranges, logistic, strict=True))
        step = theta - gap / slope_here if slope_here > 1e-12 else (low + high) / 2
        theta = step if low < step < high else (low + high) / 2
    return [
        floor_c + r / (1 + math.exp(-min(80.0, max(-80.0, theta + offset))))
        for floor_c, r, offset in zip(lows, ranges, offsets, strict=True)
    ]

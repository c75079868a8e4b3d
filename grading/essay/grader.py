"""Grading one essay against a rubric: the prior alone, or a model fitted on the teacher's exemplars.

- No (or too few) exemplars: each criterion's score is a logistic function of its aspect's prior
  quality index; the total is their sum.
- Exemplars with totals: a ridge model (see `model`) predicts the total on the teacher's scale,
  and a monotone map fitted on the exemplars' cross-validated predictions (`grading.calibration`)
  gives it the teacher's mean and spread; the criteria share that total by their quality indexes.
  When those predictions do not rise with the teacher's scores, the prior's quality index is
  given the teacher's mean and spread instead.
- Exemplars with criterion scores: the same per criterion, for each criterion with enough of them.

Criterion scores always land on the criterion's levels (or whole or half points), adding up as
near the predicted total as the levels allow.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from grading import calibration
from grading.essay import model, prior
from grading.essay.cache import OnceCache
from grading.essay.features import Essay, analyse
from grading.essay.levels import allocate, shares
from grading.essay.plan import Plan, plan

EXEMPLAR_COLUMN = prior.COLUMNS.index("exemplars")
MIN_EXEMPLARS = calibration.MIN_PAIRS
# The calibration map fitted on cross-validated predictions: "linear" (the teacher's mean and
# spread) agrees better with raters than "isotonic" on bench/agreement.py (--method).
CALIBRATION = calibration.DEFAULT_METHOD


@dataclass(frozen=True)
class Learnt:
    """A model of one score (the total or a criterion) and its calibration map."""

    model: model.Model
    score_map: calibration.ScoreMap | None
    low: float
    high: float
    from_prior: bool = False  # the exemplars taught nothing but the teacher's mean and spread

    def predict(self, row: np.ndarray, essay: Essay) -> float:
        raw = self.model.predict(row, essay.bag)
        value = self.score_map(raw) if self.score_map is not None else raw
        return min(max(value, self.low), self.high)


@dataclass(frozen=True)
class Fit:
    exemplars: int = 0
    total: Learnt | None = None
    criteria: dict[str, Learnt] = field(default_factory=dict)
    # Exemplars that all share one score show the teacher's level but no scale: the prior's
    # grades are moved by `offset` to that level, and nothing else is learnt.
    offset: float | None = None


@dataclass(frozen=True)
class Scored:
    essay: Essay
    scores: list[float]  # per criterion, on its scale
    qualities: list[float]  # per criterion, the prior quality index
    predicted: float  # the total before rounding to levels
    fit: Fit


def learn(
    z: np.ndarray, essays: list[Essay], y: np.ndarray, weights: np.ndarray, low: float, high: float
) -> Learnt:
    bags = [essay.bag for essay in essays]
    fitted = model.fit(z, bags, y, weights, EXEMPLAR_COLUMN)
    held_out = model.cross_validated(z, bags, y, weights, EXEMPLAR_COLUMN)
    score_map = calibration.fit_map(list(zip(held_out.tolist(), y.tolist(), strict=True)), CALIBRATION)
    if score_map is None:
        # A criterion all of whose exemplars share one score has no spread to match: the ridge
        # then predicts that score.
        return prior_on_scale(z, y, weights, low, high) or Learnt(fitted, None, low, high)
    return Learnt(fitted, score_map, low, high)


def prior_on_scale(
    z: np.ndarray, y: np.ndarray, weights: np.ndarray, low: float, high: float
) -> Learnt | None:
    """The prior's quality index, given the exemplars' mean and spread.

    For exemplars whose held-out predictions do not rise with the teacher's scores (a few noisy
    ones): nothing learnt from them can be trusted, and the ridge's own output, a least-squares
    fit, would shrink every grade toward their mean — ten exemplars could leave a whole batch
    within a point of 8 of 12. The prior's direction is trusted instead, on the teacher's scale.
    """
    weights = weights.copy()
    weights[EXEMPLAR_COLUMN] = 0.0
    prior_only = model.Model(model.Ridge(0.0, weights, float("inf")), None, EXEMPLAR_COLUMN)
    score_map = calibration.match_spread(list(zip((z @ weights).tolist(), y.tolist(), strict=True)))
    return Learnt(prior_only, score_map, low, high, from_prior=True) if score_map is not None else None


def fit_exemplars(plan_: Plan, exemplars: Sequence) -> Fit:
    if len(exemplars) < MIN_EXEMPLARS:
        return Fit(len(exemplars))
    essays = [analyse(exemplar.text) for exemplar in exemplars]
    y = np.array([float(exemplar.score) for exemplar in exemplars])
    if np.ptp(y) == 0:
        priors = [score(plan_, essay, Fit()).predicted for essay in essays]
        return Fit(len(exemplars), offset=float(y[0] - np.mean(priors)))
    z = np.vstack([plan_.row(essay) for essay in essays])
    weights = plan_.learning_weights(plan_.total_weights, len(y))
    total = learn(z, essays, y, weights, plan_.min_total, plan_.max_total)
    criteria = {}
    for criterion in plan_.criteria:
        graded = [i for i, exemplar in enumerate(exemplars) if criterion.key in (exemplar.criteria or {})]
        if len(graded) >= MIN_EXEMPLARS:
            scores = np.array([float(exemplars[i].criteria[criterion.key]) for i in graded])
            weights = plan_.learning_weights(criterion.weights, len(graded))
            criteria[criterion.key] = learn(
                z[graded], [essays[i] for i in graded], scores, weights, criterion.scale.low, criterion.points
            )
    return Fit(len(exemplars), total, criteria)


def score(plan_: Plan, essay: Essay, fit: Fit) -> Scored:
    row = plan_.row(essay)
    qualities = [plan_.quality(criterion, row, essay) for criterion in plan_.criteria]
    points = [criterion.points for criterion in plan_.criteria]
    scales = [criterion.scale for criterion in plan_.criteria]
    lows = [scale.low for scale in scales]
    if fit.total is None:
        # A share of each criterion's range, from its lowest level: a 1–6 band starts at 1.
        wanted = [low + (p - low) * prior.share(q) for low, p, q in zip(lows, points, qualities, strict=True)]
        predicted = sum(wanted)
        if fit.offset is not None:
            predicted = min(max(predicted + fit.offset, plan_.min_total), plan_.max_total)
            wanted = shares(qualities, points, predicted, prior.PRIOR_SLOPE, lows)
        return Scored(essay, allocate(wanted, scales, predicted), qualities, predicted, fit)
    # Criteria with a model of their own keep its score; the others share what remains of the
    # predicted total by their quality indexes.
    own = {key: learnt.predict(row, essay) for key, learnt in fit.criteria.items()}
    fixed = {c.key: c.scale.nearest(own[c.key]) for c in plan_.criteria if c.key in own}
    rest = [i for i, c in enumerate(plan_.criteria) if c.key not in fixed]
    predicted = fit.total.predict(row, essay) if rest else sum(own.values())
    scores = [fixed.get(c.key, 0.0) for c in plan_.criteria]
    if rest:
        remaining = predicted - sum(fixed.values())
        wanted = shares(
            [qualities[i] for i in rest],
            [points[i] for i in rest],
            remaining,
            prior.PRIOR_SLOPE,
            [lows[i] for i in rest],
        )
        for i, value in zip(rest, allocate(wanted, [scales[i] for i in rest], remaining), strict=True):
            scores[i] = value
    return Scored(essay, scores, qualities, predicted, fit)


# Rubrics and exemplar sets recur across a batch's documents: each is read or fitted once,
# keyed by a digest of its content. The same objects usually come back (the runner shares one
# rubric per settings snapshot), so digests are remembered by identity too.
_plans: OnceCache[Plan] = OnceCache(256)
_fits: OnceCache[Fit] = OnceCache(32)
_digests: OrderedDict[int, tuple[object, object, str]] = OrderedDict()
_digests_lock = threading.Lock()
DIGESTS_KEPT = 256


def digest(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def digest_of(first: object, second: object, compute) -> str:
    """The digest of (first, second), remembered while both are the same objects.

    Only for objects not changed after they are made (a request's rubric and exemplars): the
    entry holds them, so their ids cannot be reused by other objects while it is kept.
    """
    key = id(first) ^ (id(second) << 1)
    with _digests_lock:
        found = _digests.get(key)
        if found is not None and found[0] is first and found[1] is second:
            _digests.move_to_end(key)
            return found[2]
    value = compute()
    with _digests_lock:
        _digests[key] = (first, second, value)
        while len(_digests) > DIGESTS_KEPT:
            _digests.popitem(last=False)
    return value


def plan_for(rubric: dict, settings: dict) -> tuple[str, Plan]:
    def content() -> str:
        relevant = {
            "instructions": settings.get("instructions") or "",
            "expected_words": settings.get("expected_words"),
        }
        return digest(rubric, relevant)

    key = digest_of(rubric, settings, content)
    return key, _plans.get(key, lambda: plan(rubric, settings))


def fit_for(plan_key: str, plan_: Plan, exemplars: Sequence) -> Fit:
    if len(exemplars) < MIN_EXEMPLARS:
        return Fit(len(exemplars))

    def rows() -> str:
        return digest([(e.text, float(e.score), dict(e.criteria or {})) for e in exemplars])

    key = (plan_key, digest_of(exemplars, exemplars, rows) if isinstance(exemplars, tuple) else rows())
    return _fits.get(key, lambda: fit_exemplars(plan_, exemplars))


def grade(text: str, rubric: dict, settings: dict, exemplars: Sequence = ()) -> tuple[Plan, Scored]:
    plan_key, plan_ = plan_for(rubric, settings)
    fit = fit_for(plan_key, plan_, exemplars)
    return plan_, score(plan_, analyse(text), fit)

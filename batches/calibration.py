"""Calibrating a batch's grades to the teacher's scale, from the batch's exemplar jobs.

For each provider and model that graded the batch, the pairs are the
provider's own scores on the documents the teacher graded as exemplars and the
teacher's scores on them. A monotone map fitted on those pairs (see
`grading.calibration`: linear on the teacher's mean and spread, which the
agreement benchmark favours) re-scores every result of that model: the
result's `score` becomes the calibrated one, rounded to the rubric's levels,
and the provider's is kept in `raw_score`. No provider is called again.

Criteria are calibrated one by one where the teacher scored at least
`MIN_PAIRS` of them; when every criterion is, the total is their sum, so the
two never disagree. The agreement reported is leave-one-out: each exemplar is
scored by a map fitted without it.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django.db import transaction
from django.utils import timezone

from batches.exceptions import NothingToCalibrate, StillGrading
from grading.calibration import (
    MIN_PAIRS,
    Choice,
    Scale,
    ScoreMap,
    calibrate,
    choose_map,
    why_no_map,
)
from grading.models import Exemplar, GradingResult, JobStatus
from grading.statuses import BatchStatus

CHUNK = 500


# Past this many totals the rubric allows, its total is taken as steps from the lowest to the
# highest (a QWK over more categories than this costs more than it tells).
MAX_TOTALS = 1001


class RubricScale:
    """The scores a rubric allows: per criterion its levels (or whole points), and the totals
    their sums can make — a holistic 1–6 band's total is 1–6, never 0."""

    def __init__(self, rubric: dict[str, Any]):
        self.criteria = {str(c["key"]): c for c in rubric.get("criteria") or []}
        self.total = self._totals()

    def _totals(self) -> Scale:
        scales = [self.criterion(key) for key in self.criteria]
        if not scales:
            return Scale((0.0,))
        sums = {0.0}
        for scale in scales:
            if len(sums) * len(scale.points) > 50 * MAX_TOTALS:
                break  # wide criteria without levels: their sums are the steps anyway
            sums = {total + point for total in sums for point in scale.points}
            if len(sums) > MAX_TOTALS:
                break
        else:
            return Scale.levels(sums)
        values = [point for scale in scales for point in scale.points]
        step = 1.0 if all(value.is_integer() for value in values) else 0.5
        return Scale.steps(sum(s.low for s in scales), sum(s.high for s in scales), step)

    def criterion(self, key: str) -> Scale:
        criterion = self.criteria[key]
        levels = [float(level["points"]) for level in criterion.get("levels") or []]
        if levels:
            return Scale.levels(levels)
        points = float(criterion.get("points") or 0)
        return Scale.steps(0.0, points, 1.0 if points.is_integer() else 0.5)


def calibrate_batch(batch) -> dict[str, Any]:
    """Fit a map per provider and model from the batch's exemplars and re-score its results.

    Raises StillGrading while its jobs are being graded, NothingToCalibrate when none has completed.
    """
    scale = RubricScale(batch.validated_settings().rubric.model_dump())
    with transaction.atomic():
        # One calibration of a batch at a time, reading the exemplars and results under the lock:
        # two at once (a double click, the API and the page) then apply in turn, the later one
        # from the exemplars as they are when it runs, rather than a stale set committed last.
        status = type(batch).objects.select_for_update().values_list("status", flat=True).get(pk=batch.pk)
        if BatchStatus(status).calibration_waits:
            raise StillGrading
        teacher = {
            document_id: (score, criteria or {})
            for document_id, score, criteria in Exemplar.objects.filter(batch=batch).values_list(
                "document_id", "score", "criteria"
            )
        }
        by_model = _results_by_model(batch)
        if not by_model:
            raise NothingToCalibrate
        groups = [
            _calibrate_group(provider, model, results, teacher, scale)
            for (provider, model), results in by_model.items()
        ]
        batch.calibration = {
            "fitted_at": timezone.now().isoformat(),
            "exemplars": len(teacher),
            "min_exemplars": MIN_PAIRS,
            "models": groups,
        }
        batch.save(update_fields=["calibration"])
    return batch.calibration


def _results_by_model(batch) -> dict[tuple[str, str], list[GradingResult]]:
    grouped: dict[tuple[str, str], list[GradingResult]] = defaultdict(list)
    results = (
        GradingResult.objects.filter(job__batch=batch, job__status=JobStatus.COMPLETED)
        .select_related("job")
        .only("pk", "provider", "model", "score", "criteria", "raw_score", "raw_criteria", "job__document_id")
        .order_by("pk")
    )
    for result in results.iterator(chunk_size=CHUNK):
        grouped[(result.provider, result.model)].append(result)
    return grouped


def _calibrate_group(provider, model, results, teacher, scale: RubricScale) -> dict[str, Any]:
    exemplar_results = [r for r in results if r.job.document_id in teacher]
    pairs = [(r.provider_score, float(teacher[r.job.document_id][0])) for r in exemplar_results]
    total = _chosen_map(pairs, scale.total)
    criteria = {key: _criterion_fit(key, exemplar_results, teacher, scale) for key in scale.criteria}
    if len(criteria) == 1:
        # One criterion is the total: it follows the total's map unless the teacher scored it.
        ((key, fitted),) = criteria.items()
        if fitted["map"] is None and total["map"] is not None:
            criteria[key] = total  # one criterion's scale is the total's
    maps = {key: fitted["map"] for key, fitted in criteria.items() if fitted["map"] is not None}
    for result in results:
        _rescore(result, total["map"], maps, scale)
    GradingResult.objects.bulk_update(
        results, ["score", "criteria", "raw_score", "raw_criteria"], batch_size=CHUNK
    )
    return {
        "provider": provider,
        "model": model,
        "results": len(results),
        **total["figures"],
        "criteria": {key: fitted["figures"] for key, fitted in criteria.items()},
    }


def _criterion_fit(key: str, exemplar_results, teacher, scale: RubricScale) -> dict[str, Any]:
    pairs = [
        (raw, float(teacher[r.job.document_id][1][key]))
        for r in exemplar_results
        if key in teacher[r.job.document_id][1] and (raw := _raw_criterion(r, key)) is not None
    ]
    return _chosen_map(pairs, scale.criterion(key))


def _chosen_map(pairs: list[tuple[float, float]], scale: Scale) -> dict[str, Any]:
    """The map to apply (see `grading.calibration.choose_map`) and its figures for the page."""
    choice = choose_map(pairs, scale)
    return {"pairs": pairs, "map": choice.map, "figures": _figures(pairs, choice)}


def _figures(pairs: list[tuple[float, float]], choice: Choice) -> dict[str, Any]:
    """The map and its agreement with the teacher: the provider's own scores, and leave-one-out calibrated."""
    note = None
    if choice.kept:
        note = (
            f"your scale already: the grader's own scores agree with yours at {choice.before:.2f}, "
            f"a {choice.fitted.kind} map fitted on them would at {choice.after:.2f}"
        )
    return {
        "method": choice.map.kind if choice.map is not None else None,
        "reason": None if choice.map is not None else why_no_map(pairs),
        "map": _described(choice.map),
        "exemplars": len(pairs),
        "qwk_before": _rounded(choice.before),
        "qwk_after": _rounded(choice.agreement),
        "note": note,
    }


def _described(score_map: ScoreMap | None) -> dict[str, Any] | None:
    if score_map is None:
        return None
    return {"kind": score_map.kind, "knots": list(score_map.knots), "values": list(score_map.values)}


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _raw_criterion(result: GradingResult, key: str) -> float | None:
    for item in _raw_criteria(result):
        if str(item.get("key")) == key and isinstance(item.get("score"), int | float):
            return float(item["score"])
    return None


def _raw_criteria(result: GradingResult) -> list[dict[str, Any]]:
    return result.raw_criteria if result.is_calibrated else (result.criteria or [])


def _rescore(result: GradingResult, total: ScoreMap | None, criteria: dict[str, ScoreMap], scale) -> None:
    """Calibrated score and criteria from the provider's; without any map, the provider's again."""
    raw_score, raw_criteria = result.provider_score, _raw_criteria(result)
    if total is None and not criteria:
        result.score, result.criteria, result.raw_score, result.raw_criteria = (
            raw_score,
            raw_criteria,
            None,
            [],
        )
        return
    calibrated = [_calibrated_criterion(item, criteria, scale) for item in raw_criteria]
    every_criterion = bool(calibrated) and all(str(item.get("key")) in criteria for item in raw_criteria)
    if every_criterion:
        score = sum(float(item["score"]) for item in calibrated)
    else:
        score = calibrate(raw_score, total, scale.total) if total is not None else raw_score
    result.raw_score, result.raw_criteria = raw_score, raw_criteria
    result.score, result.criteria = score, calibrated


def _calibrated_criterion(
    item: dict[str, Any], maps: dict[str, ScoreMap], scale: RubricScale
) -> dict[str, Any]:
    key = str(item.get("key"))
    if key not in maps or not isinstance(item.get("score"), int | float):
        return item
    return {**item, "score": calibrate(float(item["score"]), maps[key], scale.criterion(key))}

"""Calibrating a batch's grades to the teacher's scale, from the batch's exemplar jobs.

For each provider and model that graded the batch, the pairs are the
provider's own scores on the documents the teacher graded as exemplars and the
teacher's scores on them. A monotone map fitted on those pairs (see
`grading.calibration`) re-scores every result of that model: the result's
`score` becomes the calibrated one, rounded to the rubric's levels, and the
provider's is kept in `raw_score`. No provider is called again.

Criteria are calibrated one by one where the teacher scored at least
`MIN_EXEMPLARS` of them; when every criterion is, the total is their sum, so
the two never disagree.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django.db import transaction
from django.utils import timezone

from grading.calibration import MIN_EXEMPLARS, ScoreMap, fit_map, snap
from grading.models import Exemplar, GradingResult, JobStatus

CHUNK = 500


class RubricScale:
    """The scores a rubric allows: per criterion its levels (or whole points), and the total's step."""

    def __init__(self, rubric: dict[str, Any]):
        self.criteria = {str(c["key"]): c for c in rubric.get("criteria") or []}
        self.maximum = sum(float(c.get("points") or 0) for c in self.criteria.values())
        values = [float(c.get("points") or 0) for c in self.criteria.values()]
        values += [float(level["points"]) for c in self.criteria.values() for level in c.get("levels") or []]
        self.step = 1.0 if all(float(v).is_integer() for v in values) else 0.5

    def levels(self, key: str) -> list[float]:
        return sorted({float(level["points"]) for level in self.criteria[key].get("levels") or []})

    def snap_total(self, value: float) -> float:
        return snap(value, 0.0, self.maximum, self.step)

    def snap_criterion(self, key: str, value: float) -> float:
        points = float(self.criteria[key].get("points") or 0)
        return snap(value, 0.0, points, 1.0 if points.is_integer() else 0.5, self.levels(key))


def calibrate_batch(batch) -> dict[str, Any]:
    """Fit a map per provider and model from the batch's exemplars and re-score its results."""
    scale = RubricScale(batch.validated_settings().rubric.model_dump())
    teacher = {
        document_id: (score, criteria or {})
        for document_id, score, criteria in Exemplar.objects.filter(batch=batch).values_list(
            "document_id", "score", "criteria"
        )
    }
    groups = []
    with transaction.atomic():
        for (provider, model), results in _results_by_model(batch).items():
            groups.append(_calibrate_group(provider, model, results, teacher, scale))
        batch.calibration = {
            "fitted_at": timezone.now().isoformat(),
            "exemplars": len(teacher),
            "min_exemplars": MIN_EXEMPLARS,
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
    total = fit_map(
        [r.provider_score for r in exemplar_results],
        [teacher[r.job.document_id][0] for r in exemplar_results],
        0.0,
        scale.maximum,
        scale.step,
    )
    criterion_maps = {key: _criterion_fit(key, exemplar_results, teacher, scale) for key in scale.criteria}
    fitted = {key: fit for key, fit in criterion_maps.items() if fit.score_map is not None}
    for result in results:
        _rescore(result, total.score_map, {key: fit.score_map for key, fit in fitted.items()}, scale)
    GradingResult.objects.bulk_update(
        results, ["score", "criteria", "raw_score", "raw_criteria"], batch_size=CHUNK
    )
    return {
        "provider": provider,
        "model": model,
        "results": len(results),
        **total.as_dict(),
        "criteria": {key: fit.as_dict() for key, fit in criterion_maps.items()},
    }


def _criterion_fit(key: str, exemplar_results, teacher, scale: RubricScale):
    pairs = [
        (_raw_criterion(r, key), float(teacher[r.job.document_id][1][key]))
        for r in exemplar_results
        if key in teacher[r.job.document_id][1] and _raw_criterion(r, key) is not None
    ]
    points = float(scale.criteria[key].get("points") or 0)
    return fit_map(
        [p[0] for p in pairs], [p[1] for p in pairs], 0.0, points, 1.0 if points.is_integer() else 0.5
    )


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
        score = scale.snap_total(total(raw_score)) if total is not None else raw_score
    result.raw_score, result.raw_criteria = raw_score, raw_criteria
    result.score, result.criteria = score, calibrated


def _calibrated_criterion(
    item: dict[str, Any], maps: dict[str, ScoreMap], scale: RubricScale
) -> dict[str, Any]:
    key = str(item.get("key"))
    if key not in maps or not isinstance(item.get("score"), int | float):
        return item
    return {**item, "score": scale.snap_criterion(key, maps[key](float(item["score"])))}

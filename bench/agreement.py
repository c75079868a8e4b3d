"""How well does the offline `builtin` grader agree with human raters, given a few of their grades?

Real essays with two human raters (ASAP essay set 7, read from ../shared/data/asap7/, never
copied into the repository). The rubric is built from its rubric.json as a user would build a
template: its four criteria, each with levels 0–3 and their descriptions, the prompt as the
instructions; the teacher's scale is one rater's 0–12 total (`--teacher`).

For 0, 10, 20 and 50 exemplars drawn at random (20 draws each, fixed seed), the essays NOT drawn
are graded and compared with each rater by quadratic weighted kappa (QWK), beside:

- builtin (learnt): the grader given the exemplars — a ridge model shrunk toward its prior, its
  output mapped to the teacher's scale by a map fitted on cross-validated predictions;
- builtin (prior) + calibration: the grader without exemplars, its raw score mapped by
  `grading.calibration` fitted on the exemplars (what calibration alone does for any provider);
- builtin (learnt), the batch then calibrated: what a teacher gets from a batch — each exemplar
  graded by a model fitted without it, as the runner grades it, then `grading.calibration.
  choose_map` on those pairs (a fitted map, or the learnt scores kept when it agrees less);
- word count + calibration: the same map on word count alone;
- rater 1 vs rater 2 on the same essays: the human bar.

With 0 exemplars: Spearman ρ of the raw grade with the resolved score (rater1 + rater2), and the
raw grade's QWK. Then the scoring speed (essays/s through `BuiltinProvider.grade`, model cached).
Each essay is featurised once and reused across draws.

    python bench/agreement.py
    python bench/agreement.py --draws 5 --sizes 0,20 --data /path/to/asap7

Targets: 20 exemplars, mean QWK ≥ 0.66 against each rater; 50 exemplars ≥ 0.70; 0 exemplars
Spearman ρ ≥ 0.70; scoring ≥ 500 essays/s.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# No database is used, but a template's settings are validated against the configured providers,
# which Django's settings hold.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gradeproject.settings")
os.environ.setdefault("SECRET_KEY", "bench-only-secret-key")
os.environ.setdefault("LOG_LEVEL", "WARNING")

import numpy as np  # noqa: E402

from grading import calibration  # noqa: E402
from grading.agreement import integer_quadratic_weighted_kappa as qwk  # noqa: E402
from grading.essay import grader  # noqa: E402
from grading.essay.features import analyse  # noqa: E402
from grading.providers import Exemplar, GradeRequest  # noqa: E402
from grading.providers.builtin import BuiltinProvider  # noqa: E402
from grading.schema import validate_settings  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "asap7"


AS_A_BATCH = "builtin (learnt), the batch then calibrated"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--data", type=Path, default=DEFAULT_DATA, help="folder with essays.tsv and rubric.json"
    )
    parser.add_argument("--sizes", default="0,10,20,50", help="exemplar counts, comma-separated")
    parser.add_argument("--draws", type=int, default=20, help="random exemplar sets per count")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--teacher", choices=("rater1", "rater2"), default="rater1")
    parser.add_argument("--method", choices=sorted(calibration.FITTERS), default=calibration.DEFAULT_METHOD,
                        help="calibration map, in the grader and for the calibrated rows")  # fmt: skip
    return parser.parse_args()


def load(data: Path) -> tuple[list[dict], dict]:
    csv.field_size_limit(10**8)
    missing = [name for name in ("essays.tsv", "rubric.json") if not (data / name).is_file()]
    if missing:
        sys.exit(f"{data} has no {' or '.join(missing)}: give --data a folder like ../shared/data/asap7.")
    with (data / "essays.tsv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    rubric = json.loads((data / "rubric.json").read_text(encoding="utf-8"))
    return rows, rubric


def template_settings(rubric: dict) -> dict:
    """Settings as a user would write them for this rubric, validated like a template's."""
    criteria = []
    for criterion in rubric["criteria"]:
        levels = sorted(
            ((int(points), text) for points, text in (criterion.get("levels") or {}).items()), reverse=True
        )
        criteria.append(
            {
                "key": criterion["name"].lower().replace(" ", "_"),
                "name": criterion["name"],
                "points": max((points for points, _ in levels), default=criterion.get("points")),
                "levels": [
                    {"points": points, "label": f"Level {points}", "descriptor": text}
                    for points, text in levels
                ],
            }
        )
    settings = {
        "provider": "builtin",
        "instructions": rubric.get("prompt") or "",
        "rubric": {"criteria": criteria},
    }
    return validate_settings(settings).model_dump(mode="json")


def total_range(rubric: dict) -> tuple[int, int]:
    """The lowest and highest total the rubric allows: a 1–6 scale does not start at 0."""
    lows = [min((level["points"] for level in c.get("levels") or ()), default=0) for c in rubric["criteria"]]
    return int(sum(lows)), int(sum(c["points"] for c in rubric["criteria"]))


def spearman(first, second) -> float:
    def ranks(values):
        values = np.asarray(values, dtype=float)
        order = np.argsort(values, kind="stable")
        ranked = np.empty(len(values))
        ranked[order] = np.arange(len(values))
        _, inverse = np.unique(values, return_inverse=True)
        return (np.bincount(inverse, ranked) / np.bincount(inverse))[inverse]

    return float(np.corrcoef(ranks(first), ranks(second))[0, 1])


def mean_sd(values: list[float]) -> str:
    if not values:
        return "—"
    spread = statistics.pstdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3f} ± {spread:.3f}"


def main() -> None:
    options = parse_args()
    import django

    django.setup()
    grader.CALIBRATION = options.method
    rows, rubric = load(options.data)
    settings = template_settings(rubric)
    rubric_json = settings["rubric"]
    low, high = total_range(rubric_json)
    scale = calibration.Scale.steps(low, high)
    teacher = np.array([float(row[options.teacher]) for row in rows])
    other = "rater2" if options.teacher == "rater1" else "rater1"
    raters = {options.teacher: teacher, other: np.array([float(row[other]) for row in rows])}
    resolved = np.array([float(row["score"]) for row in rows])
    texts = [row["essay"] for row in rows]
    print(f"{len(rows):,} essays from {options.data}; teacher = {options.teacher} ({low}–{high}); "
          f"{options.method} calibration")  # fmt: skip

    started, cpu = time.perf_counter(), time.process_time()
    essays = [analyse(text) for text in texts]
    featurise_s = (time.perf_counter() - started, time.process_time() - cpu)
    plan_key, plan = grader.plan_for(rubric_json, settings)
    prior_fit = grader.Fit()
    prior_scores = np.array([sum(grader.score(plan, essay, prior_fit).scores) for essay in essays])
    words = np.array([float(essay.word_count) for essay in essays])
    check_fast_path(texts[:25], prior_scores[:25], rubric_json, settings)

    sizes = [int(size) for size in options.sizes.split(",")]
    rng = np.random.default_rng(options.seed)
    results: dict[tuple[str, int], dict[str, list[float]]] = {}
    fit_times: list[float] = []

    def record(method: str, size: int, rater: str, value: float | None) -> None:
        if value is not None:
            results.setdefault((method, size), {}).setdefault(rater, []).append(value)

    kept: dict[int, int] = {}  # draws whose batch calibration kept the learnt scores
    for size in sizes:
        draws = 1 if size == 0 else options.draws
        for _ in range(draws):
            chosen = rng.permutation(len(rows))[:size]
            rest = np.setdiff1d(np.arange(len(rows)), chosen)
            exemplars = tuple(Exemplar(texts[i], float(teacher[i])) for i in chosen)
            started = time.perf_counter()
            fit = grader.fit_exemplars(plan, exemplars)
            fit_times.append(time.perf_counter() - started) if size else None
            learnt = (
                prior_scores[rest]
                if fit.total is None
                else np.array([sum(grader.score(plan, essays[i], fit).scores) for i in rest])
            )
            calibrated = {}
            if size:
                # What a teacher gets from the batch: each exemplar graded by a model fitted
                # without it (as the runner grades it), then the batch calibrated on those pairs,
                # which keeps the grader's scores when a map would agree less.
                own = [
                    sum(grader.score(plan, essays[i], grader.fit_exemplars(plan, exemplars[:k] + exemplars[k + 1 :])).scores)
                    for k, i in enumerate(chosen)
                ]  # fmt: skip
                choice = calibration.choose_map(
                    [(float(raw), float(teacher[i])) for raw, i in zip(own, chosen, strict=True)], scale, options.method
                )  # fmt: skip
                kept[size] = kept.get(size, 0) + choice.kept
                calibrated[AS_A_BATCH] = [
                    calibration.calibrate(float(raw), choice.map, scale) for raw in learnt
                ]
            for name, raw in (
                ("builtin (prior) + calibration", prior_scores),
                ("word count + calibration", words),
            ):
                score_map = calibration.fit_map([(raw[i], teacher[i]) for i in chosen], options.method)
                if score_map is not None:
                    calibrated[name] = [calibration.calibrate(raw[i], score_map, scale) for i in rest]
            for rater, scores in raters.items():
                record("builtin (learnt)" if size else "builtin (no exemplars)", size, rater,
                       qwk(learnt, scores[rest], low, high))  # fmt: skip
                for name, values in calibrated.items():
                    record(name, size, rater, qwk(values, scores[rest], low, high))
            record(
                "rater 1 vs rater 2",
                size,
                "both",
                qwk(raters["rater1"][rest], raters["rater2"][rest], low, high),
            )
            if size:
                pairs = [(float(prior_scores[i]), float(teacher[i])) for i in chosen]
                record("cv estimate, prior + calibration", size, options.teacher,
                       calibration.cross_validated_qwk(pairs, scale, options.method))  # fmt: skip

    print()
    print("QWK on the essays not drawn as exemplars (mean ± sd over draws)")
    print(f"| method | exemplars | vs {options.teacher} (teacher) | vs {other} |")
    print("| --- | --- | --- | --- |")
    for (method, size), by_rater in results.items():
        if method == "rater 1 vs rater 2":
            continue
        print(
            f"| {method} | {size} | {mean_sd(by_rater.get(options.teacher, []))} | {mean_sd(by_rater.get(other, []))} |"
        )
    for (method, size), by_rater in results.items():
        if method == "rater 1 vs rater 2":
            print(f"| rater 1 vs rater 2 | ({size} drawn) | {mean_sd(by_rater['both'])} | |")

    for size, count in kept.items():
        print(
            f"{AS_A_BATCH}: with {size} exemplars the learnt scores were kept (identity map) in {count} of {options.draws} draws"
        )

    print()
    print("No exemplars: Spearman ρ with the resolved score (rater1 + rater2)")
    print(
        f"  builtin grade   ρ = {spearman(prior_scores, resolved):.3f}  (mean {prior_scores.mean():.2f} of {high})"
    )
    print(f"  word count      ρ = {spearman(words, resolved):.3f}")

    print()
    speed(texts, rubric_json, settings, teacher, featurise_s, fit_times)


def check_fast_path(texts: list[str], expected: np.ndarray, rubric: dict, settings: dict) -> None:
    """The bench reuses features; make sure that gives the provider's own grades."""
    provider = BuiltinProvider()
    for text, score in zip(texts, expected, strict=True):
        grade = provider.grade(GradeRequest(text=text, rubric=rubric, settings=settings, model="builtin"))
        assert grade.score == score, (grade.score, score)


def speed(texts, rubric, settings, teacher, featurise_s, fit_times) -> None:
    provider = BuiltinProvider()
    exemplars = tuple(Exemplar(texts[i], float(teacher[i])) for i in range(20))
    requests = [
        GradeRequest(text=text, rubric=rubric, settings=settings, model="builtin", exemplars=exemplars)
        for text in texts
    ]
    provider.grade(requests[0])  # fits the model once; later grades reuse it
    wall, cpu = time.perf_counter(), time.process_time()
    for request in requests:
        provider.grade(request)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(
        f"Load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (wall time counts waiting)"
    )
    print(
        f"Featurising alone: {len(texts) / featurise_s[0]:,.0f} essays/s wall, "
        f"{len(texts) / featurise_s[1]:,.0f} essays/s CPU"
    )
    print(
        f"Scoring through BuiltinProvider.grade (20 exemplars, model cached, with feedback): "
        f"{len(texts) / wall:,.0f} essays/s wall, {len(texts) / cpu:,.0f} essays/s CPU"
    )
    if fit_times:
        print(f"Fitting a model on an exemplar set: median {1000 * statistics.median(fit_times):.0f} ms")


if __name__ == "__main__":
    main()

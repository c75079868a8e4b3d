"""How a batch went, computed in the database.

Every figure is an aggregate: a fixed number of queries whatever the number of
jobs (about ten), and no rows are loaded into Python beyond small grouped
tables (a status, a model, a bucket pair, a criterion per row). The pure
arithmetic of agreement lives in grading.agreement.

Which score is used where:
- the score distribution and per-criterion figures use the *final* score: the
  reviewer's where a job was reviewed, the AI's otherwise (and say how many
  were reviewed);
- the per-model breakdown and model comparison use the AI's scores, since they
  describe the models;
- AI–human agreement pairs the AI's score with the reviewer's.
"""

import math
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import (
    Aggregate,
    Avg,
    CharField,
    Count,
    ExpressionWrapper,
    F,
    FloatField,
    Func,
    Max,
    Min,
    Q,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce
from django.db.models.lookups import GreaterThanOrEqual, LessThan
from django.utils import timezone

from batches.eta import estimate_finish
from batches.memo import BatchState, batch_state, remembered
from grading.agreement import BUCKET_WIDTH, BUCKETS, EPSILON, agreement, bucket_label
from grading.models import GradingJob, GradingResult, JobStatus
from grading.progress import Progress
from grading.providers import kind_of

TOP_FAILURE_KINDS = 5
PERCENTILES = {"median": 0.5, "p95": 0.95}
SCORE_BASIS = "final score: the reviewer's where the job was reviewed, otherwise the AI's"


def batch_analytics(batch, now: datetime | None = None, state: BatchState | None = None) -> dict[str, Any]:
    """Everything the analytics endpoint and the export's batch.json report about a batch.

    The aggregates are computed once per state of the batch (batches.memo); what
    depends on the clock (wall time, rate, projection) and on the batch's own
    fields (rubric, deadline, calibration) is worked out afresh from them. A
    page that has read the batch's state passes it.
    """
    now = now or timezone.now()
    state = state or batch_state(batch)
    counts = state.counts
    figures = remembered(state, "analytics", lambda: aggregates(batch))
    rows = figures["rows"]
    by_model, scores = model_breakdown(rows), score_distribution(rows)
    graded, reviewed = figures["criteria"], figures["reviewed_criteria"]
    return {
        "batch": batch.pk,
        "generated_at": now.isoformat(),
        "jobs": job_counts(counts, figures["failure_reasons"]),
        "processing": processing_times(batch, figures["durations"], counts, now),
        "timeline": timeline(batch, counts, now),
        "by_model": by_model,
        "scores": scores,
        "criteria": criterion_figures(graded, reviewed, rubric_criteria(batch)) if graded else [],
        "model_comparison": model_comparison(figures["model_pairs"]),
        "ai_human_agreement": ai_human_agreement(figures["ai_human"], reviewed),
        # Calibration replaced the AI's scores in place, so every figure above uses them.
        "calibrated": any(group.get("method") for group in (batch.calibration or {}).get("models", [])),
    }


def aggregates(batch) -> dict[str, Any]:
    """What the database sums up over the batch's jobs and results: small grouped tables, no job rows."""
    jobs = GradingJob.objects.in_batch(batch)
    sql = _BatchSql(batch.pk)
    rows = per_model_rows(jobs)
    graded = sum(row["graded"] for row in rows)
    reviewed = sum(row["reviewed"] for row in rows)
    models_graded = sum(1 for row in rows if row[f"status_{JobStatus.COMPLETED}"])
    # Queries whose answer is known to be empty are skipped: criteria before
    # any result, the pairs of models when fewer than two graded, the reviews
    # when nobody reviewed.
    return {
        "rows": rows,
        "failure_reasons": failure_reasons(jobs),
        "durations": duration_figures(jobs),
        "criteria": sql.criterion_rows() if graded else [],
        "reviewed_criteria": sql.reviewed_criterion_rows() if reviewed else [],
        "model_pairs": sql.model_pair_rows() if models_graded > 1 else [],
        "ai_human": sql.ai_human_rows() if reviewed else [],
    }


# --- jobs ------------------------------------------------------------------


class ErrorKind(Func):
    """The part of an error message before its first ": ", which names its kind.

    "The provider failed with HTTP 503: upstream busy." and "... HTTP 503: overloaded."
    are one kind. The colon must be followed by a space so that URLs in messages
    ("http://host:8080") do not split. The argument is repeated in the SQL, so it
    must be a plain column reference (no parameters).
    """

    output_field = CharField()
    arity = 1

    def as_sql(self, compiler, connection, **extra_context):
        template = "LEFT(SPLIT_PART(%(expressions)s, ': ', 1), 200)"
        return super().as_sql(compiler, connection, template=template, **extra_context)

    def as_sqlite(self, compiler, connection, **extra_context):
        template = (
            "SUBSTR(CASE WHEN INSTR(%(expressions)s, ': ') > 0 "
            "THEN SUBSTR(%(expressions)s, 1, INSTR(%(expressions)s, ': ') - 1) "
            "ELSE %(expressions)s END, 1, 200)"
        )
        return super().as_sql(compiler, connection, template=template, **extra_context)


def job_counts(counts: dict[str, int], reasons: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts by status, the success rate and the commonest kinds of failure.

    The success rate is completed / (completed + failed): cancelled jobs were
    never given their chance and unfinished ones have not had it yet.
    """
    progress = Progress.from_counts(counts)
    return {
        "total": progress.total,
        "by_status": {status.value: progress.count(status) for status in JobStatus},
        "percent_done": progress.percent,
        "success_rate": _ratio(progress.completed, progress.ran),
        "failure_reasons": [dict(reason) for reason in reasons],  # a copy: the kept list is shared
    }


def failure_reasons(jobs) -> list[dict[str, Any]]:
    rows = (
        jobs.filter(status=JobStatus.FAILED)
        .annotate(kind=ErrorKind(F("last_error")))
        .values("kind")
        .annotate(count=Count("id"))
        .order_by("-count", "kind")[:TOP_FAILURE_KINDS]
    )
    return [{"kind": row["kind"] or "(no message recorded)", "count": row["count"]} for row in rows]


# --- processing time and timeline -------------------------------------------


class PercentileCont(Aggregate):
    """PostgreSQL's continuous percentile: linear interpolation between the closest ranks."""

    function = "PERCENTILE_CONT"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression, fraction: float, **extra):
        # Inlined, not a parameter: WITHIN GROUP wants a constant, and it is
        # always one of our own floats, never user input.
        super().__init__(expression, fraction=repr(float(fraction)), **extra)


def duration_figures(jobs) -> dict[str, Any]:
    """How many jobs were timed, and the mean, median and 95th percentile of their durations."""
    percentile_aggregates = {}
    if connection.vendor == "postgresql":
        percentile_aggregates = {
            name: PercentileCont("duration_ms", fraction) for name, fraction in PERCENTILES.items()
        }
    figures = jobs.aggregate(timed=Count("duration_ms"), mean=Avg("duration_ms"), **percentile_aggregates)
    if connection.vendor != "postgresql":
        timed = jobs.filter(duration_ms__isnull=False)
        for name, fraction in PERCENTILES.items():
            figures[name] = percentile_by_offset(timed, "duration_ms", fraction, figures["timed"])
    return figures


def processing_times(batch, figures: dict[str, Any], counts: dict[str, int], now: datetime) -> dict[str, Any]:
    """Per-job duration figures over jobs that ran (completed or failed), and throughput."""
    wall = wall_seconds(batch, now)
    ended = Progress.from_counts(counts).ran
    return {
        "timed_jobs": figures["timed"],
        "mean_ms": _round(figures["mean"], 1),
        "median_ms": _round(figures["median"], 1),
        "p95_ms": _round(figures["p95"], 1),
        "wall_time_s": _round(wall, 1),
        "jobs_per_minute": _round(ended / (wall / 60), 2) if wall else None,
    }


def percentile_by_offset(queryset, field: str, fraction: float, count: int) -> float | None:
    """The same interpolated percentile as PostgreSQL's PERCENTILE_CONT, for SQLite.

    Fetches only the two rows around rank fraction * (count - 1) with
    ORDER BY … LIMIT 2 OFFSET k, so no more than two values leave the database.
    """
    if not count:
        return None
    position = fraction * (count - 1)
    rank = int(position)
    values = list(queryset.order_by(field).values_list(field, flat=True)[rank : rank + 2])
    if len(values) == 1:
        return float(values[0])
    return values[0] + (position - rank) * (values[1] - values[0])


def wall_seconds(batch, now: datetime) -> float | None:
    """From the batch's start to its end, or to now while it runs."""
    if batch.started_at is None:
        return None
    return max(((batch.completed_at or now) - batch.started_at).total_seconds(), 0.0)


def timeline(batch, counts: dict[str, int], now: datetime) -> dict[str, Any]:
    expected = estimate_finish(batch, counts, now)
    return {
        "created_at": _iso(batch.created_at),
        "started_at": _iso(batch.started_at),
        "completed_at": _iso(batch.completed_at),
        "deadline": _iso(batch.deadline),
        "projected_completion_at": _iso(expected.at),
        "projected_from": expected.source,
        "deadline_standing": expected.standing,
        "seconds_to_deadline": _round((batch.deadline - now).total_seconds(), 1) if batch.deadline else None,
    }


# --- per provider and model ------------------------------------------------------


def _percent_of(score, max_score: str) -> ExpressionWrapper:
    # Multiply before dividing: 14 * 100 / 20 is exactly 70, 14 / 20 * 100 is not.
    return ExpressionWrapper(score * Value(100.0) / F(max_score), output_field=FloatField())


def per_model_rows(jobs) -> list[dict[str, Any]]:
    """One pass over the batch's jobs and results, grouped by provider and model.

    Both the per-model breakdown and the score distribution are summed up from
    these rows (counts, sums and sums of squares add across groups), so the
    results are read once rather than twice.
    """
    final = _percent_of(Coalesce(F("result__reviewed_score"), F("result__score")), "result__max_score")
    ai = _percent_of(F("result__score"), "result__max_score")
    buckets = {
        f"bucket_{index}": Count("result__id", filter=_in_bucket(final, index)) for index in range(BUCKETS)
    }
    return list(
        jobs.values("provider", "model")
        .annotate(
            jobs=Count("id"),
            **{f"status_{status.value}": Count("id", filter=Q(status=status.value)) for status in JobStatus},
            graded=Count("result__id"),
            reviewed=Count("result__reviewed_score"),
            ai_sum=Sum(ai),
            final_sum=Sum(final),
            final_squares=Sum(ExpressionWrapper(final * final, output_field=FloatField())),
            lowest=Min(final),
            highest=Max(final),
            mean_latency_ms=Avg("result__latency_ms"),
            mean_duration_ms=Avg("duration_ms"),
            input_tokens=Sum("result__input_tokens"),
            output_tokens=Sum("result__output_tokens"),
            cost=Sum("result__cost"),
            # What failed attempts were billed (a repair's first call whose repair failed).
            billed_input_tokens=Sum("billed_input_tokens"),
            billed_output_tokens=Sum("billed_output_tokens"),
            billed_cost=Sum("billed_cost"),
            **buckets,
        )
        .order_by("provider", "model")
    )


def model_breakdown(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Jobs in every status, success rate, mean AI score, time per job, tokens and cost per provider and model."""
    return [
        {
            # Jobs of a batch not yet started have no snapshot of their provider and model.
            "provider": row["provider"] or None,
            "kind": kind_of(row["provider"]) or None,
            "model": row["model"] or None,
            "jobs": row["jobs"],
            "by_status": {status.value: row[f"status_{status.value}"] for status in JobStatus},
            "completed": row[f"status_{JobStatus.COMPLETED}"],
            "failed": row[f"status_{JobStatus.FAILED}"],
            "success_rate": _ratio(
                row[f"status_{JobStatus.COMPLETED}"],
                row[f"status_{JobStatus.COMPLETED}"] + row[f"status_{JobStatus.FAILED}"],
            ),
            "mean_score_percent": _round(row["ai_sum"] / row["graded"], 2) if row["graded"] else None,
            "mean_latency_ms": _round(row["mean_latency_ms"], 1),
            "mean_duration_ms": _round(row["mean_duration_ms"], 1),
            "input_tokens": (row["input_tokens"] or 0) + (row["billed_input_tokens"] or 0),
            "output_tokens": (row["output_tokens"] or 0) + (row["billed_output_tokens"] or 0),
            "cost": _money((row["cost"] or 0) + (row["billed_cost"] or 0)),
            "reviewed": row["reviewed"],
        }
        for row in rows
    ]


# --- scores ----------------------------------------------------------------------


def score_distribution(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """A histogram of final scores over ten-point percentage buckets, with mean and spread."""
    graded = sum(row["graded"] for row in rows)
    total = sum(row["final_sum"] or 0 for row in rows)
    squares = sum(row["final_squares"] or 0 for row in rows)
    mean = total / graded if graded else None
    lows = [row["lowest"] for row in rows if row["lowest"] is not None]
    highs = [row["highest"] for row in rows if row["highest"] is not None]
    return {
        "basis": SCORE_BASIS,
        "graded": graded,
        "reviewed": sum(row["reviewed"] for row in rows),
        "mean_percent": _round(mean, 2),
        # Population spread from the sums: sqrt(E[x^2] - E[x]^2).
        "std_dev_percent": _round(math.sqrt(max(squares / graded - mean**2, 0.0)), 2) if graded else None,
        "min_percent": _round(min(lows), 2) if lows else None,
        "max_percent": _round(max(highs), 2) if highs else None,
        "ai_mean_percent": _round(sum(row["ai_sum"] or 0 for row in rows) / graded, 2) if graded else None,
        "histogram": [
            {"bucket": bucket_label(index), "count": sum(row[f"bucket_{index}"] for row in rows)}
            for index in range(BUCKETS)
        ],
    }


def _in_bucket(percent, index: int) -> Q:
    # The same edges as grading.agreement.bucket(): floor(percent / 10 + epsilon).
    condition = Q()
    if index > 0:
        condition &= Q(GreaterThanOrEqual(percent, (index - EPSILON) * BUCKET_WIDTH))
    if index < BUCKETS - 1:
        condition &= Q(LessThan(percent, (index + 1 - EPSILON) * BUCKET_WIDTH))
    return condition


def rubric_criteria(batch) -> list[dict[str, Any]]:
    """The batch's rubric criteria, in order: names and points for the per-criterion figures."""
    rubric = batch.effective_settings().get("rubric") or {}
    criteria = rubric.get("criteria") if isinstance(rubric, dict) else None
    return [item for item in criteria or [] if isinstance(item, dict) and item.get("key")]


def criterion_figures(rows: list[tuple], reviewed: list[tuple], rubric: list[dict]) -> list[dict[str, Any]]:
    """Mean and spread of each rubric criterion's final score.

    The database sums the AI's criterion scores (and their squares) over all
    results, and separately over the reviewed criteria, AI and reviewer side
    by side; the final sums swap the one for the other. Unnesting the reviews
    only for reviewed results, rather than beside every criterion of every
    result, makes the query cheaper on PostgreSQL (README, the export
    benchmark, has the figure).
    """
    overrides: dict[str, list[float]] = {}
    for key, _, _, count, _, ai_sum, ai_squares, human_sum, human_squares in reviewed:
        totals = overrides.setdefault(key, [0, 0.0, 0.0, 0.0, 0.0])
        for index, value in enumerate((count, ai_sum, ai_squares, human_sum, human_squares)):
            totals[index] += value or 0
    criteria = {str(item.get("key")): item for item in rubric}
    position = {key: index for index, key in enumerate(criteria)}
    figures = []
    for key, graded, ai_sum, ai_squares in sorted(
        rows, key=lambda row: (position.get(row[0], len(position)), row[0])
    ):
        count, ai_swapped, ai_swapped_squares, human_sum, human_squares = overrides.get(key, [0, 0, 0, 0, 0])
        final_sum = (ai_sum or 0) - ai_swapped + human_sum
        final_squares = (ai_squares or 0) - ai_swapped_squares + human_squares
        mean = final_sum / graded if graded else None
        spread = math.sqrt(max(final_squares / graded - mean**2, 0.0)) if graded else None
        # A key the rubric no longer has (the rubric was edited after grading) keeps its key as name.
        points = criteria.get(key, {}).get("points")
        figures.append(
            {
                "key": key,
                "name": criteria.get(key, {}).get("name") or key,
                "max_score": points,
                "graded": graded,
                "reviewed": count,
                "mean": _round(mean, 3),
                "std_dev": _round(spread, 3),
                "mean_percent": _round(100 * mean / points, 2) if mean is not None and points else None,
                "ai_mean": _round(ai_sum / graded, 3) if graded else None,
            }
        )
    return figures


# --- agreement -------------------------------------------------------------------


def model_comparison(pair_rows: list[tuple]) -> list[dict[str, Any]]:
    """Every pair of models that graded the same documents, and how far they agree (AI scores)."""
    pairs: dict[tuple, dict[str, Any]] = {}
    for (
        provider_a,
        model_a,
        provider_b,
        model_b,
        bucket_a,
        bucket_b,
        count,
        diff,
        sum_a,
        sum_b,
    ) in pair_rows:
        first, second = (provider_a, model_a), (provider_b, model_b)
        if second < first:  # the database's collation may order names differently from Python
            first, second, bucket_a, bucket_b, sum_a, sum_b = second, first, bucket_b, bucket_a, sum_b, sum_a
        pair = pairs.setdefault((first, second), {"cells": {}, "diff": 0.0, "sum_a": 0.0, "sum_b": 0.0})
        cell = (int(bucket_a), int(bucket_b))
        pair["cells"][cell] = pair["cells"].get(cell, 0) + count
        pair["diff"] += diff
        pair["sum_a"] += sum_a
        pair["sum_b"] += sum_b
    comparisons = []
    for (first, second), pair in sorted(pairs.items()):
        figures = agreement(pair["cells"], pair["diff"])
        comparisons.append(
            {
                "models": [_model_label(*first), _model_label(*second)],
                "documents": figures.pairs,
                "mean_percent": [
                    _round(pair["sum_a"] / figures.pairs, 2),
                    _round(pair["sum_b"] / figures.pairs, 2),
                ],
                **figures.as_dict(),
            }
        )
    return comparisons


def ai_human_agreement(overall_rows: list[tuple], reviewed: list[tuple]) -> dict[str, Any]:
    """The AI's score against the reviewer's, overall and per criterion the reviewer scored."""
    overall = agreement(*_cells(overall_rows)) if overall_rows else agreement({})
    per_criterion: dict[str, list] = {}
    for key, bucket_ai, bucket_human, count, diff, *_ in reviewed:
        per_criterion.setdefault(key, []).append((bucket_ai, bucket_human, count, diff))
    return {
        "basis": "AI score against the reviewer's score, on jobs a reviewer scored",
        "overall": overall.as_dict(),
        "criteria": [
            {"key": key, **agreement(*_cells(rows)).as_dict()} for key, rows in sorted(per_criterion.items())
        ],
    }


def _cells(rows) -> tuple[dict[tuple[int, int], int], float]:
    cells: dict[tuple[int, int], int] = {}
    difference = 0.0
    for bucket_a, bucket_b, count, diff in rows:
        cell = (int(bucket_a), int(bucket_b))
        cells[cell] = cells.get(cell, 0) + count
        difference += diff or 0.0
    return cells, difference


def _model_label(provider: str, model: str) -> str:
    return f"{provider}:{model}" if provider else model


# --- SQL over the criteria JSON ----------------------------------------------------


# The members of a criteria element that the queries read, typed for jsonb_to_recordset.
# Each query declares only what it reads: every extra member costs time per element.
SCORES = "key text, score float8"
SCORES_AND_POINTS = "key text, score float8, max_score float8"


class _BatchSql:
    """The few queries the ORM cannot say: JSON arrays unnested, and self-joins.

    PostgreSQL unnests jsonb with jsonb_array_elements, SQLite with json_each;
    the rest of each query is common SQL. Each method is one query.
    """

    def __init__(self, batch_id: int):
        self.batch_id = batch_id
        self.postgres = connection.vendor == "postgresql"
        quote = connection.ops.quote_name
        self.results = quote(GradingResult._meta.db_table)
        self.jobs = quote(GradingJob._meta.db_table)

    # dialect --------------------------------------------------------------

    def unnest(self, column: str, alias: str, members: str = SCORES, on: str | None = None) -> str:
        """Join each element of a JSON array column as rows named alias (inner, or left with on).

        On PostgreSQL jsonb_to_recordset parses each element once into typed
        columns; extracting members with ->> in every aggregate instead made
        the criteria query of a large batch many times slower (README, the
        export benchmark, has the figure). Elements are written by the
        providers and checked reviews, so their members have these types.
        """
        if self.postgres:
            array = f"CASE WHEN jsonb_typeof({column}) = 'array' THEN {column} ELSE '[]'::jsonb END"
            function = f"jsonb_to_recordset({array}) AS {alias}({members})"
            return f"LEFT JOIN LATERAL {function} ON {on}" if on else f"CROSS JOIN LATERAL {function}"
        array = f"CASE WHEN json_type({column}) = 'array' THEN {column} ELSE '[]' END"
        function = f"json_each({array}) AS {alias}"
        return f"LEFT JOIN {function} ON {on}" if on else f"JOIN {function}"

    def text(self, alias: str, key: str) -> str:
        if self.postgres:
            return f"{alias}.{key}"
        return f"json_extract({alias}.value, '$.{key}')"

    def number(self, alias: str, key: str) -> str:
        """The element's numeric member, or NULL when it is missing (or, on SQLite, not a number)."""
        if self.postgres:
            return f"{alias}.{key}"
        return (
            f"(CASE WHEN json_type({alias}.value, '$.{key}') IN ('integer', 'real') "
            f"THEN json_extract({alias}.value, '$.{key}') END)"
        )

    @staticmethod
    def bucket(percent: str) -> str:
        # floor(percent / 10 + epsilon) clipped to 0..9, as grading.agreement.bucket().
        raw = f"FLOOR(({percent}) / {BUCKET_WIDTH!r} + {EPSILON!r})"
        return f"(CASE WHEN {raw} > {BUCKETS - 1} THEN {BUCKETS - 1} WHEN {raw} < 0 THEN 0 ELSE {raw} END)"

    def _fetch(self, sql: str) -> list[tuple]:
        with connection.cursor() as cursor:
            cursor.execute(sql, [self.batch_id])
            return [tuple(row) for row in cursor.fetchall()]

    # queries ---------------------------------------------------------------

    def criterion_rows(self) -> list[tuple]:
        """Per criterion key: count, sum and sum of squares of the AI's scores.

        Names and points come from the rubric, not from every element: every
        member read costs time per element (README, the export benchmark, has
        the figure).
        """
        key, ai = self.text("c", "key"), self.number("c", "score")
        return self._fetch(
            f"""
            SELECT {key}, COUNT({ai}), SUM({ai}), SUM({ai} * {ai})
            FROM {self.results} res
            JOIN {self.jobs} j ON j.id = res.job_id
            {self.unnest("res.criteria", "c")}
            WHERE j.batch_id = %s AND {key} IS NOT NULL
            GROUP BY {key}
            """
        )

    def model_pair_rows(self) -> list[tuple]:
        """Per pair of models and pair of buckets: documents, differences and sums (AI scores).

        Models are named as the jobs name them (as in the per-model breakdown),
        not as a provider reports them back (often a dated snapshot).

        Each side is joined through the jobs table, so the second side is found
        with the index on jobs' document. Self-joining a CTE of the graded jobs
        instead made SQLite compare every graded job with every other (a
        materialised CTE has no index): most of the batch page's time on a
        large batch (README, the batch page benchmark, has the figures).
        """
        percent_a = "ra.score * 100.0 / ra.max_score"
        percent_b = "rb.score * 100.0 / rb.max_score"
        return self._fetch(
            f"""
            SELECT ja.provider, ja.model, jb.provider, jb.model,
                   {self.bucket(percent_a)}, {self.bucket(percent_b)}, COUNT(*),
                   SUM(ABS(({percent_a}) - ({percent_b}))), SUM({percent_a}), SUM({percent_b})
            FROM {self.jobs} ja
            JOIN {self.results} ra ON ra.job_id = ja.id
            JOIN {self.jobs} jb ON jb.document_id = ja.document_id AND jb.batch_id = ja.batch_id
                AND (ja.provider < jb.provider OR (ja.provider = jb.provider AND ja.model < jb.model))
            JOIN {self.results} rb ON rb.job_id = jb.id
            WHERE ja.batch_id = %s
            GROUP BY ja.provider, ja.model, jb.provider, jb.model, 5, 6
            """
        )

    def ai_human_rows(self) -> list[tuple]:
        ai = "res.score * 100.0 / res.max_score"
        human = "res.reviewed_score * 100.0 / res.max_score"
        return self._fetch(
            f"""
            SELECT {self.bucket(ai)}, {self.bucket(human)}, COUNT(*), SUM(ABS(({ai}) - ({human})))
            FROM {self.results} res
            JOIN {self.jobs} j ON j.id = res.job_id
            WHERE j.batch_id = %s AND res.reviewed_score IS NOT NULL
            GROUP BY 1, 2
            """
        )

    def reviewed_criterion_rows(self) -> list[tuple]:
        """Criteria a reviewer scored, per key and pair of buckets (AI, reviewer).

        Counts, the summed absolute difference in percentage points, and the
        sums (and sums of squares) of both sides' scores for criterion_figures.
        """
        key, points = self.text("c", "key"), self.number("c", "max_score")
        ai, human = self.number("c", "score"), self.number("h", "score")
        ai_percent, human_percent = f"{ai} * 100.0 / {points}", f"{human} * 100.0 / {points}"
        return self._fetch(
            f"""
            SELECT {key}, {self.bucket(ai_percent)}, {self.bucket(human_percent)}, COUNT(*),
                   SUM(ABS(({ai_percent}) - ({human_percent}))),
                   SUM({ai}), SUM({ai} * {ai}), SUM({human}), SUM({human} * {human})
            FROM {self.results} res
            JOIN {self.jobs} j ON j.id = res.job_id
            {self.unnest("res.criteria", "c", SCORES_AND_POINTS)}
            {self.unnest("res.reviewed_criteria", "h", on=f"{self.text('h', 'key')} = {key}")}
            WHERE j.batch_id = %s AND res.reviewed_score IS NOT NULL AND {points} > 0
                AND {ai} IS NOT NULL AND {human} IS NOT NULL
            GROUP BY 1, 2, 3
            """
        )


# --- formatting ------------------------------------------------------------------


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _round(value, digits: int):
    return round(float(value), digits) if value is not None else None


def _money(value) -> float:
    return float(Decimal(value or 0).quantize(Decimal("0.000001")))


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None

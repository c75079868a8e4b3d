"""Analytics figures against values worked out by hand (see tests/analytics_support.py)."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from batches.analytics import batch_analytics
from batches.models import BatchStatus, JobBatch
from grading.agreement import agreement_of_scores
from grading.models import GradingJob, GradingResult, JobStatus
from tests.analytics_support import (
    MODEL_A,
    MODEL_B,
    NOW,
    T0,
    add_job,
    add_result,
    criteria,
    result_of,
    rubric_batch,
    worked_batch,
)
from tests.conftest import make_document


@pytest.fixture
def worked(owner):
    batch = worked_batch(owner, deadline=T0 + timedelta(hours=2))
    # A reviewer raises d2's grade from model A: 4 -> 5, content 2 -> 3.
    result_of(batch, "d2.txt", MODEL_A).record_review(
        owner, 5, [{"key": "content", "score": 3}], "Content is better than the AI said."
    )
    return batch


def test_job_counts_success_rate_and_failure_kinds(worked):
    jobs = batch_analytics(worked, now=NOW)["jobs"]
    assert jobs["total"] == 8
    assert jobs["by_status"] == {
        "pending": 0,
        "queued": 1,
        "processing": 0,
        "completed": 4,
        "failed": 3,
        "cancelled": 0,
    }
    # completed / (completed + failed) = 4 / 7
    assert jobs["success_rate"] == pytest.approx(4 / 7, abs=1e-4)
    # Messages that differ only after ": " are one kind.
    assert jobs["failure_reasons"] == [
        {"kind": "The provider failed with HTTP 503", "count": 2},
        {"kind": "The reply does not match the rubric", "count": 1},
    ]


def test_processing_time_percentiles_interpolate_between_ranks(worked):
    processing = batch_analytics(worked, now=NOW)["processing"]
    # Seven timed jobs: 1000 2000 3000 4000 5000 6000 10000 ms.
    assert processing["timed_jobs"] == 7
    assert processing["mean_ms"] == pytest.approx(31000 / 7, abs=0.1)
    # Median: rank 0.5 * 6 = 3 -> 4000. p95: rank 0.95 * 6 = 5.7 -> 6000 + 0.7 * 4000 = 8800.
    assert processing["median_ms"] == pytest.approx(4000)
    assert processing["p95_ms"] == pytest.approx(8800)
    # 30 minutes since the start; 7 jobs ended (completed or failed) -> 7 / 30 per minute.
    assert processing["wall_time_s"] == pytest.approx(1800)
    assert processing["jobs_per_minute"] == pytest.approx(7 / 30, abs=0.01)


def test_an_even_number_of_durations_takes_the_mean_of_the_middle_two(owner):
    batch = rubric_batch(owner)
    document = make_document(owner)
    for duration in (100, 400, 200, 300):
        add_job(batch, document, MODEL_A, JobStatus.COMPLETED, duration)
    processing = batch_analytics(batch, now=NOW)["processing"]
    assert processing["median_ms"] == pytest.approx(250)
    # rank 0.95 * 3 = 2.85 -> 300 + 0.85 * 100
    assert processing["p95_ms"] == pytest.approx(385)


def test_the_deadline_projection_follows_the_rate_so_far(worked):
    # 7 of 8 jobs ended in 30 minutes: the last one is due 1800 / 7 s after now.
    timeline = batch_analytics(worked, now=NOW)["timeline"]
    projected = NOW + timedelta(seconds=1800 / 7)
    assert timeline["projected_completion_at"] == projected.isoformat()
    assert timeline["deadline_standing"] == "on_track"
    assert timeline["seconds_to_deadline"] == pytest.approx(5400)


def test_a_batch_projected_past_its_deadline_is_at_risk(worked):
    worked.deadline = T0 + timedelta(minutes=34)  # projected 34 min 17 s
    assert batch_analytics(worked, now=NOW)["timeline"]["deadline_standing"] == "at_risk"
    worked.deadline = T0 + timedelta(minutes=35)
    assert batch_analytics(worked, now=NOW)["timeline"]["deadline_standing"] == "on_track"


def test_a_batch_past_its_deadline_or_finished_after_it_is_late(worked):
    worked.deadline = T0 + timedelta(minutes=20)
    assert batch_analytics(worked, now=NOW)["timeline"]["deadline_standing"] == "late"
    worked.completed_at = T0 + timedelta(minutes=25)
    assert worked.deadline_standing(NOW) == "late"
    worked.deadline = T0 + timedelta(minutes=26)
    assert worked.deadline_standing(NOW) == "on_track"


def test_the_breakdown_per_model_uses_the_ai_scores(worked):
    by_model = {row["model"]: row for row in batch_analytics(worked, now=NOW)["by_model"]}
    a, b = by_model[MODEL_A], by_model[MODEL_B]
    assert (a["jobs"], a["completed"], a["failed"], a["success_rate"]) == (4, 2, 2, 0.5)
    assert (b["jobs"], b["completed"], b["failed"]) == (4, 2, 1)
    assert b["success_rate"] == pytest.approx(2 / 3, abs=1e-4)
    # A: 80 % and 40 % (the review of d2 does not change the model's figure); B: 70 % and 60 %.
    assert a["mean_score_percent"] == pytest.approx(60)
    assert b["mean_score_percent"] == pytest.approx(65)
    assert a["mean_latency_ms"] == pytest.approx(2000)
    assert (a["input_tokens"], a["output_tokens"], a["cost"]) == (2000, 400, 0.002)
    assert a["reviewed"] == 1 and b["reviewed"] == 0


def test_the_score_histogram_and_spread_use_the_reviewed_score(worked):
    scores = batch_analytics(worked, now=NOW)["scores"]
    # Final percentages: 80, 70, 50 (reviewed from 40), 60.
    assert (scores["graded"], scores["reviewed"]) == (4, 1)
    assert scores["mean_percent"] == pytest.approx(65)
    # Deviations 15, 5, -15, -5: population variance 500 / 4 = 125.
    assert scores["std_dev_percent"] == pytest.approx(125**0.5, abs=0.01)
    assert (scores["min_percent"], scores["max_percent"]) == (50, 80)
    assert scores["ai_mean_percent"] == pytest.approx(62.5)
    assert [bucket["count"] for bucket in scores["histogram"]] == [0, 0, 0, 0, 0, 1, 1, 1, 1, 0]
    assert scores["histogram"][9]["bucket"] == "[90, 100]"
    assert "reviewer" in scores["basis"]


def test_per_criterion_mean_and_spread(worked):
    content, style = batch_analytics(worked, now=NOW)["criteria"]
    # content: 5, 4, 3 (reviewed from 2), 4 -> mean 4, population spread sqrt(2 / 4).
    assert content["key"] == "content" and content["name"] == "Content"
    assert (content["graded"], content["reviewed"], content["max_score"]) == (4, 1, 6)
    assert content["mean"] == pytest.approx(4)
    assert content["std_dev"] == pytest.approx(0.5**0.5, abs=1e-3)
    assert content["mean_percent"] == pytest.approx(66.67, abs=0.01)
    assert content["ai_mean"] == pytest.approx(3.75)
    # style: 3, 3, 2, 2 -> mean 2.5, spread 0.5.
    assert style["key"] == "style"
    assert (style["mean"], style["std_dev"], style["reviewed"]) == (2.5, 0.5, 0)


def test_models_are_compared_on_the_documents_both_graded(worked):
    (comparison,) = batch_analytics(worked, now=NOW)["model_comparison"]
    # d1: 80 vs 70 (buckets 8, 7); d2: 40 vs 60 (buckets 4, 6), AI scores.
    assert comparison["models"] == [f"openai:{MODEL_A}", f"openai:{MODEL_B}"]
    assert comparison["documents"] == 2
    assert comparison["mean_percent"] == [60, 65]
    assert comparison["exact"] == 0
    assert comparison["adjacent"] == 0.5
    assert comparison["mean_abs_difference"] == pytest.approx(15)
    # Observed weighted disagreement (1 + 4) / 81; expected 0.5 * (1 + 4 + 9 + 4) / 81.
    assert comparison["quadratic_weighted_kappa"] == pytest.approx(1 - 5 / 9, abs=1e-4)


def test_ai_human_agreement_covers_reviewed_jobs_overall_and_per_criterion(worked):
    agreement = batch_analytics(worked, now=NOW)["ai_human_agreement"]
    # One reviewed job: AI 40 %, reviewer 50 %.
    assert agreement["overall"]["pairs"] == 1
    assert agreement["overall"]["exact"] == 0
    assert agreement["overall"]["adjacent"] == 1
    assert agreement["overall"]["mean_abs_difference"] == pytest.approx(10)
    # Only content was scored by the reviewer: 2/6 vs 3/6.
    (content,) = agreement["criteria"]
    assert content["key"] == "content" and content["pairs"] == 1
    assert content["mean_abs_difference"] == pytest.approx(100 / 6, abs=1e-3)
    assert content["adjacent"] == 0


def test_a_batch_with_no_results_yet_reports_zeros_and_nones(owner):
    batch = rubric_batch(owner)
    batch.add_documents([make_document(owner, "a.txt"), make_document(owner, "b.txt")])
    analytics = batch_analytics(batch)
    assert analytics["jobs"]["by_status"]["pending"] == 2
    assert analytics["jobs"]["success_rate"] is None
    assert analytics["jobs"]["failure_reasons"] == []
    assert analytics["processing"] == {
        "timed_jobs": 0,
        "mean_ms": None,
        "median_ms": None,
        "p95_ms": None,
        "wall_time_s": None,
        "jobs_per_minute": None,
    }
    assert analytics["timeline"]["deadline_standing"] is None
    assert analytics["timeline"]["projected_completion_at"] is None
    assert analytics["scores"]["graded"] == 0
    assert analytics["scores"]["mean_percent"] is None
    assert sum(bucket["count"] for bucket in analytics["scores"]["histogram"]) == 0
    assert analytics["criteria"] == []
    assert analytics["model_comparison"] == []
    assert analytics["ai_human_agreement"]["overall"]["pairs"] == 0
    assert analytics["by_model"][0]["provider"] is None


def _bulk_batch(owner, size: int) -> JobBatch:
    batch = rubric_batch(owner, name=f"Bulk {size}")
    document = make_document(owner, f"bulk-{size}.txt")
    JobBatch.objects.filter(pk=batch.pk).update(status=BatchStatus.PROCESSING, started_at=T0)
    jobs = GradingJob.objects.bulk_create(
        [
            GradingJob(
                name=f"job {index}",
                batch=batch,
                document=document,
                owner=owner,
                provider="openai",
                model=MODEL_A if index % 2 else MODEL_B,
                status=JobStatus.COMPLETED if index % 5 else JobStatus.FAILED,
                last_error="" if index % 5 else f"The provider failed with HTTP 500: {index}",
                duration_ms=1000 + index,
            )
            for index in range(size)
        ],
        batch_size=500,
    )
    GradingResult.objects.bulk_create(
        [
            GradingResult(
                job=job,
                provider="openai",
                model=job.model,
                score=(index % 7) + (index % 4),
                max_score=10,
                criteria=criteria(index % 7, index % 4),
                reviewed_score=5 if index % 3 == 0 else None,
                reviewed_criteria=[{"key": "content", "score": 3}] if index % 3 == 0 else [],
            )
            for index, job in enumerate(jobs)
            if job.status == JobStatus.COMPLETED
        ],
        batch_size=500,
    )
    batch.refresh_from_db()
    return batch


def _queries_for(batch) -> int:
    batch = JobBatch.objects.get(pk=batch.pk)
    with CaptureQueriesContext(connection) as queries:
        batch_analytics(batch, now=NOW)
    return len(queries)


def test_analytics_runs_the_same_number_of_queries_for_10_and_1000_jobs(owner):
    small, large = _bulk_batch(owner, 10), _bulk_batch(owner, 1000)
    assert _queries_for(small) == _queries_for(large)
    assert _queries_for(large) <= 13


def test_model_pairs_match_the_pairs_worked_out_one_document_at_a_time(owner):
    # Three models over five documents, one document left ungraded by a model, and
    # the same documents graded in another batch, which must not pair with these.
    batch, other = rubric_batch(owner, name="Three models"), rubric_batch(owner, name="Elsewhere")
    documents = [make_document(owner, f"p{i}.txt") for i in range(5)]
    models = [("openai", "gpt-a"), ("openai", "gpt-b"), ("anthropic", "claude-c")]
    percents: dict[tuple, dict[int, float]] = {model: {} for model in models}
    for index, document in enumerate(documents):
        for number, (provider, model) in enumerate(models):
            if (index, number) == (4, 2):
                continue
            content, style = (index + number) % 7, (index * number) % 5
            add_result(
                add_job(batch, document, model, JobStatus.COMPLETED, provider=provider), content, style
            )
            add_result(
                add_job(other, document, model, JobStatus.COMPLETED, provider=provider), 6 - content, 0
            )
            percents[(provider, model)][document.pk] = (content + style) * 10
    comparisons = {tuple(c["models"]): c for c in batch_analytics(batch, now=NOW)["model_comparison"]}
    for first, second in [(models[2], models[0]), (models[2], models[1]), (models[0], models[1])]:
        shared = sorted(set(percents[first]) & set(percents[second]))
        pairs = [(percents[first][pk], percents[second][pk]) for pk in shared]
        expected = agreement_of_scores(pairs).as_dict()
        comparison = comparisons[(f"{first[0]}:{first[1]}", f"{second[0]}:{second[1]}")]
        assert comparison["documents"] == len(shared) == (4 if "anthropic" in first else 5)
        assert comparison["mean_percent"] == [
            pytest.approx(sum(a for a, _ in pairs) / len(pairs)),
            pytest.approx(sum(b for _, b in pairs) / len(pairs)),
        ]
        for figure in ("exact", "adjacent", "mean_abs_difference", "quadratic_weighted_kappa"):
            assert comparison[figure] == pytest.approx(expected[figure], abs=1e-4), figure
    assert len(comparisons) == 3

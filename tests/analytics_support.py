"""A small graded batch whose analytics are worked out by hand in the tests that use it.

Two models grade four documents on a 10-point rubric (content 6 + style 4):

    document  model  status     duration  AI score (content, style)
    d1        A      completed  1000 ms   8 (5, 3)
    d1        B      completed  2000 ms   7 (4, 3)
    d2        A      completed  3000 ms   4 (2, 2)
    d2        B      completed  4000 ms   6 (4, 2)
    d3        A      failed     10000 ms  HTTP 503: busy
    d3        B      failed     5000 ms   HTTP 503: overloaded
    d4        A      failed     6000 ms   reply does not match the rubric
    d4        B      queued     -

The batch started at T0 and is observed at T0 + 30 minutes.
"""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from batches.models import BatchStatus, JobBatch
from grading.models import GradingJob, GradingResult, JobStatus
from tests.conftest import make_batch, make_document

T0 = datetime(2025, 3, 1, 10, 0, tzinfo=UTC)
NOW = T0 + timedelta(minutes=30)
MODEL_A, MODEL_B = "gpt-a", "gpt-b"
RUBRIC = {
    "criteria": [
        {"key": "content", "name": "Content", "points": 6},
        {"key": "style", "name": "Style", "points": 4},
    ]
}


def rubric_batch(owner, **fields) -> JobBatch:
    return make_batch(owner, jobs=0, settings={"rubric": RUBRIC}, **fields)


def add_job(batch, document, model, status, duration_ms=None, error="", provider="openai") -> GradingJob:
    return GradingJob.objects.create(
        name=f"{document.original_name} [{model}]",
        batch=batch,
        document=document,
        owner=batch.owner,
        provider=provider,
        model=model,
        status=status,
        duration_ms=duration_ms,
        last_error=error,
        started_at=T0 if duration_ms else None,
        completed_at=T0 + timedelta(milliseconds=duration_ms) if duration_ms else None,
    )


def criteria(content: float, style: float) -> list[dict]:
    return [
        {"key": "content", "name": "Content", "score": content, "max_score": 6, "feedback": "ok"},
        {"key": "style", "name": "Style", "score": style, "max_score": 4, "feedback": "ok"},
    ]


def add_result(job, content: float, style: float) -> GradingResult:
    return GradingResult.objects.create(
        job=job,
        provider=job.provider,
        model=job.model,
        score=content + style,
        max_score=10,
        criteria=criteria(content, style),
        feedback="Overall fine.",
        input_tokens=1000,
        output_tokens=200,
        cost=Decimal("0.001"),
        latency_ms=job.duration_ms or 0,
    )


def worked_batch(owner, deadline: datetime | None = None) -> JobBatch:
    batch = rubric_batch(owner, name="Worked example", deadline=deadline)
    d1, d2, d3, d4 = (make_document(owner, f"d{i}.txt") for i in range(1, 5))
    done = JobStatus.COMPLETED
    add_result(add_job(batch, d1, MODEL_A, done, 1000), 5, 3)
    add_result(add_job(batch, d1, MODEL_B, done, 2000), 4, 3)
    add_result(add_job(batch, d2, MODEL_A, done, 3000), 2, 2)
    add_result(add_job(batch, d2, MODEL_B, done, 4000), 4, 2)
    add_job(batch, d3, MODEL_A, JobStatus.FAILED, 10000, "The provider failed with HTTP 503: busy.")
    add_job(batch, d3, MODEL_B, JobStatus.FAILED, 5000, "The provider failed with HTTP 503: overloaded.")
    add_job(
        batch, d4, MODEL_A, JobStatus.FAILED, 6000, "The reply does not match the rubric: content missing."
    )
    add_job(batch, d4, MODEL_B, JobStatus.QUEUED)
    JobBatch.objects.filter(pk=batch.pk).update(status=BatchStatus.PROCESSING, started_at=T0)
    batch.refresh_from_db()
    return batch


def result_of(batch, document_name: str, model: str) -> GradingResult:
    return GradingResult.objects.get(
        job__batch=batch, job__document__original_name=document_name, job__model=model
    )

"""Tasks the benchmarks compare the engine against; run by the benchmark's own cluster.

Importable by a `qcluster` started from the project root as `bench.naive_tasks`.
"""

import time

from django.utils import timezone


def noop() -> None:
    """Nothing at all: django-q2's own cost per task."""


def grade_one(job_id: int) -> None:
    """The naive design: one django-q2 task per job, one provider call at a time per worker."""
    from grading.models import GradingJob, GradingResult, JobStatus
    from grading.providers import GradeRequest, get_provider

    job = GradingJob.objects.select_related("document", "batch").get(pk=job_id)
    settings = job.batch.validated_settings()
    started = time.monotonic()
    grade = get_provider(settings.provider).grade(
        GradeRequest(
            text=job.document.text,
            rubric=settings.rubric.model_dump(mode="json"),
            settings=settings.model_dump(mode="json"),
            model=settings.model,
            document_name=job.document.original_name,
            timeout_s=settings.processing.timeout_s,
        )
    )
    GradingResult.from_grade(
        grade,
        job_id=job.pk,
        provider=settings.provider,
        model=settings.model,
        latency_ms=int((time.monotonic() - started) * 1000),
    ).save()
    GradingJob.objects.filter(pk=job_id).update(status=JobStatus.COMPLETED, completed_at=timezone.now())

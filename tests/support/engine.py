"""Helpers for tests of the processing engine: started batches and outcomes."""

from datetime import datetime, timedelta

from django.utils import timezone

from batches.models import JobBatch
from grading.claims import Outcome, Work, claim_jobs, record_outcomes
from grading.runner import grade_work
from tests.conftest import make_batch

OPENAI = {"provider": "openai", "model": "gpt-4o-mini"}


def started_batch(owner, jobs: int = 2, settings: dict | None = None, **fields) -> JobBatch:
    """A batch whose jobs are queued, as start_batch leaves them (its task is not run)."""
    batch = make_batch(owner, jobs=jobs, settings=settings or {}, **fields)
    batch.start_batch()
    return batch


def processing(**rules) -> dict:
    return {"processing": rules}


def later(seconds: float, now: datetime | None = None) -> datetime:
    return (now or timezone.now()) + timedelta(seconds=seconds)


def claim_one(token: str = "worker/1", **options) -> Work:
    [work] = claim_jobs(1, token, **options)
    return work


def finish(work: Work, **options):
    """Grade the claimed job for real and record the outcome."""
    return record_outcomes([grade_work(work)], **options)


def failure(
    work: Work, error: str = "boom", transient: bool = True, retry_after: float | None = None
) -> Outcome:
    return Outcome(work, error=error, transient=transient, retry_after=retry_after)

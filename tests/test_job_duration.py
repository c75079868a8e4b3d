"""A job's duration counts from when its call could start, not from the claim that held it in hand."""

import pytest
from django.utils import timezone

from grading.claims import claim_jobs, record_outcomes
from grading.models import GradingJob
from grading.runner import grade_work
from tests.support.engine import later, processing, started_batch

pytestmark = pytest.mark.django_db


def test_a_staggered_job_is_not_charged_for_its_wait(owner):
    started_batch(owner, jobs=2, settings=processing(stagger_ms=900, concurrency=50))
    now = timezone.now()
    first, second = claim_jobs(2, "worker/1", now=now)
    assert (second.start_at - now).total_seconds() >= 0.85  # the stagger holds it back

    record_outcomes([grade_work(first)], now=later(0.1, now))
    record_outcomes([grade_work(second)], now=later(1.0, now))

    durations = dict(GradingJob.objects.values_list("pk", "duration_ms"))
    assert durations[first.job_id] == 100
    assert 50 <= durations[second.job_id] <= 200

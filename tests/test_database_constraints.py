import pytest
from django.db import IntegrityError, transaction

from batches.models import JobBatch
from grading.models import GradingJob, GradingResult
from tests.conftest import make_batch

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("priority", [0, 11])
def test_the_database_refuses_a_priority_outside_one_to_ten(owner, priority):
    batch = make_batch(owner, jobs=0)

    with pytest.raises(IntegrityError), transaction.atomic():
        JobBatch.objects.filter(pk=batch.pk).update(priority=priority)


@pytest.mark.parametrize("priority", [1, 10])
def test_the_database_accepts_priorities_at_the_bounds(owner, priority):
    batch = make_batch(owner, jobs=0)

    JobBatch.objects.filter(pk=batch.pk).update(priority=priority)

    batch.refresh_from_db()
    assert batch.priority == priority


def test_the_database_refuses_an_unknown_batch_status(owner):
    batch = make_batch(owner, jobs=0)

    with pytest.raises(IntegrityError), transaction.atomic():
        JobBatch.objects.filter(pk=batch.pk).update(status="exploded")


def test_the_database_refuses_a_second_result_for_a_job(owner):
    job = GradingJob.objects.filter(batch=make_batch(owner, jobs=1)).get()
    fields = {"provider": "builtin", "model": "builtin-v1", "score": 70, "max_score": 100}
    GradingResult.objects.create(job=job, **fields)

    with pytest.raises(IntegrityError), transaction.atomic():
        GradingResult.objects.create(job=job, **fields)
